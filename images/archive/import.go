package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	dockerManifestFile = "manifest.json"
	// maxBuffered bounds the small files held in memory at once.
	maxBuffered = 64 << 20
	// maxLayoutFile bounds oci-layout, a one-field document.
	maxLayoutFile = 4 << 10
)

// streamed is a non-blob file written to the store as it was read (a
// docker layer.tar): its digest, size and compression are now known.
type streamed struct {
	digest      digest.Digest
	size        int64
	compression images.Compression
}

type importer struct {
	store content.Store
	opts  options
	// uid keeps this import's ingest refs apart from concurrent ones.
	uid string

	files    map[string][]byte   // small files held in memory
	buffered int64               // their total size
	streamed map[string]streamed // other non-blob files, in the store
	links    map[string]string   // link entry -> archive path it names
	blobs    map[string]bool     // blob entry paths seen
	present  map[digest.Digest]bool
	g        graph
}

// Import reads an OCI image layout tar or a `docker save` tar from r into
// store and returns the images it names. Blobs are written as they are
// read, verified against their names; index.json and manifest.json may
// come anywhere in the stream. When index.json comes before the blobs (as
// Export writes it), blobs of platforms not selected are not even stored.
//
// Names: an OCI entry's "io.containerd.image.name" annotation, else its
// "org.opencontainers.image.ref.name" (a tag under WithBaseName, or a full
// reference); docker RepoTags normalised ("busybox:1" ->
// "docker.io/library/busybox:1"). WithDigests and WithIndexName add more.
// Images without a name are not returned, but their content is stored.
func Import(ctx context.Context, store content.Store, r io.Reader, opts ...Opt) ([]ImageRecord, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	im := &importer{
		store:    store,
		opts:     o,
		uid:      hex.EncodeToString(b[:]),
		files:    map[string][]byte{},
		streamed: map[string]streamed{},
		links:    map[string]string{},
		blobs:    map[string]bool{},
		present:  map[digest.Digest]bool{},
	}
	im.g.init()
	if err := im.read(ctx, r); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var records []ImageRecord
	if _, ok := im.files[ocispec.ImageIndexFile]; ok {
		records, err = im.finishOCI(ctx)
	} else if _, ok := im.files[dockerManifestFile]; ok {
		records, err = im.finishDocker(ctx)
	} else {
		err = invalidf("archive has neither %s nor %s", ocispec.ImageIndexFile, dockerManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return dedupe(records), nil
}

// read consumes the tar, storing blobs and buffering small files.
func (im *importer) read(ctx context.Context, r io.Reader) error {
	er := &endReader{r: r}
	tr := tar.NewReader(er)
	for entries := 0; ; entries++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if !er.terminated() {
				return invalidf("archive is truncated: no end-of-archive marker")
			}
			return nil
		}
		if err != nil {
			return invalidf("read archive: %v", truncatedErr(err))
		}
		if entries >= maxEntries {
			return invalidf("archive has more than %d entries", maxEntries)
		}
		er.entryStarted(hdr.Size)
		if err := im.entry(ctx, hdr, tr); err != nil {
			return err
		}
	}
}

func truncatedErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("archive is truncated")
	}
	return err
}

func (im *importer) entry(ctx context.Context, hdr *tar.Header, r io.Reader) error {
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return invalidf("entry %q: sparse files are not allowed", hdr.Name)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeXGlobalHeader:
		return nil
	case tar.TypeSymlink, tar.TypeLink:
		if name == "" {
			return invalidf("entry %q: link at the archive root", hdr.Name)
		}
		target, err := linkTarget(hdr, name)
		if err != nil {
			return err
		}
		im.links[name] = target
		return nil
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers still use '\x00'
	default:
		return invalidf("entry %q: type %q not allowed in an image archive", hdr.Name, hdr.Typeflag)
	}
	if name == "" {
		return invalidf("entry %q: file at the archive root", hdr.Name)
	}
	if _, dup := im.files[name]; dup || im.blobs[name] || im.streamed[name] != (streamed{}) {
		return invalidf("entry %q appears twice", name)
	}

	if rest, ok := strings.CutPrefix(name, ocispec.ImageBlobsDir+"/"); ok {
		return im.blobEntry(ctx, name, rest, hdr.Size, r)
	}
	switch {
	case name == ocispec.ImageLayoutFile:
		return im.buffer(name, hdr.Size, maxLayoutFile, r)
	case name == ocispec.ImageIndexFile:
		if err := im.buffer(name, hdr.Size, images.MaxJSONSize, r); err != nil {
			return err
		}
		return im.indexRead(ctx)
	case name == dockerManifestFile, strings.HasSuffix(name, ".json"):
		return im.buffer(name, hdr.Size, images.MaxJSONSize, r)
	case name == "repositories", path.Base(name) == "json", path.Base(name) == "VERSION":
		// Docker's legacy per-layer metadata: nothing we need.
		return nil
	}
	// Anything else may be a docker layer; store it now, name it later.
	s, err := im.writeStream(ctx, name, hdr.Size, r)
	if err != nil {
		return err
	}
	im.streamed[name] = s
	return nil
}

