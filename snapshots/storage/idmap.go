package storage

import (
	"fmt"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// IDMapsFromLabels reads the uid and gid mappings a snapshot's labels ask
// for (snapshots.LabelSnapshotUIDMapping, GIDMapping); ok is false when
// there are none. Both must be given, and each must map container id 0,
// whose host id owns the snapshot's own directory.
func IDMapsFromLabels(labels map[string]string) (uid, gid mount.IDMap, ok bool, err error) {
	us, hasU := labels[snapshots.LabelSnapshotUIDMapping]
	gs, hasG := labels[snapshots.LabelSnapshotGIDMapping]
	if !hasU && !hasG {
		return mount.IDMap{}, mount.IDMap{}, false, nil
	}
	if !hasU || !hasG {
		return mount.IDMap{}, mount.IDMap{}, false, fmt.Errorf("labels %s and %s must be given together: %w",
			snapshots.LabelSnapshotUIDMapping, snapshots.LabelSnapshotGIDMapping, errdefs.ErrInvalidArgument)
	}
	if uid, err = mount.ParseIDMap(us); err != nil {
		return mount.IDMap{}, mount.IDMap{}, false, fmt.Errorf("label %s: %w", snapshots.LabelSnapshotUIDMapping, err)
	}
	if gid, err = mount.ParseIDMap(gs); err != nil {
		return mount.IDMap{}, mount.IDMap{}, false, fmt.Errorf("label %s: %w", snapshots.LabelSnapshotGIDMapping, err)
	}
	if uid.ContainerID != 0 || gid.ContainerID != 0 {
		return mount.IDMap{}, mount.IDMap{}, false, fmt.Errorf("id mappings %s and %s: only mappings of container id 0 are supported: %w",
			uid, gid, errdefs.ErrNotImplemented)
	}
	return uid, gid, true, nil
}

// IDMapOptions are the mount options asking for the idmapping of labels
// (nil without one); labels are valid, as checked when the snapshot was
// created.
func IDMapOptions(labels map[string]string) []string {
	uid, gid, ok, err := IDMapsFromLabels(labels)
	if !ok || err != nil {
		return nil
	}
	return []string{"uidmap=" + uid.String(), "gidmap=" + gid.String()}
}
