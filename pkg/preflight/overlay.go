package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// checkOverlay mounts a real two-layer overlay in a temp dir on root's file
// system, writes through it and checks the copy-up landed in the upper dir:
// the overlayfs snapshotter does exactly this for every container.
func checkOverlay(root string) Result {
	const name = "overlayfs"
	if os.Geteuid() != 0 {
		return result(name, Warn, "run berthd check as root to try a mount", "overlayfs not tested")
	}
	base, err := existingParent(root)
	if err != nil {
		return result(name, Fail, err.Error(), "overlayfs not tested: no directory for the test mount")
	}
	dir, err := os.MkdirTemp(base, ".berth-check-")
	if err != nil {
		return result(name, Fail, err.Error(), "overlayfs not tested: cannot create a temp dir under %s", base)
	}
	defer os.RemoveAll(dir)
	fstype := fsTypeName(base)
	if err := tryOverlay(dir); err != nil {
		why := err.Error()
		if errors.Is(err, unix.ENODEV) {
			why += " (the overlay module is not loaded: modprobe overlay)"
		}
		return result(name, Fail, why+"; the overlayfs snapshotter will not work (the native one will, slowly)",
			"overlayfs mount on %s (%s) failed", base, fstype)
	}
	return result(name, OK, "the overlayfs snapshotter can mount layers here",
		"overlayfs mount with two lower layers works on %s (%s)", base, fstype)
}

func tryOverlay(dir string) (err error) {
	paths := map[string]string{}
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		paths[d] = filepath.Join(dir, d)
		if err := os.Mkdir(paths[d], 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(paths["l1"], "a"), []byte("lower"), 0o600); err != nil {
		return fmt.Errorf("write lower file: %w", err)
	}
	opts := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s", paths["l2"], paths["l1"], paths["upper"], paths["work"])
	if err := unix.Mount("overlay", paths["merged"], "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	defer func() {
		if uerr := unix.Unmount(paths["merged"], unix.MNT_DETACH); uerr != nil && err == nil {
			err = fmt.Errorf("unmount overlay: %w", uerr)
		}
	}()
	data, err := os.ReadFile(filepath.Join(paths["merged"], "a"))
	if err != nil || string(data) != "lower" {
		return fmt.Errorf("read through overlay: %q, %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(paths["merged"], "a"), []byte("upper"), 0o600); err != nil {
		return fmt.Errorf("write through overlay: %w", err)
	}
	if data, err := os.ReadFile(filepath.Join(paths["upper"], "a")); err != nil || string(data) != "upper" {
		return fmt.Errorf("copy-up not in upper dir: %q, %v", data, err)
	}
	return nil
}

// existingParent returns dir, or its nearest ancestor that exists.
func existingParent(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("no root dir given")
	}
	d := filepath.Clean(dir)
	for {
		if fi, err := os.Stat(d); err == nil {
			if !fi.IsDir() {
				return "", fmt.Errorf("%s is not a directory", d)
			}
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no existing parent of %s", dir)
		}
		d = parent
	}
}

// Magic numbers of the file systems worth naming (statfs f_type).
var fsNames = map[int64]string{
	0xef53:     "ext4",
	0x58465342: "xfs",
	0x9123683e: "btrfs",
	0x01021994: "tmpfs",
	0x794c7630: "overlayfs",
	0x2fc12fc1: "zfs",
	0x6a656a63: "virtiofs",
	0x65735546: "fuse",
	0x00006969: "nfs",
	0x63677270: "cgroup2",
	0x27e0eb:   "cgroup",
}

func fsType(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return int64(st.Type), nil
}

func fsTypeName(path string) string {
	t, err := fsType(path)
	if err != nil {
		return "unknown fs"
	}
	if n, ok := fsNames[t]; ok {
		return n
	}
	return strings.ToLower(fmt.Sprintf("fs 0x%x", t))
}
