package metadata

import (
	"context"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	bolt "go.etcd.io/bbolt"
)

func newTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := NewDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func nsCtx(ns string) context.Context {
	return namespaces.WithNamespace(context.Background(), ns)
}

func TestNewDBVersion(t *testing.T) {
	dir := t.TempDir()
	db, err := NewDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(want uint64) {
		t.Helper()
		err := db.bdb.View(func(tx *bolt.Tx) error {
			v, err := readUint(tx.Bucket(bucketV1), keyVersion)
			if v != want {
				t.Errorf("version %d, want %d", v, want)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(uint64(schemaVersion()))
	// A database from a newer berthd is refused rather than misread.
	if err := db.bdb.Update(func(tx *bolt.Tx) error {
		return writeUint(tx.Bucket(bucketV1), keyVersion, 99)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := NewDB(dir); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestNewDBLocked(t *testing.T) {
	old := openTimeout
	openTimeout = 50 * time.Millisecond
	defer func() { openTimeout = old }()
	dir := t.TempDir()
	db, err := NewDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := NewDB(dir); !errdefs.IsUnavailable(err) {
		t.Fatalf("second open: want Unavailable, got %v", err)
	}
}

func TestStoresNeedNamespace(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	if _, err := NewContainerStore(db).List(ctx); !errdefs.IsInvalidArgument(err) {
		t.Errorf("containers without namespace: %v", err)
	}
	if _, err := NewLeaseStore(db).List(ctx); !errdefs.IsInvalidArgument(err) {
		t.Errorf("leases without namespace: %v", err)
	}
}
