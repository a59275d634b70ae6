// Package testimage builds small image archives without a network: layers
// from lists of files or host directories, an image config, and an OCI
// layout (or docker save) tar around them. Busybox makes a runnable image
// from the host's static busybox. Tests and benchmarks use it; so does
// cmd/berth-testimage.
package testimage

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultName is the name images get when Options.Name is empty.
const DefaultName = "docker.io/library/busybox:latest"

// Format is the archive layout Build writes.
type Format int

const (
	// OCI is an OCI image layout (plus a docker manifest.json), like
	// `ctr export`.
	OCI Format = iota
	// Docker is the legacy `docker save` layout: manifest.json,
	// HEX.json config, ID/layer.tar.
	Docker
)

// ParseFormat parses "oci" or "docker".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "oci", "":
		return OCI, nil
	case "docker":
		return Docker, nil
	}
	return OCI, fmt.Errorf("archive format %q: want oci or docker: %w", s, errdefs.ErrInvalidArgument)
}

// Layer is one layer: the files of Dir (if set), then Files.
type Layer struct {
	Dir   string
	Files []File
}

// Options describes the image to build.
type Options struct {
	// Name is the image's reference, normalised (default DefaultName).
	Name   string
	Layers []Layer
	Config ocispec.ImageConfig
	// Platform defaults to this host's.
	Platform *ocispec.Platform
	Format   Format
	// Uncompressed leaves layers as plain tars; by default they are gzip
	// compressed at GzipLevel (0 means gzip's default).
	Uncompressed bool
	GzipLevel    int
	// Created is the config's creation time and every entry's mtime
	// (default the Unix epoch, so builds are reproducible).
	Created time.Time
	// TempDir holds layers while they are hashed (default os.TempDir()).
	TempDir string
}

// Image describes what Build wrote.
type Image struct {
	Name     string
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	DiffIDs  []digest.Digest
	ChainID  digest.Digest
}

// Build writes the image opts describes to w as an archive that
// images/archive.Import (and ctr import, docker load) reads.
func Build(ctx context.Context, w io.Writer, opts Options) (Image, error) {
	var img Image
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	ref, err := reference.ParseNormalized(name)
	if err != nil {
		return img, err
	}
	img.Name = ref.String()
	if len(opts.Layers) == 0 {
		return img, fmt.Errorf("image %s: no layers: %w", img.Name, errdefs.ErrInvalidArgument)
	}
	platform := platforms.Normalize(platforms.Default())
	if opts.Platform != nil {
		platform = platforms.Normalize(*opts.Platform)
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	level := opts.GzipLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}

	layers := make([]*builtLayer, 0, len(opts.Layers))
	defer func() {
		for _, l := range layers {
			l.file.Close()
		}
	}()
	layerType := ocispec.MediaTypeImageLayerGzip
	if opts.Uncompressed {
		layerType = ocispec.MediaTypeImageLayer
	}
	if opts.Format == Docker {
		layerType = images.MediaTypeDockerSchema2LayerGzip
		if opts.Uncompressed {
			layerType = images.MediaTypeDockerSchema2Layer
		}
	}
	var history []ocispec.History
	for i, l := range opts.Layers {
		if err := ctx.Err(); err != nil {
			return img, err
		}
		bl, err := buildLayer(l, opts.TempDir, !opts.Uncompressed, level, created)
		if err != nil {
			return img, fmt.Errorf("image %s: layer %d: %w", img.Name, i, err)
		}
		layers = append(layers, bl)
		img.Layers = append(img.Layers, ocispec.Descriptor{MediaType: layerType, Digest: bl.digest, Size: bl.size})
		img.DiffIDs = append(img.DiffIDs, bl.diffID)
		history = append(history, ocispec.History{Created: &created, CreatedBy: fmt.Sprintf("berth-testimage layer %d", i)})
	}
	img.ChainID = images.ChainID(img.DiffIDs)

	config := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config:   opts.Config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: img.DiffIDs},
		History:  history,
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return img, err
	}
	configType, manifestType := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if opts.Format == Docker {
		configType, manifestType = images.MediaTypeDockerSchema2Config, images.MediaTypeDockerSchema2Manifest
	}
	img.Config = ocispec.Descriptor{MediaType: configType, Digest: digest.FromBytes(configJSON), Size: int64(len(configJSON))}
	manifestJSON, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: manifestType,
		Config:    img.Config,
		Layers:    img.Layers,
	})
	if err != nil {
		return img, err
	}
	img.Manifest = ocispec.Descriptor{MediaType: manifestType, Digest: digest.FromBytes(manifestJSON), Size: int64(len(manifestJSON)), Platform: &platform}

	tw := tar.NewWriter(w)
	a := &archiveWriter{tw: tw, mtime: created}
	if opts.Format == Docker {
		err = a.docker(img, ref, configJSON, layers)
	} else {
		err = a.oci(img, ref, configJSON, manifestJSON, layers)
	}
	if err != nil {
		return img, fmt.Errorf("image %s: write archive: %w", img.Name, err)
	}
	if err := tw.Close(); err != nil {
		return img, fmt.Errorf("image %s: write archive: %w", img.Name, err)
	}
	return img, nil
}

