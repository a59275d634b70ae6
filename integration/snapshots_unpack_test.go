package integration

import (
	"strings"
	"testing"
)

// snapshotChain checks that ls (a `snapshots ls` table) is one linear chain
// of n committed snapshots and returns its keys, base first.
func snapshotChain(t *testing.T, ls string, n int) []string {
	t.Helper()
	rows := tableRows(ls)
	if len(rows) != n {
		t.Fatalf("%d snapshots, want %d:\n%s", len(rows), n, ls)
	}
	child := map[string]string{} // parent -> key
	for _, r := range rows {
		if r[len(r)-1] != "Committed" {
			t.Fatalf("snapshot %s is not committed:\n%s", r[0], ls)
		}
		parent := ""
		if len(r) == 3 {
			parent = r[1]
		}
		if _, dup := child[parent]; dup {
			t.Fatalf("two snapshots share parent %q: not a chain:\n%s", parent, ls)
		}
		child[parent] = r[0]
	}
	var chain []string
	for k, ok := child[""]; ok; k, ok = child[k] {
		chain = append(chain, k)
	}
	if len(chain) != n {
		t.Fatalf("snapshots do not form one chain from a base:\n%s", ls)
	}
	return chain
}

// `ctr snapshots unpack DIGEST` unpacks the image whose target is DIGEST,
// as containerd 1.6's does: the same committed chain as Debian's ctr makes,
// idempotent, kept by the image through garbage collection, into
// --snapshotter; bad and unknown digests fail clearly.
func TestSnapshotsUnpack(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	for _, tc := range []struct{ format, mediaType string }{
		{"oci", "application/vnd.oci.image.manifest.v1+json"},
		{"docker", "application/vnd.docker.distribution.manifest.v2+json"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			archive := busyboxArchive(t, tc.format)
			ours, theirs := "unpack-"+tc.format, "unpack-debian-"+tc.format
			d.ctr("-n", ours, "images", "import", "--no-unpack", archive)
			if rows := tableRows(d.ctr("-n", ours, "snapshots", "ls")); len(rows) != 0 {
				t.Fatalf("import --no-unpack made snapshots: %v", rows)
			}
			dgst := imageDigest(t, d.ctr("-n", ours, "images", "ls"), busyboxRef)

			want := "unpacking " + dgst + " (" + tc.mediaType + ")...done\n"
			if out := d.ctr("-n", ours, "snapshots", "unpack", dgst); out != want {
				t.Fatalf("unpack printed %q, want %q", out, want)
			}
			ls := d.ctr("-n", ours, "snapshots", "ls")
			chain := snapshotChain(t, ls, 3)

			// Debian's ctr unpacking the same image makes the same chain.
			d.ctr("-n", theirs, "images", "import", "--no-unpack", archive)
			if out := d.dctr("-n", theirs, "snapshots", "unpack", dgst); out != want {
				t.Fatalf("Debian's unpack printed %q, want %q", out, want)
			}
			if dls := d.ctr("-n", theirs, "snapshots", "ls"); dls != ls {
				t.Errorf("snapshots differ from Debian's ctr's:\nours:\n%s\nDebian's:\n%s", ls, dls)
			}

			// Again: nothing new, nothing lost.
			if out := d.ctr("-n", ours, "snapshots", "unpack", dgst); out != want {
				t.Fatalf("second unpack printed %q, want %q", out, want)
			}
			if again := d.ctr("-n", ours, "snapshots", "ls"); again != ls {
				t.Fatalf("second unpack changed the snapshots:\nbefore:\n%s\nafter:\n%s", ls, again)
			}

			// The image keeps them through a garbage collection (its
			// config is labelled with the top snapshot) ...
			mustContain(t, d.ctr("-n", ours, "content", "ls"), "containerd.io/gc.ref.snapshot.overlayfs="+chain[2])
			d.ctr("-n", ours, "images", "tag", busyboxRef, "example.com/unpack:gc")
			d.ctr("-n", ours, "images", "rm", "--sync", "example.com/unpack:gc")
			if after := d.ctr("-n", ours, "snapshots", "ls"); after != ls {
				t.Fatalf("snapshots changed by a garbage collection:\nbefore:\n%s\nafter:\n%s", ls, after)
			}
			// ... and takes them along when it goes.
			d.ctr("-n", ours, "images", "rm", "--sync", busyboxRef)
			if rows := tableRows(d.ctr("-n", ours, "snapshots", "ls")); len(rows) != 0 {
				t.Fatalf("snapshots left after the image was removed: %v", rows)
			}
		})
	}

	t.Run("snapshotter", func(t *testing.T) {
		ns := "unpack-native"
		d.ctr("-n", ns, "images", "import", "--no-unpack", busyboxArchive(t, "oci"))
		dgst := imageDigest(t, d.ctr("-n", ns, "images", "ls"), busyboxRef)
		mustContain(t, d.ctr("-n", ns, "snapshots", "unpack", "--snapshotter", "native", dgst), "...done")
		snapshotChain(t, d.ctr("-n", ns, "snapshots", "--snapshotter", "native", "ls"), 3)
		if rows := tableRows(d.ctr("-n", ns, "snapshots", "ls")); len(rows) != 0 {
			t.Fatalf("unpack --snapshotter native wrote overlayfs snapshots: %v", rows)
		}
		out, err := d.ctrErr("-n", ns, "snapshots", "unpack", "--snapshotter", "bogus", dgst)
		// containerd's words and kind for a snapshotter it has not loaded.
		mustFail(t, out, err, "snapshotter not loaded: bogus", "invalid argument")
	})

	t.Run("errors", func(t *testing.T) {
		ns := "unpack-errors"
		d.ctr("-n", ns, "images", "import", "--no-unpack", busyboxArchive(t, "oci"))
		dgst := imageDigest(t, d.ctr("-n", ns, "images", "ls"), busyboxRef)
		unknown := "sha256:" + strings.Repeat("0", 64)
		for _, tc := range []struct {
			ns    string
			args  []string
			wants []string
		}{
			{ns, nil, []string{"must provide a manifest digest"}},
			{ns, []string{"nope"}, []string{"invalid checksum digest format"}},
			{ns, []string{"sha256:abc"}, []string{"invalid checksum digest length"}},
			{ns, []string{unknown}, []string{"manifest " + unknown, `no image in namespace "` + ns + `"`, "not found"}},
			// The image is in another namespace only.
			{"default", []string{dgst}, []string{`no image in namespace "default"`, "not found"}},
		} {
			out, err := d.ctrErr(append([]string{"-n", tc.ns, "snapshots", "unpack"}, tc.args...)...)
			mustFail(t, out, err, tc.wants...)
		}
		if rows := tableRows(d.ctr("-n", ns, "snapshots", "ls")); len(rows) != 0 {
			t.Fatalf("failed unpacks made snapshots: %v", rows)
		}
	})
}
