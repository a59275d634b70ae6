package metadata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DBFile is the database's file name inside the metadata plugin's folder.
const DBFile = "meta.db"

// openTimeout bounds the wait for bbolt's file lock: a second berthd on the
// same root must fail with a clear error rather than hang.
var openTimeout = 10 * time.Second

// migration moves the schema inside v1 from version-1 to version.
type migration struct {
	version int
	name    string
	migrate func(*bolt.Tx) error
}

// migrations, in order. Empty: version 1 is the first layout. Append here
// (never edit a released entry); they run in one transaction on open.
var migrations = []migration{}

// schemaVersion is the version a database has after every migration ran.
func schemaVersion() int {
	if len(migrations) == 0 {
		return 1
	}
	return migrations[len(migrations)-1].version
}

// DB is the metadata database shared by every store in this package.
type DB struct {
	bdb  *bolt.DB
	path string

	// wlock keeps garbage collection apart from writers that create a
	// backend object (blob, snapshot) before recording it in bolt: they hold
	// it shared, a collection holds it exclusively, so a sweep never removes
	// an object whose record is about to be written.
	wlock sync.RWMutex

	mu           sync.Mutex // guards the backends, registered by the wrappers
	content      *contentStore
	snapshotters map[string]*snapshotter

	// removals counts backend snapshot removals still running after the
	// Remove that started them answered (see snapshotter.Remove).
	removals sync.WaitGroup
}

// NewDB opens (creating if needed) dir/meta.db, brings its schema up to date
// and returns the database. It fails with Unavailable when another process
// holds the file.
func NewDB(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, DBFile)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("metadata database %s is locked by another process (is another berthd running on this root?): %w", path, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("metadata: open %s: %w", path, err)
	}
	db := &DB{bdb: bdb, path: path, snapshotters: map[string]*snapshotter{}}
	if err := bdb.Update(migrate); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("metadata database %s: %w", path, err)
	}
	return db, nil
}

// migrate records the schema version on a new database and runs the
// migrations an older one lacks.
func migrate(tx *bolt.Tx) error {
	want := schemaVersion()
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		b, err := tx.CreateBucket(bucketV1)
		if err != nil {
			return err
		}
		return writeUint(b, keyVersion, uint64(want))
	}
	n, err := readUint(v1, keyVersion)
	if err != nil {
		return err
	}
	have := int(n)
	if have == 0 {
		have = 1 // a v1 bucket without a version predates versioning
	}
	if have > want {
		return fmt.Errorf("schema version %d is newer than this berthd understands (%d): %w", have, want, errdefs.ErrFailedPrecondition)
	}
	for _, m := range migrations {
		if m.version <= have {
			continue
		}
		if err := m.migrate(tx); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return writeUint(v1, keyVersion, uint64(want))
}

// Close closes the database file.
func (db *DB) Close() error {
	db.removals.Wait()
	return db.bdb.Close()
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// view and update run fn in one read or read-write transaction. The context
// is checked first so a cancelled request does not start a transaction.
func (db *DB) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bdb.View(fn)
}

func (db *DB) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bdb.Update(fn)
}