func (im *importer) buffer(name string, size, max int64, r io.Reader) error {
	if size > max {
		return invalidf("entry %q: %d bytes is over the %d byte limit for this file", name, size, max)
	}
	if im.buffered+size > maxBuffered {
		return invalidf("entry %q: archive holds more than %d bytes of metadata", name, maxBuffered)
	}
	p := make([]byte, size)
	if _, err := io.ReadFull(r, p); err != nil {
		return invalidf("entry %q: %v", name, truncatedErr(err))
	}
	im.files[name] = p
	im.buffered += size
	return nil
}

// blobEntry handles blobs/ALG/HEX.
func (im *importer) blobEntry(ctx context.Context, name, rest string, size int64, r io.Reader) error {
	alg, hexPart, ok := strings.Cut(rest, "/")
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hexPart)
	if !ok || strings.Contains(hexPart, "/") {
		return invalidf("entry %q: blobs must be named blobs/ALGORITHM/HEX", name)
	}
	if err := d.Validate(); err != nil {
		return invalidf("entry %q: invalid digest %q: %v", name, d, err)
	}
	im.blobs[name] = true
	if !im.g.wanted(d) {
		log.G(ctx).WithField("digest", d).Debug("import: skipping blob of an unselected platform")
		return nil
	}
	if err := im.writeBlob(ctx, d, size, r); err != nil {
		return err
	}
	return im.g.arrived(ctx, im, d)
}

// isPresent reports whether the store has d, remembering the answer.
func (im *importer) isPresent(ctx context.Context, d digest.Digest) (bool, error) {
	if im.present[d] {
		return true, nil
	}
	if _, err := im.store.Info(ctx, d); err != nil {
		if errdefs.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("blob %s: %w", d, err)
	}
	im.present[d] = true
	return true, nil
}

// writeBlob copies a blob named d from r into the store, refusing content
// whose digest is not d.
func (im *importer) writeBlob(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	if ok, err := im.isPresent(ctx, d); err != nil || ok {
		return err
	}
	ref := "import-" + im.uid + "-" + d.String()
	w, err := im.store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Digest: d, Size: size}))
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			im.present[d] = true
			return nil
		}
		return fmt.Errorf("blob %s: open ingest: %w", d, err)
	}
	abort := func() {
		w.Close()
		if err := im.store.Abort(context.WithoutCancel(ctx), ref); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("ref", ref).Warn("import: abort ingest")
		}
	}
	verifier := d.Algorithm().Digester()
	if _, err := io.Copy(io.MultiWriter(w, verifier.Hash()), r); err != nil {
		abort()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return invalidf("blob %s: archive is truncated", d)
		}
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if got := verifier.Digest(); got != d {
		abort()
		return invalidf("blob %s: content has digest %s", d, got)
	}
	if err := w.Commit(ctx, size, d); err != nil && !errdefs.IsAlreadyExists(err) {
		abort()
		return fmt.Errorf("blob %s: commit: %w", d, err)
	}
	w.Close()
	im.present[d] = true
	return nil
}

// writeStream stores a file whose digest is not known in advance and
// sniffs its compression.
func (im *importer) writeStream(ctx context.Context, name string, size int64, r io.Reader) (streamed, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	s := streamed{size: size, compression: sniff(magic)}
	ref := "import-" + im.uid + "-file-" + digest.FromString(name).Encoded()[:16]
	w, err := im.store.Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Size: size}))
	if err != nil {
		return s, fmt.Errorf("entry %q: open ingest: %w", name, err)
	}
	abort := func() {
		w.Close()
		if err := im.store.Abort(context.WithoutCancel(ctx), ref); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("ref", ref).Warn("import: abort ingest")
		}
	}
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(io.MultiWriter(w, dg.Hash()), br); err != nil {
		abort()
		return s, invalidf("entry %q: %v", name, truncatedErr(err))
	}
	s.digest = dg.Digest()
	if err := w.Commit(ctx, size, s.digest); err != nil && !errdefs.IsAlreadyExists(err) {
		abort()
		return s, fmt.Errorf("entry %q: commit: %w", name, err)
	}
	w.Close()
	im.present[s.digest] = true
	return s, nil
}

// writeBytes stores a document the import made or held in memory.
func (im *importer) writeBytes(ctx context.Context, mediaType string, p []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(p), Size: int64(len(p))}
	if err := im.writeBlob(ctx, desc.Digest, desc.Size, bytes.NewReader(p)); err != nil {
		return desc, err
	}
	return desc, nil
}

// sniff tells a layer's compression from its first bytes.
func sniff(magic []byte) images.Compression {
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return images.Gzip
	case len(magic) >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		return images.Zstd
	}
	return images.Uncompressed
}

// resolve follows links to the entry path that holds a file.
func (im *importer) resolve(name string) (string, error) {
	n, err := cleanEntryName(name)
	if err != nil || n == "" {
		return "", invalidf("path %q in the archive's manifest is not valid", name)
	}
	for hops := 0; ; hops++ {
		t, ok := im.links[n]
		if !ok {
			return n, nil
		}
		if hops >= maxLinkHops {
			return "", invalidf("path %q: more than %d links", name, maxLinkHops)
		}
		n = t
	}
}

// dedupe keeps one record per name, the last one, in first-seen order.
func dedupe(records []ImageRecord) []ImageRecord {
	last := map[string]int{}
	for i, r := range records {
		last[r.Name] = i
	}
	out := make([]ImageRecord, 0, len(last))
	seen := map[string]bool{}
	for _, r := range records {
		if seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		out = append(out, records[last[r.Name]])
	}
	return out
}
