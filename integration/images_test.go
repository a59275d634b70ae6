package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	mountpkg "github.com/berth-containers/berth/mount"
)

const busyboxRef = "docker.io/library/busybox:latest"

// busyboxArchive builds a three-layer busybox image archive (oci or
// docker format) with berth-testimage and returns its path.
func busyboxArchive(t *testing.T, format string) string {
	t.Helper()
	requireBinary(t, "/bin/busybox")
	out := filepath.Join(t.TempDir(), "busybox-"+format+".tar")
	if o, err := runCmd(filepath.Join(binDir, "berth-testimage"), "-layers", "3", "-format", format, "-o", out); err != nil {
		t.Fatalf("berth-testimage: %v\n%s", err, o)
	}
	return out
}

// tableRows returns the rows of a ctr table after the header, as fields.
func tableRows(out string) [][]string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

var digestRE = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// imageDigest is the target digest `images ls` shows for ref.
func imageDigest(t *testing.T, out, ref string) string {
	t.Helper()
	for _, row := range tableRows(out) {
		if row[0] == ref && len(row) > 2 {
			return row[2]
		}
	}
	t.Fatalf("image %s not listed:\n%s", ref, out)
	return ""
}

func TestImagesImportListBothCtrs(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	for _, format := range []string{"oci", "docker"} {
		t.Run(format, func(t *testing.T) {
			archive := busyboxArchive(t, format)
			ns := "ours-" + format
			out := d.ctr("-n", ns, "images", "import", archive)
			if !strings.Contains(out, "unpacking "+busyboxRef+" (sha256:") || !strings.HasSuffix(strings.TrimSpace(out), "done") {
				t.Fatalf("import output:\n%s", out)
			}
			ours := d.ctr("-n", ns, "images", "ls")
			theirs := d.dctr("-n", ns, "images", "ls")
			if ours != theirs {
				t.Errorf("images ls differs:\nours:\n%s\nDebian's:\n%s", ours, theirs)
			}
			dgst := imageDigest(t, ours, busyboxRef)
			if !strings.Contains(ours, "linux/") {
				t.Errorf("no platform listed:\n%s", ours)
			}

			// Debian's ctr sees the snapshots and blobs we made.
			snaps := tableRows(d.dctr("-n", ns, "snapshots", "ls"))
			if len(snaps) != 3 {
				t.Fatalf("Debian ctr lists %d snapshots, want 3: %v", len(snaps), snaps)
			}
			for _, s := range snaps {
				if s[len(s)-1] != "Committed" {
					t.Errorf("snapshot %v not committed", s)
				}
			}
			blobs := d.dctr("-n", ns, "content", "ls", "-q")
			if n := len(strings.Fields(blobs)); n != 5 {
				t.Errorf("Debian ctr lists %d blobs, want 5 (manifest, config, 3 layers):\n%s", n, blobs)
			}
			if !strings.Contains(blobs, dgst) {
				t.Errorf("manifest %s not in content:\n%s", dgst, blobs)
			}
			check := d.ctr("-n", ns, "images", "check")
			if !strings.Contains(check, "complete (4/4)") || !strings.Contains(check, "true") {
				t.Errorf("images check:\n%s", check)
			}
			// A layer gone from the store shows: check asks the store, it
			// does not take a lazily opened reader's word for it.
			var m ocispec.Manifest
			if err := json.Unmarshal([]byte(d.ctr("-n", ns, "content", "get", dgst)), &m); err != nil || len(m.Layers) != 3 {
				t.Fatalf("manifest %s: %v %+v", dgst, err, m)
			}
			d.ctr("-n", ns, "content", "rm", m.Layers[1].Digest.String())
			if check := d.ctr("-n", ns, "images", "check"); !strings.Contains(check, "incomplete (3/4)") {
				t.Errorf("images check after a layer's removal:\n%s", check)
			}

			// Debian's ctr imports into our daemon (its client-side import
			// over our content, images, snapshots and diff services).
			dns := "debian-" + format
			dout := d.dctr("-n", dns, "images", "import", archive)
			if !strings.Contains(dout, "done") {
				t.Errorf("Debian import output:\n%s", dout)
			}
			if got := imageDigest(t, d.ctr("-n", dns, "images", "ls"), busyboxRef); got != dgst {
				t.Errorf("Debian ctr imported %s, we imported %s", got, dgst)
			}
			if check := d.ctr("-n", dns, "images", "check"); !strings.Contains(check, "true") {
				t.Errorf("not unpacked after Debian's import:\n%s", check)
			}

			// Digest names: both ctrs name the same images.
			for i, flags := range [][]string{{"--digests"}, {"--digests", "--skip-digest-for-named"}} {
				args := append(append([]string{"images", "import", "--no-unpack"}, flags...), archive)
				ons, dns := fmt.Sprintf("dig%d-ours-%s", i, format), fmt.Sprintf("dig%d-deb-%s", i, format)
				d.ctr(append([]string{"-n", ons}, args...)...)
				d.dctr(append([]string{"-n", dns}, args...)...)
				ours, theirs := d.ctr("-n", ons, "images", "ls", "-q"), d.ctr("-n", dns, "images", "ls", "-q")
				if ours != theirs {
					t.Errorf("import %v names differ:\nours:\n%s\nDebian's:\n%s", flags, ours, theirs)
				}
				if want := 2 - i; len(strings.Fields(ours)) != want {
					t.Errorf("import %v: %d images, want %d:\n%s", flags, len(strings.Fields(ours)), want, ours)
				}
			}
		})
	}
}

