// Package mount describes file system mounts and performs them. A Mount is
// the same description containerd's API carries (type, source, options), so
// snapshotters return them, the diff service applies onto them and the
// runtime mounts them as a container's rootfs.
package mount

// Mount is one mount to perform.
type Mount struct {
	// Type is the file system type: "overlay", "bind", "tmpfs", ...
	Type string
	// Source is the device, directory or "overlay".
	Source string
	// Target is a path relative to the mount root; empty for a rootfs mount.
	Target string
	// Options are fstab-style options: "ro", "rbind", "lowerdir=...".
	Options []string
}
