package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const layout = `{"imageLayoutVersion":"1.0.0"}`

func indexOf(descs ...ocispec.Descriptor) []byte {
	p, _ := json.Marshal(ocispec.Index{Versioned: struct {
		SchemaVersion int `json:"schemaVersion"`
	}{2}, Manifests: descs})
	return p
}

func blob(p []byte) string { return "blobs/sha256/" + digest.FromBytes(p).Encoded() }

func TestImportHostile(t *testing.T) {
	ctx := context.Background()
	good, built := build(t, smallImage("docker.io/library/app:1", nil))
	goodEntries := entries(t, good)
	dopts := smallImage("app:1", nil)
	dopts.Format, dopts.Uncompressed = testimage.Docker, true
	dockerGood, _ := build(t, dopts)
	dockerEntries := entries(t, dockerGood)

	// replace returns the good archive with entry name's body replaced.
	replace := func(es []entry, name string, body []byte) []byte {
		out := append([]entry(nil), es...)
		for i := range out {
			if out[i].name == name {
				out[i].body = body
			}
		}
		return makeTar(t, out...)
	}
	drop := func(es []entry, name string) []entry {
		var out []entry
		for _, e := range es {
			if e.name != name {
				out = append(out, e)
			}
		}
		return out
	}
	without := func(es []entry, name string) []byte { return makeTar(t, drop(es, name)...) }
	with := func(es []entry, extra ...entry) []byte {
		return makeTar(t, append(append([]entry(nil), extra...), es...)...)
	}

	layerName := "blobs/sha256/" + built.Layers[1].Digest.Encoded()
	manifestJSON := func() []byte {
		for _, e := range goodEntries {
			if e.name == "blobs/sha256/"+built.Manifest.Digest.Encoded() {
				return e.body
			}
		}
		t.Fatal("no manifest")
		return nil
	}()
	confused := append([]byte(`{"manifests":[],`), manifestJSON[1:]...)
	wrongDiff := func() []byte {
		var m []map[string]any
		for _, e := range dockerEntries {
			if e.name == "manifest.json" {
				json.Unmarshal(e.body, &m)
			}
		}
		layers := m[0]["Layers"].([]any)
		layers[0], layers[1] = layers[1], layers[0]
		p, _ := json.Marshal(m)
		return p
	}()
	schema1 := []byte(`{"schemaVersion":1}`)
	hugeHeader := entry{name: "index.json", typeflag: tar.TypeReg, body: bytes.Repeat([]byte(" "), images.MaxJSONSize+1)}

	for _, tc := range []struct {
		name string
		data []byte
		kind func(error) bool
		msg  string
	}{
		{"empty", nil, errdefs.IsInvalidArgument, "truncated"},
		{"only end marker", makeTar(t), errdefs.IsInvalidArgument, "neither index.json nor manifest.json"},
		{"not a tar", []byte("hello world, this is not a tar archive at all"), errdefs.IsInvalidArgument, "read archive"},
		{"truncated in a blob", good[:len(good)/2], errdefs.IsInvalidArgument, "truncated"},
		{"truncated at an entry boundary", good[:len(good)-1024], errdefs.IsInvalidArgument, "truncated"},
		{"truncated in the end marker", good[:len(good)-700], errdefs.IsInvalidArgument, "truncated"},
		{"blob content is not its digest", replace(goodEntries, layerName, []byte("evil")), errdefs.IsInvalidArgument, built.Layers[1].Digest.String()},
		{"blob name not a digest", with(goodEntries, file("blobs/sha256/1234", []byte("x"))), errdefs.IsInvalidArgument, "invalid digest"},
		{"blob nested", with(goodEntries, file("blobs/sha256/a/b", []byte("x"))), errdefs.IsInvalidArgument, "blobs/ALGORITHM/HEX"},
		{"blob unknown algorithm", with(goodEntries, file("blobs/md5/d41d8cd98f00b204e9800998ecf8427e", []byte(""))), errdefs.IsInvalidArgument, "invalid digest"},
		{"index.json invalid JSON", replace(goodEntries, "index.json", []byte(`{"schemaVersion":2,`)), errdefs.IsInvalidArgument, "invalid JSON"},
		{"index.json wrong schema", replace(goodEntries, "index.json", []byte(`{"schemaVersion":3,"manifests":[]}`)), errdefs.IsInvalidArgument, "schemaVersion"},
		{"index.json too big", with(nil, file("oci-layout", []byte(layout)), hugeHeader), errdefs.IsInvalidArgument, "limit"},
		{"index.json unknown media type", replace(goodEntries, "index.json", indexOf(ocispec.Descriptor{MediaType: "application/x-evil", Digest: built.Manifest.Digest, Size: built.Manifest.Size})), errdefs.IsNotImplemented, `unknown media type "application/x-evil"`},
		{"index.json bad digest", replace(goodEntries, "index.json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:12","size":3}]}`)), errdefs.IsInvalidArgument, "invalid digest"},
		{"index.json negative size", replace(goodEntries, "index.json", indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: built.Manifest.Digest, Size: -5})), errdefs.IsInvalidArgument, "negative size"},
		{"index.json absurd size", replace(goodEntries, "index.json", indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: built.Manifest.Digest, Size: 1 << 40})), errdefs.IsInvalidArgument, "exceeds"},
		{"manifest size lies", replace(goodEntries, "index.json", indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: built.Manifest.Digest, Size: built.Manifest.Size + 1})), errdefs.IsFailedPrecondition, "size"},
		{"manifest missing", without(goodEntries, "blobs/sha256/"+built.Manifest.Digest.Encoded()), errdefs.IsNotFound, built.Manifest.Digest.String()},
		{"layer missing", without(goodEntries, layerName), errdefs.IsNotFound, built.Layers[1].Digest.String()},
		{"schema 1 root", with(drop(goodEntries, "index.json"), file("index.json", indexOf(ocispec.Descriptor{MediaType: images.MediaTypeDockerSchema1Manifest, Digest: digest.FromBytes(schema1), Size: int64(len(schema1))})), file(blob(schema1), schema1)), errdefs.IsNotImplemented, "schema 1"},
		{"manifest invalid JSON", replace(goodEntries, "index.json", indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: built.Layers[0].Digest, Size: built.Layers[0].Size})), errdefs.IsInvalidArgument, "invalid JSON"},
		{"no oci-layout", without(goodEntries, "oci-layout"), errdefs.IsInvalidArgument, "without oci-layout"},
		{"bad oci-layout", replace(goodEntries, "oci-layout", []byte(`{"imageLayoutVersion":"9"}`)), errdefs.IsNotImplemented, "layout version"},
		{"duplicate entry", makeTar(t, append(append([]entry(nil), goodEntries...), file("index.json", []byte("{}")))...), errdefs.IsInvalidArgument, "twice"},
		{"dot-dot entry", with(goodEntries, file("../evil", []byte("x"))), errdefs.IsInvalidArgument, `".."`},
		{"dot-dot inside", with(goodEntries, file("blobs/../../evil", []byte("x"))), errdefs.IsInvalidArgument, `".."`},
		{"absolute entry", with(goodEntries, file("/etc/passwd", []byte("x"))), errdefs.IsInvalidArgument, "absolute"},
		{"backslash entry", with(goodEntries, file(`..\evil`, []byte("x"))), errdefs.IsInvalidArgument, "backslash"},
		{"empty element", with(goodEntries, file("a//b", []byte("x"))), errdefs.IsInvalidArgument, `""`},
		{"symlink out", with(goodEntries, entry{name: "x/layer.tar", typeflag: tar.TypeSymlink, link: "../../etc/passwd"}), errdefs.IsInvalidArgument, "leaves the archive"},
		{"symlink absolute", with(goodEntries, entry{name: "layer.tar", typeflag: tar.TypeSymlink, link: "/etc/passwd"}), errdefs.IsInvalidArgument, "absolute"},
		{"hardlink out", with(goodEntries, entry{name: "layer.tar", typeflag: tar.TypeLink, link: "../x"}), errdefs.IsInvalidArgument, "leaves the archive"},
		{"device entry", with(goodEntries, entry{name: "dev", typeflag: tar.TypeChar}), errdefs.IsInvalidArgument, "not allowed"},
		{"fifo entry", with(goodEntries, entry{name: "fifo", typeflag: tar.TypeFifo}), errdefs.IsInvalidArgument, "not allowed"},
		{"docker diff ID mismatch", replace(dockerEntries, "manifest.json", wrongDiff), errdefs.IsInvalidArgument, "diff ID"},
		{"docker missing layer", replace(dockerEntries, "manifest.json", []byte(`[{"Config":"`+built.Config.Digest.Encoded()+`.json","Layers":["nope/layer.tar"]}]`)), errdefs.IsNotFound, "missing"},
		{"docker empty manifest", replace(dockerEntries, "manifest.json", []byte(`[]`)), errdefs.IsInvalidArgument, "no images"},
		{"docker invalid JSON", replace(dockerEntries, "manifest.json", []byte(`[{`)), errdefs.IsInvalidArgument, "invalid JSON"},
		{"docker bad tag", replace(dockerEntries, "manifest.json", bytes.Replace(entryBody(dockerEntries, "manifest.json"), []byte("app:1"), []byte("APP:1"), 1)), errdefs.IsInvalidArgument, "lowercase"},
		{"docker config traversal", replace(dockerEntries, "manifest.json", []byte(`[{"Config":"../x.json","Layers":[]}]`)), errdefs.IsInvalidArgument, "not valid"},
		{"docker link loop", with(drop(dockerEntries, "manifest.json"), file("manifest.json", []byte(`[{"Config":"a.json","Layers":[]}]`)), entry{name: "a.json", typeflag: tar.TypeSymlink, link: "b.json"}, entry{name: "b.json", typeflag: tar.TypeSymlink, link: "a.json"}), errdefs.IsInvalidArgument, "links"},
		{"manifest that is also an index", with(drop(goodEntries, "index.json"), file("index.json", indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(confused), Size: int64(len(confused))})), file(blob(confused), confused)), errdefs.IsInvalidArgument, "index field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			_, err := Import(ctx, s, bytes.NewReader(tc.data))
			if err == nil || !tc.kind(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want kind and %q", err, tc.msg)
			}
			if s.OpenIngests() != 0 {
				t.Fatalf("%d ingests left open", s.OpenIngests())
			}
		})
	}
}

func entryBody(es []entry, name string) []byte {
	for _, e := range es {
		if e.name == name {
			return e.body
		}
	}
	return nil
}

func TestImportDockerLinks(t *testing.T) {
	// docker save shares layers between images with symlinks.
	ctx := context.Background()
	opts := smallImage("app:1", nil)
	opts.Format, opts.Uncompressed = testimage.Docker, true
	data, built := build(t, opts)
	es := entries(t, data)
	var m []dockerManifestEntry
	json.Unmarshal(entryBody(es, "manifest.json"), &m)
	m[0].Layers[0] = "linked/layer.tar"
	p, _ := json.Marshal(m)
	for i := range es {
		if es[i].name == "manifest.json" {
			es[i].body = p
		}
	}
	es = append(es, entry{name: "linked/", typeflag: tar.TypeDir}, entry{name: "linked/layer.tar", typeflag: tar.TypeSymlink, link: "../" + built.Layers[0].Digest.Encoded() + "/layer.tar"})
	recs, err := Import(ctx, newStore(), bytes.NewReader(makeTar(t, es...)))
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %+v", err, recs)
	}
}
