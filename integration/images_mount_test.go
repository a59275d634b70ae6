package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	mountpkg "github.com/berth-containers/berth/mount"
)

// `ctr images mount` of an image not in the store pulls it first with the
// registry flags and --label (containerd's takes the flags and ignores
// them); unmount accepts them as containerd's does.
func TestImagesMountPulls(t *testing.T) {
	reg := startRegistry(t, registryOpts{user: "mounter", password: "s3cret"})
	d := newDaemon(t, "")
	ref := reg.Host + "/mnt/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 0))
	d.ctr("images", "push", "--user", "mounter:s3cret", ref)

	target := t.TempDir()
	t.Cleanup(func() { mountpkg.UnmountAll(target, 0) })
	// Without credentials the pull is refused and nothing is left.
	out, err := d.ctrErr("-n", "mnt", "images", "mount", ref, target)
	mustFail(t, out, err, "--user")
	if out := d.ctr("-n", "mnt", "leases", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("leases left after a failed mount: %q", out)
	}

	mustContain(t, d.ctr("-n", "mnt", "images", "mount", "--user", "mounter:s3cret", "--label", "berth.test/via=mount", ref, target), target)
	if _, err := os.Stat(filepath.Join(target, "bin", "busybox")); err != nil {
		t.Fatalf("pulled image not mounted: %v", err)
	}
	mustContain(t, d.ctr("-n", "mnt", "images", "ls"), ref, "berth.test/via=mount")
	d.ctr("-n", "mnt", "images", "unmount", "--rm", "--plain-http", target)
	if _, err := os.Stat(filepath.Join(target, "bin")); !os.IsNotExist(err) {
		t.Fatalf("still mounted after unmount: %v", err)
	}
	if out := d.ctr("-n", "mnt", "leases", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("leases left after unmount --rm: %q", out)
	}
}