type archiveWriter struct {
	tw    *tar.Writer
	mtime time.Time
}

func (a *archiveWriter) file(name string, p []byte) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(p)), ModTime: a.mtime}); err != nil {
		return err
	}
	_, err := a.tw.Write(p)
	return err
}

func (a *archiveWriter) dir(name string) error {
	return a.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: a.mtime})
}

func (a *archiveWriter) layer(name string, l *builtLayer) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: l.size, ModTime: a.mtime}); err != nil {
		return err
	}
	if _, err := l.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(a.tw, l.file)
	if err == nil && n != l.size {
		err = fmt.Errorf("layer %s: copied %d of %d bytes", l.digest, n, l.size)
	}
	return err
}

func blobName(d digest.Digest) string { return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded() }

// oci writes oci-layout and index.json before the blobs, as Export does.
func (a *archiveWriter) oci(img Image, ref reference.Named, configJSON, manifestJSON []byte, layers []*builtLayer) error {
	entry := img.Manifest
	entry.Annotations = map[string]string{images.AnnotationImageName: img.Name}
	if ref.Tag() != "" {
		entry.Annotations[ocispec.AnnotationRefName] = ref.Tag()
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{entry},
	})
	if err != nil {
		return err
	}
	layoutJSON, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	dockerJSON, err := json.Marshal([]dockerEntry{{
		Config:   blobName(img.Config.Digest),
		RepoTags: repoTags(ref),
		Layers:   layerNames(img.Layers, blobName),
	}})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		p    []byte
	}{{ocispec.ImageLayoutFile, layoutJSON}, {ocispec.ImageIndexFile, index}, {"manifest.json", dockerJSON}} {
		if err := a.file(f.name, f.p); err != nil {
			return err
		}
	}
	if err := a.dir("blobs/"); err != nil {
		return err
	}
	if err := a.dir("blobs/sha256/"); err != nil {
		return err
	}
	if err := a.file(blobName(img.Manifest.Digest), manifestJSON); err != nil {
		return err
	}
	if err := a.file(blobName(img.Config.Digest), configJSON); err != nil {
		return err
	}
	written := map[digest.Digest]bool{}
	for _, l := range layers {
		if written[l.digest] {
			continue
		}
		written[l.digest] = true
		if err := a.layer(blobName(l.digest), l); err != nil {
			return err
		}
	}
	return nil
}

type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// docker writes the legacy docker save layout: layers first, then the
// config and manifest.json, as docker does.
func (a *archiveWriter) docker(img Image, ref reference.Named, configJSON []byte, layers []*builtLayer) error {
	layerPath := func(d digest.Digest) string { return d.Encoded() + "/layer.tar" }
	written := map[digest.Digest]bool{}
	for _, l := range layers {
		if written[l.digest] {
			continue
		}
		written[l.digest] = true
		if err := a.dir(l.digest.Encoded() + "/"); err != nil {
			return err
		}
		if err := a.file(l.digest.Encoded()+"/VERSION", []byte("1.0")); err != nil {
			return err
		}
		if err := a.layer(layerPath(l.digest), l); err != nil {
			return err
		}
	}
	if err := a.file(img.Config.Digest.Encoded()+".json", configJSON); err != nil {
		return err
	}
	manifest, err := json.Marshal([]dockerEntry{{
		Config:   img.Config.Digest.Encoded() + ".json",
		RepoTags: repoTags(ref),
		Layers:   layerNames(img.Layers, layerPath),
	}})
	if err != nil {
		return err
	}
	return a.file("manifest.json", manifest)
}

func repoTags(ref reference.Named) []string {
	if ref.Tag() == "" || ref.Digest() != "" {
		return []string{}
	}
	return []string{reference.FamiliarString(ref)}
}

func layerNames(layers []ocispec.Descriptor, name func(digest.Digest) string) []string {
	out := make([]string, len(layers))
	for i, l := range layers {
		out[i] = name(l.Digest)
	}
	return out
}
