package integration

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/platforms"
)

const (
	dockerManifest = images.MediaTypeDockerSchema2Manifest
	dockerConfig   = images.MediaTypeDockerSchema2Config
	dockerList     = images.MediaTypeDockerSchema2ManifestList
)

// contentJSON reads the blob dgst in namespace ns with `ctr content get`
// and decodes it into v.
func contentJSON(t *testing.T, d *daemon, ns, dgst string, v any) {
	t.Helper()
	out := d.ctr("-n", ns, "content", "get", dgst)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("content %s: %v\n%.300s", dgst, err, out)
	}
}

// contentLabels are the labels `ctr content ls` shows for dgst.
func contentLabels(t *testing.T, d *daemon, ns, dgst string) map[string]string {
	t.Helper()
	for _, row := range tableRows(d.ctr("-n", ns, "content", "ls")) {
		if row[0] != dgst {
			continue
		}
		labels := map[string]string{}
		if last := row[len(row)-1]; last != "-" {
			for _, kv := range strings.Split(last, ",") {
				k, v, _ := strings.Cut(kv, "=")
				labels[k] = v
			}
		}
		return labels
	}
	t.Fatalf("blob %s not in content ls of namespace %s", dgst, ns)
	return nil
}

// blobSet is what `ctr content ls -q` lists in ns.
func blobSet(t *testing.T, d *daemon, ns string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, dg := range strings.Fields(d.ctr("-n", ns, "content", "ls", "-q")) {
		set[dg] = true
	}
	return set
}

// imageRow is the `ctr images ls` row of ref: name, type, digest, ...
func imageRow(t *testing.T, d *daemon, ns, ref string) []string {
	t.Helper()
	out := d.ctr("-n", ns, "images", "ls")
	for _, row := range tableRows(out) {
		if row[0] == ref {
			return row
		}
	}
	t.Fatalf("image %s not listed:\n%s", ref, out)
	return nil
}

// convert runs `ctr images convert` and checks that it printed the digest
// the target's record now has.
func convert(t *testing.T, d *daemon, ns string, args ...string) string {
	t.Helper()
	out := strings.TrimSpace(d.ctr(append([]string{"-n", ns, "images", "convert"}, args...)...))
	if !digestRE.MatchString(out) || len(out) != len("sha256:")+64 {
		t.Fatalf("convert printed %q, want a digest", out)
	}
	if row := imageRow(t, d, ns, args[len(args)-1]); row[2] != out {
		t.Fatalf("convert printed %s, the image's target is %s", out, row[2])
	}
	return out
}

// checkConverted checks a converted manifest: its media types, each
// layer's stored bytes against the descriptor's digest and size (for plain
// layers the config's diff ID), and the GC labels naming its children.
func checkConverted(t *testing.T, d *daemon, ns, mdigest, manifestMT, configMT, layerMT string, diffIDs []digest.Digest) ocispec.Manifest {
	t.Helper()
	var m ocispec.Manifest
	contentJSON(t, d, ns, mdigest, &m)
	if m.MediaType != manifestMT || m.Config.MediaType != configMT {
		t.Errorf("manifest %s: types %q, config %q; want %q, %q", mdigest, m.MediaType, m.Config.MediaType, manifestMT, configMT)
	}
	if len(m.Layers) != len(diffIDs) {
		t.Fatalf("manifest %s: %d layers, want %d", mdigest, len(m.Layers), len(diffIDs))
	}
	labels := contentLabels(t, d, ns, mdigest)
	if labels[images.LabelGCRefContent+"config"] != m.Config.Digest.String() {
		t.Errorf("manifest %s: config label %q, config %s", mdigest, labels[images.LabelGCRefContent+"config"], m.Config.Digest)
	}
	for i, l := range m.Layers {
		if l.MediaType != layerMT {
			t.Errorf("layer %d: type %q, want %q", i, l.MediaType, layerMT)
		}
		blob := d.ctr("-n", ns, "content", "get", l.Digest.String())
		if got := digest.FromString(blob); got != l.Digest || int64(len(blob)) != l.Size {
			t.Errorf("layer %d: stored %d bytes of digest %s, descriptor says %d of %s", i, len(blob), got, l.Size, l.Digest)
		}
		if !strings.HasSuffix(layerMT, "gzip") && l.Digest != diffIDs[i] {
			t.Errorf("plain layer %d: digest %s, diff ID %s", i, l.Digest, diffIDs[i])
		}
		if key := images.LabelGCRefContent + "l." + string(rune('0'+i)); labels[key] != l.Digest.String() {
			t.Errorf("manifest %s: label %s = %q, want %s", mdigest, key, labels[key], l.Digest)
		}
	}
	return m
}

