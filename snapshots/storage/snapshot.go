package storage

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// Snapshot is what a snapshotter needs to lay out a snapshot on disk.
type Snapshot struct {
	ID   uint64
	Kind snapshots.Kind
	// ParentIDs lists the ids of the parent chain, nearest first.
	ParentIDs []uint64
	// Labels are the snapshot's labels, for drivers that act on some.
	Labels map[string]string
}

// IDString is the id as a path element.
func IDString(id uint64) string { return strconv.FormatUint(id, 10) }

// CreateSnapshot records a new active or view snapshot of key on parent
// (empty for none), which must be committed. opts may set labels.
func (t *Tx) CreateSnapshot(ctx context.Context, kind snapshots.Kind, key, parent string, opts ...snapshots.Opt) (Snapshot, error) {
	if err := t.writable("create snapshot"); err != nil {
		return Snapshot{}, err
	}
	if kind != snapshots.KindActive && kind != snapshots.KindView {
		return Snapshot{}, fmt.Errorf("create snapshot %q: kind %v: must be active or view: %w", key, kind, errdefs.ErrInvalidArgument)
	}
	if err := ValidateKey(key); err != nil {
		return Snapshot{}, err
	}
	var base snapshots.Info
	for _, o := range opts {
		if err := o(&base); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %q: %w", key, err)
		}
	}
	if err := ValidateLabels(base.Labels); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %q: %w", key, err)
	}
	if t.snapshots().Bucket([]byte(key)) != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
	}
	var parentIDs []uint64
	var parentID uint64
	if parent != "" {
		if err := ValidateKey(parent); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %q: parent: %w", key, err)
		}
		pr, err := t.readRecord(parent)
		if err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %q: parent: %w", key, err)
		}
		if pr.kind != snapshots.KindCommitted {
			return Snapshot{}, fmt.Errorf("create snapshot %q: parent %q is %v, not committed: %w", key, parent, pr.kind, errdefs.ErrFailedPrecondition)
		}
		if parentIDs, err = t.parentChain(parent); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %q: %w", key, err)
		}
		parentID = pr.id
	}
	id, err := t.snapshots().NextSequence()
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %q: next id: %w", key, err)
	}
	now := time.Now().UTC()
	r := record{id: id, kind: kind, parent: parent, created: now, updated: now, labels: base.Labels}
	if err := t.writeRecord(key, r); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %q: %w", key, err)
	}
	if parent != "" {
		if err := t.parents().Put(parentIndexKey(parentID, id), []byte(key)); err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %q: index parent: %w", key, err)
		}
	}
	return Snapshot{ID: id, Kind: kind, ParentIDs: parentIDs, Labels: base.Labels}, nil
}

// parentChain returns the ids of key and its ancestors, key first.
func (t *Tx) parentChain(key string) ([]uint64, error) {
	var ids []uint64
	for key != "" {
		r, err := t.readRecord(key)
		if err != nil {
			return nil, fmt.Errorf("parent chain: %w", err)
		}
		ids = append(ids, r.id)
		if len(ids) > 1<<16 { // a cycle means corrupt metadata
			return nil, fmt.Errorf("parent chain of %q: too deep", key)
		}
		key = r.parent
	}
	return ids, nil
}

// GetSnapshot returns the layout of key, of any kind; snapshotters decide
// which kinds they mount.
func (t *Tx) GetSnapshot(ctx context.Context, key string) (Snapshot, error) {
	if err := ValidateKey(key); err != nil {
		return Snapshot{}, err
	}
	r, err := t.readRecord(key)
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{ID: r.id, Kind: r.kind, Labels: r.labels}
	if r.parent != "" {
		if s.ParentIDs, err = t.parentChain(r.parent); err != nil {
			return Snapshot{}, fmt.Errorf("snapshot %q: %w", key, err)
		}
	}
	return s, nil
}

// CommitActive turns the active snapshot key into the committed snapshot
// name, keeping its id (so its directory) and parent. Labels come from
// opts only, as in containerd. usage is what the snapshot's own layer
// uses, measured by the snapshotter.
func (t *Tx) CommitActive(ctx context.Context, key, name string, usage snapshots.Usage, opts ...snapshots.Opt) (uint64, error) {
	if err := t.writable("commit snapshot"); err != nil {
		return 0, err
	}
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	if err := ValidateKey(name); err != nil {
		return 0, fmt.Errorf("commit snapshot %q: name: %w", key, err)
	}
	var base snapshots.Info
	for _, o := range opts {
		if err := o(&base); err != nil {
			return 0, fmt.Errorf("commit snapshot %q: %w", key, err)
		}
	}
	if err := ValidateLabels(base.Labels); err != nil {
		return 0, fmt.Errorf("commit snapshot %q: %w", key, err)
	}
	if t.snapshots().Bucket([]byte(name)) != nil {
		return 0, fmt.Errorf("commit snapshot %q: snapshot %q: %w", key, name, errdefs.ErrAlreadyExists)
	}
	r, err := t.readRecord(key)
	if err != nil {
		return 0, err
	}
	if r.kind != snapshots.KindActive {
		return 0, fmt.Errorf("commit snapshot %q: is %v, not active: %w", key, r.kind, errdefs.ErrFailedPrecondition)
	}
	if err := t.snapshots().DeleteBucket([]byte(key)); err != nil {
		return 0, fmt.Errorf("commit snapshot %q: remove active record: %w", key, err)
	}
	now := time.Now().UTC()
	committed := record{id: r.id, kind: snapshots.KindCommitted, parent: r.parent,
		created: now, updated: now, labels: base.Labels, usage: usage}
	if err := t.writeRecord(name, committed); err != nil {
		return 0, fmt.Errorf("commit snapshot %q: %w", key, err)
	}
	if r.parent != "" {
		pr, err := t.readRecord(r.parent)
		if err != nil {
			return 0, fmt.Errorf("commit snapshot %q: parent: %w", key, err)
		}
		if err := t.parents().Put(parentIndexKey(pr.id, r.id), []byte(name)); err != nil {
			return 0, fmt.Errorf("commit snapshot %q: index parent: %w", key, err)
		}
	}
	return r.id, nil
}

// Remove deletes the record of key and returns its id and kind, refusing
// with FailedPrecondition while other snapshots have it as parent.
func (t *Tx) Remove(ctx context.Context, key string) (uint64, snapshots.Kind, error) {
	if err := t.writable("remove snapshot"); err != nil {
		return 0, 0, err
	}
	if err := ValidateKey(key); err != nil {
		return 0, 0, err
	}
	r, err := t.readRecord(key)
	if err != nil {
		return 0, 0, err
	}
	if t.hasChildren(r.id) {
		return 0, 0, fmt.Errorf("remove snapshot %q: has children: %w", key, errdefs.ErrFailedPrecondition)
	}
	if r.parent != "" {
		pr, err := t.readRecord(r.parent)
		if err != nil {
			return 0, 0, fmt.Errorf("remove snapshot %q: parent: %w", key, err)
		}
		if err := t.parents().Delete(parentIndexKey(pr.id, r.id)); err != nil {
			return 0, 0, fmt.Errorf("remove snapshot %q: unindex parent: %w", key, err)
		}
	}
	if err := t.snapshots().DeleteBucket([]byte(key)); err != nil {
		return 0, 0, fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return r.id, r.kind, nil
}
