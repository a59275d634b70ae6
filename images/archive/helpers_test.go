package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"github.com/berth-containers/berth/images/internal/memstore"
	"github.com/berth-containers/berth/images/testimage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// smallImage is a three-layer image of plain files; the third layer
// deletes a file of the second.
func smallImage(name string, platform *ocispec.Platform) testimage.Options {
	return testimage.Options{
		Name:     name,
		Platform: platform,
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
		Layers: []testimage.Layer{
			{Files: []testimage.File{testimage.Dir("etc", 0o755), testimage.Regular("etc/hostname", "test\n", 0o644)}},
			{Files: []testimage.File{testimage.Regular("a.txt", "a\n", 0o644), testimage.Regular("b.txt", "b\n", 0o644)}},
			{Files: []testimage.File{testimage.Whiteout("b.txt"), testimage.Regular("c.txt", name, 0o644)}},
		},
	}
}

func build(t testing.TB, opts testimage.Options) ([]byte, testimage.Image) {
	t.Helper()
	var buf bytes.Buffer
	img, err := testimage.Build(context.Background(), &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), img
}

// entry is one hand-made tar entry.
type entry struct {
	name     string
	typeflag byte
	body     []byte
	link     string
	size     int64 // header size when it must differ from len(body)
}

func file(name string, body []byte) entry {
	return entry{name: name, typeflag: tar.TypeReg, body: body}
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.typeflag != tar.TypeReg {
			size = 0
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Size: size, Mode: 0o644, Linkname: e.link}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			tw.Write(e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entries splits an archive back into entries, to rebuild hostile ones.
func entries(t testing.TB, archive []byte) []entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	var out []entry
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		var body bytes.Buffer
		body.ReadFrom(tr)
		out = append(out, entry{name: hdr.Name, typeflag: hdr.Typeflag, body: body.Bytes(), link: hdr.Linkname})
	}
	return out
}

func newStore() *memstore.Store { return memstore.New() }
