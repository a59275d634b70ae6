// Package snapshots defines the Snapshotter interface: layered file systems
// made of committed (read-only) snapshots and active (writable) ones.
// overlay/ and native/ implement it; storage/ keeps their bbolt metadata.
package snapshots

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// Kind is the kind of a snapshot.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindView
	KindActive
	KindCommitted
)

func (k Kind) String() string {
	switch k {
	case KindView:
		return "View"
	case KindActive:
		return "Active"
	case KindCommitted:
		return "Committed"
	}
	return "Unknown"
}

// Info describes a snapshot.
type Info struct {
	Kind    Kind
	Name    string
	Parent  string
	Labels  map[string]string
	Created time.Time
	Updated time.Time
}

// Usage is the disk a snapshot uses on its own (not its parents).
type Usage struct {
	Inodes int64
	Size   int64
}

// WalkFunc is called for each snapshot.
type WalkFunc func(context.Context, Info) error

// Opt sets options on Prepare, View and Commit.
type Opt func(*Info) error

// WithLabels adds labels to the new snapshot.
func WithLabels(labels map[string]string) Opt {
	return func(info *Info) error {
		if info.Labels == nil {
			info.Labels = map[string]string{}
		}
		for k, v := range labels {
			info.Labels[k] = v
		}
		return nil
	}
}

// Labels a snapshotter acts on when a snapshot is created with them
// (containerd's names): the snapshot's files are to appear owned through
// the mapping "container-id:host-id:size", as the root file system of a
// container in a user namespace with that mapping must (ctr run
// --remap-labels). The overlay snapshotter does it with idmapped mounts.
const (
	LabelSnapshotUIDMapping = "containerd.io/snapshot/uidmapping"
	LabelSnapshotGIDMapping = "containerd.io/snapshot/gidmapping"
)

// CheckFixedLabels refuses an update from old labels to new that adds,
// changes or drops a label fixed when the snapshot was made (the id
// mappings: they shaped its directory, and its mounts follow them).
func CheckFixedLabels(old, new map[string]string) error {
	for _, k := range []string{LabelSnapshotUIDMapping, LabelSnapshotGIDMapping} {
		if old[k] != new[k] {
			return fmt.Errorf("label %s is set when a snapshot is made and cannot change: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Snapshotter manages snapshots. Keys and names are the caller's; a
// namespaced wrapper in metadata/ maps them to unique backend keys.
type Snapshotter interface {
	Stat(ctx context.Context, key string) (Info, error)
	// Update changes the fields named ("labels", "labels.KEY").
	Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error)
	Usage(ctx context.Context, key string) (Usage, error)
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
	View(ctx context.Context, key, parent string, opts ...Opt) ([]mount.Mount, error)
	Commit(ctx context.Context, name, key string, opts ...Opt) error
	// Remove fails with FailedPrecondition when the snapshot has children.
	Remove(ctx context.Context, key string) error
	Walk(ctx context.Context, fn WalkFunc, filters ...string) error
	Close() error
}

// Cleaner is implemented by snapshotters that can free space left by
// removals done lazily.
type Cleaner interface {
	Cleanup(ctx context.Context) error
}
