package storage

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
	bolt "go.etcd.io/bbolt"
)

// record is one snapshot bucket decoded.
type record struct {
	id      uint64
	kind    snapshots.Kind
	parent  string
	created time.Time
	updated time.Time
	labels  map[string]string
	usage   snapshots.Usage
}

// readRecord decodes the bucket of key; a missing bucket is NotFound.
func (t *Tx) readRecord(key string) (record, error) {
	bkt := t.snapshots().Bucket([]byte(key))
	if bkt == nil {
		return record{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	var r record
	var n int
	r.id, n = binary.Uvarint(bkt.Get(keyID))
	if n <= 0 || r.id == 0 {
		return record{}, fmt.Errorf("snapshot %q: corrupt id", key)
	}
	if k := bkt.Get(keyKind); len(k) == 1 {
		r.kind = snapshots.Kind(k[0])
	}
	if r.kind != snapshots.KindActive && r.kind != snapshots.KindView && r.kind != snapshots.KindCommitted {
		return record{}, fmt.Errorf("snapshot %q: corrupt kind", key)
	}
	r.parent = string(bkt.Get(keyParent))
	if err := r.created.UnmarshalBinary(bkt.Get(keyCreated)); err != nil {
		return record{}, fmt.Errorf("snapshot %q: corrupt created time: %w", key, err)
	}
	if err := r.updated.UnmarshalBinary(bkt.Get(keyUpdated)); err != nil {
		return record{}, fmt.Errorf("snapshot %q: corrupt updated time: %w", key, err)
	}
	if v := bkt.Get(keySize); v != nil {
		r.usage.Size, _ = binary.Varint(v)
	}
	if v := bkt.Get(keyInodes); v != nil {
		r.usage.Inodes, _ = binary.Varint(v)
	}
	if lb := bkt.Bucket(bucketLabels); lb != nil {
		r.labels = map[string]string{}
		if err := lb.ForEach(func(k, v []byte) error {
			r.labels[string(k)] = string(v)
			return nil
		}); err != nil {
			return record{}, err
		}
	}
	return r, nil
}

// writeRecord (re)creates the bucket of key from r.
func (t *Tx) writeRecord(key string, r record) error {
	snaps := t.snapshots()
	if snaps.Bucket([]byte(key)) != nil {
		if err := snaps.DeleteBucket([]byte(key)); err != nil {
			return err
		}
	}
	bkt, err := snaps.CreateBucket([]byte(key))
	if err != nil {
		return err
	}
	created, err := r.created.MarshalBinary()
	if err != nil {
		return err
	}
	updated, err := r.updated.MarshalBinary()
	if err != nil {
		return err
	}
	puts := [][2][]byte{
		{keyID, binary.AppendUvarint(nil, r.id)},
		{keyKind, []byte{byte(r.kind)}},
		{keyCreated, created},
		{keyUpdated, updated},
	}
	if r.parent != "" {
		puts = append(puts, [2][]byte{keyParent, []byte(r.parent)})
	}
	if r.kind == snapshots.KindCommitted {
		puts = append(puts,
			[2][]byte{keySize, binary.AppendVarint(nil, r.usage.Size)},
			[2][]byte{keyInodes, binary.AppendVarint(nil, r.usage.Inodes)})
	}
	for _, kv := range puts {
		if err := bkt.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return writeLabels(bkt, r.labels)
}

func writeLabels(bkt *bolt.Bucket, labels map[string]string) error {
	if bkt.Bucket(bucketLabels) != nil {
		if err := bkt.DeleteBucket(bucketLabels); err != nil {
			return err
		}
	}
	if len(labels) == 0 {
		return nil
	}
	lb, err := bkt.CreateBucket(bucketLabels)
	if err != nil {
		return err
	}
	for k, v := range labels {
		if err := lb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

func (r record) info(key string) snapshots.Info {
	return snapshots.Info{
		Kind:    r.kind,
		Name:    key,
		Parent:  r.parent,
		Labels:  r.labels,
		Created: r.created,
		Updated: r.updated,
	}
}

// parentIndexKey is the child index entry of child under parent.
func parentIndexKey(parent, child uint64) []byte {
	k := binary.BigEndian.AppendUint64(nil, parent)
	return binary.BigEndian.AppendUint64(k, child)
}

// hasChildren reports whether any snapshot names id as its parent.
func (t *Tx) hasChildren(id uint64) bool {
	prefix := binary.BigEndian.AppendUint64(nil, id)
	k, _ := t.parents().Cursor().Seek(prefix)
	return k != nil && len(k) == 16 && binary.BigEndian.Uint64(k[:8]) == id
}
