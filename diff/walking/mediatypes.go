package walking

import (
	"github.com/berth-containers/berth/archive/compression"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's layer media types, which OCI does not define.
const (
	mediaTypeDockerLayerGzip        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerLayerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeDockerLayer            = "application/vnd.docker.image.rootfs.diff.tar"
)

// layerMediaTypes are the layer media types Apply takes. The compression
// a type names is not trusted: Apply detects it from the blob's bytes.
var layerMediaTypes = map[string]bool{
	ocispec.MediaTypeImageLayer:     true,
	ocispec.MediaTypeImageLayerGzip: true,
	ocispec.MediaTypeImageLayerZstd: true,
	// Nondistributable layers are deprecated but still found in images.
	ocispec.MediaTypeImageLayerNonDistributable:     true,
	ocispec.MediaTypeImageLayerNonDistributableGzip: true,
	ocispec.MediaTypeImageLayerNonDistributableZstd: true,
	mediaTypeDockerLayerGzip:                        true,
	mediaTypeDockerLayerForeignGzip:                 true,
	mediaTypeDockerLayer:                            true,
}

// compareCompression is the compression Compare writes for each media type
// it can produce.
var compareCompression = map[string]compression.Compression{
	ocispec.MediaTypeImageLayer:     compression.Uncompressed,
	ocispec.MediaTypeImageLayerGzip: compression.Gzip,
	ocispec.MediaTypeImageLayerZstd: compression.Zstd,
	mediaTypeDockerLayerGzip:        compression.Gzip,
}