func TestImagesExportImportFreshDaemon(t *testing.T) {
	a := newDaemon(t, "")
	archive := busyboxArchive(t, "oci")
	a.ctr("images", "import", "--no-unpack", archive)
	// A container of an image not unpacked yet unpacks it first.
	mustContain(t, a.ctr("run", "--rm", busyboxRef, "unpacks", "echo", "unpacked-on-run"), "unpacked-on-run")
	a.ctr("images", "tag", busyboxRef, "example.com/copy:1")
	dgst := imageDigest(t, a.ctr("images", "ls"), busyboxRef)
	out := filepath.Join(t.TempDir(), "export.tar")
	a.ctr("images", "export", out, busyboxRef, "example.com/copy:1")

	b := newDaemon(t, "")
	b.ctr("images", "import", out)
	ls := b.ctr("images", "ls")
	for _, ref := range []string{busyboxRef, "example.com/copy:1"} {
		if got := imageDigest(t, ls, ref); got != dgst {
			t.Errorf("%s: imported %s, exported %s", ref, got, dgst)
		}
	}
	if check := b.ctr("images", "check"); strings.Count(check, "true") != 2 {
		t.Errorf("not unpacked in the fresh daemon:\n%s", check)
	}
	// Debian's ctr can read our export back out of the fresh daemon.
	requireBinary(t, "/usr/bin/ctr")
	again := filepath.Join(t.TempDir(), "again.tar")
	b.dctr("images", "export", again, busyboxRef)
	c := newDaemon(t, "")
	c.ctr("images", "import", again)
	if got := imageDigest(t, c.ctr("images", "ls"), busyboxRef); got != dgst {
		t.Errorf("round trip through Debian's export: %s, want %s", got, dgst)
	}
}

// storageSize is the bytes of files under the content store and the
// snapshotters (the metadata database is left out: bbolt does not shrink).
func storageSize(t *testing.T, root string) int64 {
	t.Helper()
	var total int64
	for _, dir := range []string{"io.containerd.content.v1.content", "io.containerd.snapshotter.v1.overlayfs", "io.containerd.snapshotter.v1.native"} {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || strings.HasSuffix(p, ".db") {
				return nil
			}
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
			return nil
		})
	}
	return total
}

func TestImagesRemoveCollectsGarbage(t *testing.T) {
	d := newDaemon(t, "")
	archive := busyboxArchive(t, "oci")
	baseline := storageSize(t, d.Root)
	d.ctr("images", "import", archive)
	d.ctr("images", "import", "--snapshotter", "native", archive)
	d.ctr("images", "tag", busyboxRef, "example.com/other:1")
	full := storageSize(t, d.Root)
	if full < baseline+1<<20 {
		t.Fatalf("import grew storage from %d to only %d bytes", baseline, full)
	}

	// One of two names gone: everything stays.
	d.ctr("images", "rm", "--sync", "example.com/other:1")
	if now := storageSize(t, d.Root); now != full {
		t.Fatalf("removing one of two names changed storage: %d -> %d", full, now)
	}
	if n := len(tableRows(d.ctr("snapshots", "ls"))); n != 3 {
		t.Fatalf("%d overlayfs snapshots left, want 3", n)
	}

	out := d.ctr("images", "rm", "--sync", busyboxRef)
	if strings.TrimSpace(out) != busyboxRef {
		t.Errorf("rm output: %q", out)
	}
	if now := storageSize(t, d.Root); now > baseline+64<<10 {
		t.Errorf("after rm --sync storage is %d bytes, baseline %d", now, baseline)
	}
	for _, sn := range []string{"overlayfs", "native"} {
		if rows := tableRows(d.ctr("snapshots", "--snapshotter", sn, "ls")); len(rows) != 0 {
			t.Errorf("%s snapshots left: %v", sn, rows)
		}
	}
	if blobs := strings.TrimSpace(d.ctr("content", "ls", "-q")); blobs != "" {
		t.Errorf("blobs left:\n%s", blobs)
	}
	// Not found is a warning, not a failure, as with ctr.
	if out, err := d.ctrErr("images", "rm", busyboxRef); err != nil || !strings.Contains(out, "not found") {
		t.Errorf("rm of a missing image: %v\n%s", err, out)
	}
	if digestRE.MatchString(d.ctr("images", "ls", "-q")) {
		t.Error("images left")
	}
}

