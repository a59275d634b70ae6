// Package storage keeps the metadata of a snapshotter in bbolt, so overlay
// and native share one tested record of keys, kinds, parents and labels
// while they own only the directories. A snapshot's directory is named by
// its numeric id, never by its key: keys are client strings.
//
// Schema (all under the top bucket "v1"):
//
//	v1/
//	  snapshots/            sequence: the last id handed out
//	    <key>/              one bucket per snapshot, active, view or committed
//	      id        uvarint, unique, kept when an active is committed
//	      kind      one byte, snapshots.Kind
//	      parent    the parent's key; absent for a base snapshot
//	      created   time.MarshalBinary
//	      updated   time.MarshalBinary
//	      size      varint, committed snapshots only: bytes used
//	      inodes    varint, committed snapshots only: inodes used
//	      labels/   label key -> value
//	  parents/              child index, to refuse removing a parent
//	    <parent id BE64><child id BE64> -> child key
//
// Every change runs in one bolt transaction (MetaStore.Update); what a
// snapshotter does on disk is ordered around it so a crash leaves at worst
// a directory without a record, which Cleanup removes.
package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketV1        = []byte("v1")
	bucketSnapshots = []byte("snapshots")
	bucketParents   = []byte("parents")
	bucketLabels    = []byte("labels")

	keyID      = []byte("id")
	keyKind    = []byte("kind")
	keyParent  = []byte("parent")
	keyCreated = []byte("created")
	keyUpdated = []byte("updated")
	keySize    = []byte("size")
	keyInodes  = []byte("inodes")
)

// MetaStore is the bolt database of one snapshotter.
type MetaStore struct {
	db *bolt.DB
}

// NewMetaStore opens (or creates) the database at path.
func NewMetaStore(path string) (*MetaStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot metadata %q: create directory: %w", path, err)
	}
	// The timeout turns a second daemon on the same root into an error
	// instead of a hang on bolt's file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata %q: open: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		if _, err := v1.CreateBucketIfNotExists(bucketSnapshots); err != nil {
			return err
		}
		_, err = v1.CreateBucketIfNotExists(bucketParents)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("snapshot metadata %q: create buckets: %w", path, err)
	}
	return &MetaStore{db: db}, nil
}

// Close closes the database.
func (ms *MetaStore) Close() error { return ms.db.Close() }

// Tx is one metadata transaction; its methods read and change snapshot
// records. A Tx is only valid inside the function given to View or Update.
type Tx struct {
	tx *bolt.Tx
}

// View runs fn in a read-only transaction.
func (ms *MetaStore) View(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ms.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Update runs fn in a read-write transaction, committed if fn returns nil
// and rolled back otherwise.
func (ms *MetaStore) Update(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ms.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// OnCommit runs fn after the transaction commits, and never if it rolls
// back: the place for work on disk that must only follow a durable change.
func (t *Tx) OnCommit(fn func()) { t.tx.OnCommit(fn) }

func (t *Tx) snapshots() *bolt.Bucket {
	return t.tx.Bucket(bucketV1).Bucket(bucketSnapshots)
}

func (t *Tx) parents() *bolt.Bucket {
	return t.tx.Bucket(bucketV1).Bucket(bucketParents)
}

// writable fails read-only transactions with a clear error instead of
// bolt's.
func (t *Tx) writable(op string) error {
	if !t.tx.Writable() {
		return fmt.Errorf("%s: read-only transaction: %w", op, errdefs.ErrFailedPrecondition)
	}
	return nil
}
