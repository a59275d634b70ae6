package archive

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/berth-containers/berth/images/testimage"
)

func FuzzImport(f *testing.F) {
	tiny := testimage.Options{
		Name:         "fuzz:1",
		Uncompressed: true,
		Layers:       []testimage.Layer{{Files: []testimage.File{testimage.Regular("a", "a", 0o644)}}},
	}
	oci, _ := build(f, tiny)
	tiny.Format = testimage.Docker
	docker, _ := build(f, tiny)
	f.Add(oci)
	f.Add(docker)
	f.Add(oci[:len(oci)/2])
	f.Add(makeTar(f, file("oci-layout", []byte(layout)), file("index.json", []byte(`{"schemaVersion":2,"manifests":[]}`))))
	f.Add(makeTar(f, file("manifest.json", []byte(`[{"Config":"c.json","RepoTags":["x"],"Layers":["l/layer.tar"]}]`)), file("c.json", []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`))))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s := newStore()
		recs, err := Import(ctx, s, bytes.NewReader(data), WithAllPlatforms(), WithDigests())
		if s.OpenIngests() != 0 {
			t.Fatalf("%d ingests left open (err %v)", s.OpenIngests(), err)
		}
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Name == "" {
				t.Fatal("record without a name")
			}
			if _, err := s.Info(ctx, r.Target.Digest); err != nil {
				t.Fatalf("record %s: target not stored: %v", r.Name, err)
			}
		}
	})
}