// `ctr images mount` mounts an image (unpacking it first if needed) read-
// only, or writable with --rw; `unmount` undoes it and with --rm drops the
// snapshot and its lease; a mount of the other kind over a kept snapshot is
// refused.
func TestImagesMount(t *testing.T) {
	d := newDaemon(t, "")
	d.ctr("images", "import", "--no-unpack", busyboxArchive(t, "oci"))
	snapsBefore := d.ctr("snapshots", "ls")
	target := t.TempDir()
	t.Cleanup(func() { mountpkg.UnmountAll(target, 0) })
	mustContain(t, d.ctr("images", "mount", busyboxRef, target), target)
	if _, err := os.Stat(filepath.Join(target, "bin", "busybox")); err != nil {
		t.Fatalf("image not mounted: %v", err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
		t.Fatal("read-only mount is writable")
	}
	mustContain(t, d.ctr("leases", "ls"), target)
	d.ctr("images", "unmount", target)
	if _, err := os.Stat(filepath.Join(target, "bin")); !os.IsNotExist(err) {
		t.Fatalf("still mounted after unmount: %v", err)
	}
	out, err := d.ctrErr("images", "mount", "--rw", busyboxRef, target)
	mustFail(t, out, err, "unmount --rm")
	d.ctr("images", "unmount", "--rm", target)
	if out := d.ctr("leases", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("leases left: %q", out)
	}

	d.ctr("images", "mount", "--rw", busyboxRef, target)
	if err := os.WriteFile(filepath.Join(target, "x"), []byte("w"), 0o644); err != nil {
		t.Fatalf("--rw mount: %v", err)
	}
	d.ctr("images", "unmount", "--rm", target)
	if _, err := os.Stat(filepath.Join(target, "x")); !os.IsNotExist(err) {
		t.Fatalf("still mounted after unmount --rm: %v", err)
	}
	// The image's own layers stay unpacked; only the mount's snapshot goes.
	after := d.ctr("snapshots", "ls")
	if strings.Contains(after, target) || strings.Count(after, "\n") <= strings.Count(snapsBefore, "\n") {
		t.Fatalf("snapshots after unmount --rm:\n%s", after)
	}
	out, err = d.ctrErr("images", "mount", "docker.io/library/nosuch:1", target)
	mustFail(t, out, err, "not found")
	if out := d.ctr("leases", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("leases left after a failed mount: %q", out)
	}

	// A snapshot named by the target that no lease holds (made here with
	// snapshots prepare) goes too, from the snapshotter given.
	d.ctr("snapshots", "--snapshotter", "native", "prepare", target)
	if !strings.Contains(d.ctr("snapshots", "--snapshotter", "native", "ls"), target) {
		t.Fatal("prepared snapshot not listed")
	}
	d.ctr("images", "unmount", "--rm", "--snapshotter", "native", target)
	if after := d.ctr("snapshots", "--snapshotter", "native", "ls"); strings.Contains(after, target) {
		t.Fatalf("snapshot left after unmount --rm --snapshotter native:\n%s", after)
	}
}

// `ctr content edit` stores what the editor leaves as a new blob and prints
// its digest; with --validate json an edit that breaks the JSON stores
// nothing.
func TestContentEdit(t *testing.T) {
	d := newDaemon(t, "")
	d.ctr("images", "import", busyboxArchive(t, "oci"))
	var config string
	for _, line := range strings.Split(d.ctr("content", "ls"), "\n") {
		if strings.Contains(line, "containerd.io/gc.ref.snapshot.") {
			config = strings.Fields(line)[0]
		}
	}
	if config == "" {
		t.Fatal("no image config in content ls")
	}
	out := strings.TrimSpace(d.ctr("content", "edit", "--validate", "json", "--editor", "sed -i s/amd64/arm64/", config))
	if !strings.HasPrefix(out, "sha256:") || out == config {
		t.Fatalf("edit printed %q", out)
	}
	mustContain(t, d.ctr("content", "get", out), `"architecture":"arm64"`)
	before := d.ctr("content", "ls", "-q")
	out2, err := d.ctrErr("content", "edit", "--validate", "json", "--editor", "sed -i s/{/x/", config)
	mustFail(t, out2, err, "not valid JSON")
	if after := d.ctr("content", "ls", "-q"); after != before {
		t.Fatalf("a failed edit stored a blob:\n%s\nthen\n%s", before, after)
	}
}

// foreignLayerArchive is the busybox OCI archive (busyboxRef) with one
// more layer, non-distributable ("foreign"), whose blob it holds.
func foreignLayerArchive(t *testing.T) (path string, foreign, manifest digest.Digest) {
	t.Helper()
	src, err := os.ReadFile(busyboxArchive(t, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	// The busybox archive, its manifest given one more layer.
	files := map[string][]byte{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(src))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[h.Name] = b
			order = append(order, h.Name)
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %+v", err, idx)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(files["blobs/sha256/"+idx.Manifests[0].Digest.Encoded()], &m); err != nil {
		t.Fatal(err)
	}
	layer := []byte("a layer that may not be redistributed")
	fdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerNonDistributableGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	m.Layers = append(m.Layers, fdesc)
	mb, _ := json.Marshal(m)
	idx.Manifests[0].Digest, idx.Manifests[0].Size = digest.FromBytes(mb), int64(len(mb))
	files["index.json"], _ = json.Marshal(idx)
	for name, b := range map[string][]byte{"blobs/sha256/" + fdesc.Digest.Encoded(): layer, "blobs/sha256/" + idx.Manifests[0].Digest.Encoded(): mb} {
		files[name] = b
		order = append(order, name)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range order {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
	}
	tw.Close()
	path = filepath.Join(t.TempDir(), "foreign.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, fdesc.Digest, idx.Manifests[0].Digest
}

// TestExportSkipNonDistributable: an image with a non-distributable
// ("foreign") layer the store has exports it, and with
// --skip-non-distributable leaves it out.
func TestExportSkipNonDistributable(t *testing.T) {
	d := newDaemon(t, "")
	in, foreign, manifest := foreignLayerArchive(t)
	d.ctr("images", "import", "--no-unpack", in)

	blob := "blobs/sha256/" + foreign.Encoded()
	for _, tc := range []struct {
		flags []string
		want  bool
	}{{nil, true}, {[]string{"--skip-non-distributable"}, false}} {
		out := filepath.Join(t.TempDir(), "out.tar")
		d.ctr(append(append([]string{"images", "export"}, tc.flags...), out, busyboxRef)...)
		names, err := exec.Command("tar", "-tf", out).CombinedOutput()
		if err != nil {
			t.Fatalf("tar -tf: %v %s", err, names)
		}
		if got := strings.Contains(string(names), blob+"\n"); got != tc.want {
			t.Errorf("export %v: foreign layer in archive %v, want %v:\n%s", tc.flags, got, tc.want, names)
		}
		if !strings.Contains(string(names), manifest.Encoded()) {
			t.Errorf("export %v: manifest missing:\n%s", tc.flags, names)
		}
	}
}

// TestImportCompressBlobs: a docker archive with uncompressed layers
// (as docker save writes them) imported with --compress-blobs gets gzip
// layers, byte for byte those containerd's ctr makes, and runs.
func TestImportCompressBlobs(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	archive := filepath.Join(t.TempDir(), "plain.tar")
	if o, err := runCmd(filepath.Join(binDir, "berth-testimage"), "-layers", "3", "-format", "docker", "-uncompressed", "-o", archive); err != nil {
		t.Fatalf("berth-testimage: %v\n%s", err, o)
	}
	d.ctr("-n", "gz-ours", "images", "import", "--compress-blobs", archive)
	d.dctr("-n", "gz-deb", "images", "import", "--compress-blobs", archive)
	d.ctr("-n", "plain", "images", "import", archive)
	ours := imageDigest(t, d.ctr("-n", "gz-ours", "images", "ls"), busyboxRef)
	if theirs := imageDigest(t, d.ctr("-n", "gz-deb", "images", "ls"), busyboxRef); ours != theirs {
		t.Errorf("--compress-blobs: we made %s, Debian's ctr %s", ours, theirs)
	}
	if plain := imageDigest(t, d.ctr("-n", "plain", "images", "ls"), busyboxRef); plain == ours {
		t.Errorf("--compress-blobs changed nothing (%s)", plain)
	}
	mustContain(t, d.ctr("-n", "gz-ours", "content", "get", ours), "application/vnd.docker.image.rootfs.diff.tar.gzip")
	mustContain(t, d.ctr("-n", "gz-ours", "run", "--rm", busyboxRef, "gz", "echo", "compressed on import"), "compressed on import")
}