// `ctr images convert` of a Docker image: --oci and --uncompress alone and
// together, and neither (the source's own manifest). Each converted image
// unpacks and runs, the result is byte for byte what containerd's ctr
// makes, and the converted images keep their blobs once the source is
// removed.
func TestImagesConvert(t *testing.T) {
	d := newDaemon(t, "")
	archive := busyboxArchive(t, "docker")
	d.ctr("images", "import", "--no-unpack", archive)
	src := imageRow(t, d, "default", busyboxRef)
	if src[1] != dockerManifest {
		t.Fatalf("imported a %s, want a Docker manifest", src[1])
	}
	var srcM ocispec.Manifest
	contentJSON(t, d, "default", src[2], &srcM)
	var cfg ocispec.Image
	contentJSON(t, d, "default", srcM.Config.Digest.String(), &cfg)

	cases := []struct {
		name                          string
		flags                         []string
		manifestMT, configMT, layerMT string
	}{
		// First: its run unpacks the image from the plain layers.
		{"oci-uncompress", []string{"--oci", "--uncompress"}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer},
		{"oci", []string{"--oci"}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip},
		{"uncompress", []string{"--uncompress"}, dockerManifest, dockerConfig, images.MediaTypeDockerSchema2Layer},
		{"plain", nil, dockerManifest, dockerConfig, images.MediaTypeDockerSchema2LayerGzip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := "example.com/conv:" + tc.name
			// The source as users type it: normalised.
			got := convert(t, d, "default", append(tc.flags, "busybox:latest", target)...)
			if same := got == src[2]; same != (tc.flags == nil) {
				t.Errorf("converted %s from %s", got, src[2])
			}
			if row := imageRow(t, d, "default", target); row[1] != tc.manifestMT {
				t.Errorf("images ls type %q, want %q", row[1], tc.manifestMT)
			}
			m := checkConverted(t, d, "default", got, tc.manifestMT, tc.configMT, tc.layerMT, cfg.RootFS.DiffIDs)
			if m.Config.Digest != srcM.Config.Digest {
				t.Errorf("config changed: %s -> %s", srcM.Config.Digest, m.Config.Digest)
			}
			mustContain(t, d.ctr("run", "--rm", target, "conv-"+tc.name, "sh", "-c", "echo converted-$((40+2))"), "converted-42")
		})
	}
	if out := d.ctr("leases", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("leases left: %q", out)
	}

	t.Run("same-as-containerd", func(t *testing.T) {
		requireBinary(t, "/usr/bin/ctr")
		for _, tc := range cases {
			// Ours first: containerd's then writes blobs already
			// there, and its writer names such a blob by the digest
			// our last write reply carried (it gets no commit reply).
			ns := "cmp-" + tc.name
			d.ctr("-n", ns, "images", "import", "--no-unpack", archive)
			ours := convert(t, d, ns, append(tc.flags, busyboxRef, "example.com/ours:1")...)
			theirs := strings.TrimSpace(d.dctr(append([]string{"-n", ns, "images", "convert"}, append(tc.flags, busyboxRef, "example.com/theirs:1")...)...))
			if ours != theirs {
				t.Errorf("%v: ours %s, containerd's ctr %s", tc.flags, ours, theirs)
			}
		}
	})

	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"no args", nil, []string{"src and target image need to be specified"}},
		{"one arg", []string{busyboxRef}, []string{"src and target image need to be specified"}},
		{"three args", []string{busyboxRef, "example.com/x:1", "example.com/y:1"}, []string{"unexpected arguments"}},
		{"bad source", []string{"Not A Ref", "example.com/x:1"}, []string{"source", `"Not A Ref"`}},
		{"bad target", []string{busyboxRef, "example.com/x:1:2"}, []string{"target", `"example.com/x:1:2"`}},
		{"missing source", []string{"docker.io/library/nosuch:1", "example.com/x:1"}, []string{"nosuch", "not found"}},
		{"bad platform", []string{"--platform", "linux/amd64/v1/x", busyboxRef, "example.com/x:1"}, []string{"platform", "linux/amd64/v1/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := d.ctrErr(append([]string{"images", "convert"}, tc.args...)...)
			mustFail(t, out, err, tc.wants...)
		})
	}
	if strings.Contains(d.ctr("images", "ls", "-q"), "example.com/x") {
		t.Fatal("a failed convert created its target")
	}

	// GC: the source gone, every converted image keeps all its blobs and
	// still runs; with them gone too, nothing is left.
	d.ctr("images", "rm", "--sync", busyboxRef)
	blobs := blobSet(t, d, "default")
	for _, tc := range cases {
		var m ocispec.Manifest
		target := "example.com/conv:" + tc.name
		mdigest := imageRow(t, d, "default", target)[2]
		contentJSON(t, d, "default", mdigest, &m)
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if !blobs[b.Digest.String()] {
				t.Errorf("%s: %s %s collected with the source image", target, b.MediaType, b.Digest)
			}
		}
	}
	mustContain(t, d.ctr("run", "--rm", "example.com/conv:uncompress", "after-rm", "echo", "still-runs"), "still-runs")
	for _, tc := range cases {
		d.ctr("images", "rm", "--sync", "example.com/conv:"+tc.name)
	}
	if left := blobSet(t, d, "default"); len(left) != 0 {
		t.Errorf("blobs left with every image removed: %v", left)
	}
}

