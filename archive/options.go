// Package archive is Berth's one safe tar reader and its tar writers.
//
// Apply unpacks an OCI layer tar onto a directory that may already hold
// earlier layers, so that no entry, whatever its name, link target, or the
// symlinks already on disk say, creates, changes or removes anything outside
// that directory. WriteDiff and Tar produce layer tars.
//
// How Apply stays inside the target: every entry name is cleaned and refused
// if it climbs above the root; its parent directory is then opened as a file
// descriptor, resolving symlinks as if the target were "/" (an absolute
// symlink or a ".." at the top stays inside the target), and the entry itself
// is created with *at system calls relative to that descriptor, never
// following a symlink in its last component. See resolve_linux.go.
package archive

// WhiteoutMode says how Apply expresses OCI whiteouts on disk.
type WhiteoutMode int

const (
	// WhiteoutRemove deletes what a whiteout names and empties opaque
	// directories: the layer is applied to a plain directory (the native
	// snapshotter) or through a mounted overlay, whose kernel turns the
	// deletions into whiteouts itself.
	WhiteoutRemove WhiteoutMode = iota
	// WhiteoutOverlay writes overlayfs whiteouts: a 0/0 character device per
	// deleted name and trusted.overlay.opaque=y on opaque directories. Use it
	// only when root is an overlay upper directory applied without a mount.
	WhiteoutOverlay
)

type applyOptions struct {
	whiteouts WhiteoutMode
	maxSize   int64
}

// ApplyOpt configures Apply.
type ApplyOpt func(*applyOptions)

// WithOverlayWhiteouts makes Apply write overlayfs whiteouts instead of
// removing files; see WhiteoutOverlay.
func WithOverlayWhiteouts() ApplyOpt {
	return func(o *applyOptions) { o.whiteouts = WhiteoutOverlay }
}

// WithMaxSize bounds the layer: Apply fails once the tar stream (headers,
// file data and padding) would exceed n bytes, or once sparse files would
// expand to more than n bytes on top of that, before writing the entry that
// crosses the limit, so a decompression bomb fails cleanly. n <= 0 means no
// limit on the stream, and the default bound on sparse files
// (DefaultMaxSparse).
func WithMaxSize(n int64) ApplyOpt {
	return func(o *applyOptions) { o.maxSize = n }
}

// DefaultMaxSparse bounds how far the sparse files of one layer may expand
// in total when WithMaxSize does not: a few hundred bytes of tar can claim
// an exabyte-sized sparse file, and although Apply writes holes as holes,
// producing the zeros costs time.
const DefaultMaxSparse = 64 << 30
