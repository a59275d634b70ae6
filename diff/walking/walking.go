// Package walking is the differ that works on any file system: it applies
// layers by unpacking them with the safe tar reader (archive.Apply) onto the
// mounted target, and computes layers by walking two mounted trees
// (archive.WriteDiff).
//
// Apply always unpacks through the mounted target with plain whiteout
// semantics (whiteouts remove files, opaque markers empty directories).
// That is correct for every mount a snapshotter hands out: a bind mount of
// a fresh directory (native, or overlay's first layer) takes the removals
// literally, and through an overlay mount the kernel itself records each
// removal of a lower file as an overlay whiteout in the upper directory.
// Writing overlay whiteouts ourselves (archive.WithOverlayWhiteouts) is
// only for callers that unpack straight into an upper directory.
package walking

import (
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/diff"
)

// Differ is both the Applier and the Comparer, for registering one
// "walking" differ plugin.
type Differ struct {
	diff.Applier
	diff.Comparer
}

// New returns the walking Applier and Comparer over one content store.
func New(store content.Store, opts ...ApplierOpt) *Differ {
	return &Differ{Applier: NewApplier(store, opts...), Comparer: NewComparer(store)}
}