// otherPlatform is a platform this host's matcher does not accept.
func otherPlatform() string {
	if runtime.GOARCH == "s390x" {
		return "linux/ppc64le"
	}
	return "linux/s390x"
}

// `ctr images convert` of a Docker manifest list: by default only this
// host's platform is kept; --platform (repeatable) keeps those named,
// --all-platforms all; --oci makes the list an OCI index of OCI manifests.
func TestImagesConvertPlatforms(t *testing.T) {
	d := newDaemon(t, "")
	host, other := platforms.DefaultString(), otherPlatform()
	d.ctr("images", "import", "--no-unpack", busyboxArchive(t, "docker"))
	otherArchive := filepath.Join(t.TempDir(), "other.tar")
	if o, err := runCmd(filepath.Join(binDir, "berth-testimage"), "-layers", "2", "-format", "docker", "-platform", other, "-name", "example.com/part:other", "-o", otherArchive); err != nil {
		t.Fatalf("berth-testimage: %v\n%s", err, o)
	}
	d.ctr("images", "import", "--no-unpack", "--all-platforms", otherArchive)

	// The list, written through the client as a registry pull would.
	cl := loadClient(t, d)
	defer cl.Close()
	ctx := namespaces.WithNamespace(context.Background(), "default")
	var entries []ocispec.Descriptor
	diffIDs := map[string][]digest.Digest{}
	for _, e := range []struct{ ref, platform string }{{busyboxRef, host}, {"example.com/part:other", other}} {
		img, err := cl.ImageService().Get(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		p := platforms.MustParse(e.platform)
		desc := img.Target
		desc.Platform = &p
		entries = append(entries, desc)
		var m ocispec.Manifest
		contentJSON(t, d, "default", desc.Digest.String(), &m)
		var cfg ocispec.Image
		contentJSON(t, d, "default", m.Config.Digest.String(), &cfg)
		diffIDs[e.platform] = cfg.RootFS.DiffIDs
	}
	p, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: dockerList, Manifests: entries})
	if err != nil {
		t.Fatal(err)
	}
	list := ocispec.Descriptor{MediaType: dockerList, Digest: digest.FromBytes(p), Size: int64(len(p))}
	cs := cl.ContentStore()
	w, err := cs.Writer(ctx, content.WithRef("list"), content.WithDescriptor(list))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, list.Size, list.Digest); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := images.SetGCLabels(ctx, cs, list, entries); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ImageService().Create(ctx, client.ImageInfo{Name: "example.com/multi:1", Target: list}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		flags      []string
		indexMT    string
		platforms  []string
		manifestMT string
		layerMT    string
	}{
		{"default", nil, dockerList, []string{host}, dockerManifest, images.MediaTypeDockerSchema2LayerGzip},
		{"other", []string{"--platform", other}, dockerList, []string{other}, dockerManifest, images.MediaTypeDockerSchema2LayerGzip},
		{"both", []string{"--platform", host, "--platform", other}, dockerList, []string{host, other}, dockerManifest, images.MediaTypeDockerSchema2LayerGzip},
		{"all-oci", []string{"--all-platforms", "--oci"}, ocispec.MediaTypeImageIndex, []string{host, other}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip},
		{"host-oci-uncompress", []string{"--oci", "--uncompress"}, ocispec.MediaTypeImageIndex, []string{host}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := "example.com/multi:" + tc.name
			got := convert(t, d, "default", append(tc.flags, "example.com/multi:1", target)...)
			if row := imageRow(t, d, "default", target); row[1] != tc.indexMT {
				t.Errorf("images ls type %q, want %q", row[1], tc.indexMT)
			}
			var idx ocispec.Index
			contentJSON(t, d, "default", got, &idx)
			if idx.MediaType != tc.indexMT {
				t.Errorf("index mediaType %q, want %q", idx.MediaType, tc.indexMT)
			}
			labels := contentLabels(t, d, "default", got)
			var ps []string
			for i, m := range idx.Manifests {
				if m.Platform == nil {
					t.Fatalf("entry %d lost its platform", i)
				}
				pf := platforms.Format(*m.Platform)
				ps = append(ps, pf)
				configMT := dockerConfig
				if tc.manifestMT == ocispec.MediaTypeImageManifest {
					configMT = ocispec.MediaTypeImageConfig
				}
				if m.MediaType != tc.manifestMT {
					t.Errorf("entry %d type %q, want %q", i, m.MediaType, tc.manifestMT)
				}
				checkConverted(t, d, "default", m.Digest.String(), tc.manifestMT, configMT, tc.layerMT, diffIDs[pf])
				if key := images.LabelGCRefContent + "m." + string(rune('0'+i)); labels[key] != m.Digest.String() {
					t.Errorf("index label %s = %q, want %s", key, labels[key], m.Digest)
				}
			}
			if strings.Join(ps, ",") != strings.Join(tc.platforms, ",") {
				t.Errorf("platforms %v, want %v", ps, tc.platforms)
			}
			if _, extra := labels[images.LabelGCRefContent+"m."+string(rune('0'+len(idx.Manifests)))]; extra {
				t.Errorf("index keeps a reference to a dropped entry: %v", labels)
			}
		})
	}
	out, err := d.ctrErr("images", "convert", "--platform", "linux/riscv64", "example.com/multi:1", "example.com/multi:none")
	mustFail(t, out, err, "no manifest matches")

	// The sources gone, the host-only conversion keeps what it needs and runs.
	for _, ref := range []string{"example.com/multi:1", busyboxRef, "example.com/part:other"} {
		d.ctr("images", "rm", "--sync", ref)
	}
	for _, tc := range cases {
		blobs := blobSet(t, d, "default")
		var idx ocispec.Index
		contentJSON(t, d, "default", imageRow(t, d, "default", "example.com/multi:"+tc.name)[2], &idx)
		for _, e := range idx.Manifests {
			var m ocispec.Manifest
			contentJSON(t, d, "default", e.Digest.String(), &m)
			for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if !blobs[b.Digest.String()] {
					t.Errorf("%s: %s collected with the sources", tc.name, b.Digest)
				}
			}
		}
	}
	mustContain(t, d.ctr("run", "--rm", "example.com/multi:host-oci-uncompress", "multi", "echo", "multi-runs"), "multi-runs")
}
