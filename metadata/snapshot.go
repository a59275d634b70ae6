package metadata

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/snapshots"
	bolt "go.etcd.io/bbolt"
)

// backendLabelPrefix marks labels passed through to the backend, as
// containerd does for remote snapshotters; all labels also live in bolt.
const backendLabelPrefix = "containerd.io/snapshot/"

// snapshotter gives each namespace its own keys over one backend: the
// namespace's key maps to a backend key "<namespace>/<n>/<key>", n from a
// database-wide sequence, so namespaces never collide and a key reused
// after removal never meets a leftover backend snapshot.
type snapshotter struct {
	db      *DB
	name    string
	backend snapshots.Snapshotter

	// pending counts, per backend key, the background removals of its
	// children still running: a parent removed right after its child
	// must wait for the child's backend removal, or the backend refuses
	// it ("has children") and it is left for the garbage collector.
	mu      sync.Mutex
	pending map[string]*pendingRemovals
}

type pendingRemovals struct {
	n    int
	done chan struct{} // closed when n drops to 0
}

// childRemoving records a background removal of a child of backend key
// parent; the returned func marks it finished.
func (s *snapshotter) childRemoving(parent string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]*pendingRemovals{}
	}
	p := s.pending[parent]
	if p == nil {
		p = &pendingRemovals{done: make(chan struct{})}
		s.pending[parent] = p
	}
	p.n++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if p.n--; p.n == 0 {
			close(p.done)
			delete(s.pending, parent)
		}
	}
}

// waitChildren waits until no background removal of a child of backend
// key k is running.
func (s *snapshotter) waitChildren(k string) {
	s.mu.Lock()
	p := s.pending[k]
	s.mu.Unlock()
	if p != nil {
		<-p.done
	}
}

// NewSnapshotter wraps backend, registered under name ("overlayfs",
// "native"), with per-namespace keys recorded in db, and registers it with
// db for garbage collection.
func NewSnapshotter(db *DB, name string, backend snapshots.Snapshotter) snapshots.Snapshotter {
	s := &snapshotter{db: db, name: name, backend: backend}
	db.mu.Lock()
	db.snapshotters[name] = s
	db.mu.Unlock()
	return s
}

func (s *snapshotter) err(key, ns string, err error) error {
	return fmt.Errorf("snapshot %q in snapshotter %q, namespace %q: %w", key, s.name, ns, err)
}

// record is a namespace's snapshot as bolt keeps it.
type snapRecord struct {
	bkey             string
	parent           string
	labels           map[string]string
	created, updated time.Time
}

func readSnapRecord(b *bolt.Bucket) (snapRecord, error) {
	r := snapRecord{bkey: string(b.Get(keyName)), parent: string(b.Get(keyParent)), labels: readMap(b, bucketLabels)}
	var err error
	if r.created, err = readTime(b, keyCreatedAt); err != nil {
		return r, err
	}
	r.updated, err = readTime(b, keyUpdatedAt)
	return r, err
}

func (s *snapshotter) bucket(tx *bolt.Tx, ns string) *bolt.Bucket {
	return nsBucket(tx, ns, bucketSnapshots, []byte(s.name))
}

// resolve returns key's record in the context's namespace.
func (s *snapshotter) resolve(ctx context.Context, key string) (string, snapRecord, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return "", snapRecord{}, err
	}
	var r snapRecord
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := s.bucket(tx, ns)
		if b == nil || key == "" || b.Bucket([]byte(key)) == nil {
			return s.err(key, ns, errdefs.ErrNotFound)
		}
		r, err = readSnapRecord(b.Bucket([]byte(key)))
		return err
	})
	return ns, r, err
}

func (s *snapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	ns, r, err := s.resolve(ctx, key)
	if err != nil {
		return snapshots.Info{}, err
	}
	binfo, err := s.backend.Stat(ctx, r.bkey)
	if err != nil {
		return snapshots.Info{}, s.err(key, ns, err)
	}
	return snapshots.Info{Kind: binfo.Kind, Name: key, Parent: r.parent, Labels: r.labels, Created: r.created, Updated: r.updated}, nil
}

// Update changes labels ("labels", "labels.KEY"; none means "labels").
func (s *snapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return snapshots.Info{}, err
	}
	if len(fieldpaths) == 0 {
		fieldpaths = []string{"labels"}
	}
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		bkt := s.bucket(tx, ns)
		if bkt == nil || info.Name == "" || bkt.Bucket([]byte(info.Name)) == nil {
			return s.err(info.Name, ns, errdefs.ErrNotFound)
		}
		b := bkt.Bucket([]byte(info.Name))
		old := readMap(b, bucketLabels)
		labels := copyMap(old)
		for _, path := range fieldpaths {
			switch {
			case path == "labels":
				labels = copyMap(info.Labels)
			case strings.HasPrefix(path, "labels."):
				key := strings.TrimPrefix(path, "labels.")
				if v := info.Labels[key]; v != "" {
					if labels == nil {
						labels = map[string]string{}
					}
					labels[key] = v
				} else {
					delete(labels, key)
				}
			default:
				return s.err(info.Name, ns, fmt.Errorf("cannot update field %q: %w", path, errdefs.ErrInvalidArgument))
			}
		}
		if err := validateLabels(labels); err != nil {
			return s.err(info.Name, ns, err)
		}
		// The backend acts on these at creation only (they are not passed
		// on after), so the record must not claim others.
		if err := snapshots.CheckFixedLabels(old, labels); err != nil {
			return s.err(info.Name, ns, err)
		}
		if err := writeMap(b, bucketLabels, labels); err != nil {
			return err
		}
		return writeTime(b, keyUpdatedAt, time.Now().UTC())
	})
	if err != nil {
		return snapshots.Info{}, err
	}
	return s.Stat(ctx, info.Name)
}

func (s *snapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	ns, r, err := s.resolve(ctx, key)
	if err != nil {
		return snapshots.Usage{}, err
	}
	u, err := s.backend.Usage(ctx, r.bkey)
	if err != nil {
		return u, s.err(key, ns, err)
	}
	return u, nil
}

func (s *snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	ns, r, err := s.resolve(ctx, key)
	if err != nil {
		return nil, err
	}
	m, err := s.backend.Mounts(ctx, r.bkey)
	if err != nil {
		return nil, s.err(key, ns, err)
	}
	return m, nil
}

func (s *snapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(ctx, key, parent, snapshots.KindActive, opts)
}

func (s *snapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return s.create(ctx, key, parent, snapshots.KindView, opts)
}

// applyOpts gathers the labels of opts, validated, and the subset passed
// to the backend.
func applyOpts(opts []snapshots.Opt) (map[string]string, []snapshots.Opt, error) {
	var info snapshots.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return nil, nil, err
		}
	}
	if err := validateLabels(info.Labels); err != nil {
		return nil, nil, err
	}
	passed := map[string]string{}
	for k, v := range info.Labels {
		if strings.HasPrefix(k, backendLabelPrefix) {
			passed[k] = v
		}
	}
	var bopts []snapshots.Opt
	if len(passed) > 0 {
		bopts = append(bopts, snapshots.WithLabels(passed))
	}
	return info.Labels, bopts, nil
}

// leaseFor returns the context's lease, checking it exists in ns.
func leaseFor(ctx context.Context, tx *bolt.Tx, ns string) (string, error) {
	lease, ok := leases.FromContext(ctx)
	if !ok {
		return "", nil
	}
	if nsBucket(tx, ns, bucketLeases, []byte(lease)) == nil {
		return "", leaseErr(lease, ns, errdefs.ErrNotFound)
	}
	return lease, nil
}

// newBackendKey picks an unused backend key for key. A crash after the
// backend created a snapshot but before bolt committed rolls the sequence
// back, so the key may exist already; then the next number is tried.
func (s *snapshotter) newBackendKey(ctx context.Context, tx *bolt.Tx, ns, key string, try func(bkey string) error) (string, error) {
	for attempt := 0; ; attempt++ {
		seq, err := tx.Bucket(bucketV1).NextSequence()
		if err != nil {
			return "", err
		}
		bkey := fmt.Sprintf("%s/%d/%s", ns, seq, key)
		err = try(bkey)
		if errdefs.IsAlreadyExists(err) && attempt < 3 {
			continue
		}
		return bkey, err
	}
}

func (s *snapshotter) create(ctx context.Context, key, parent string, kind snapshots.Kind, opts []snapshots.Opt) ([]mount.Mount, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("snapshot key must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	labels, bopts, err := applyOpts(opts)
	if err != nil {
		return nil, s.err(key, ns, err)
	}
	// The backend snapshot is made inside the bolt transaction, so a
	// failure on either side leaves no record; collection waits for both.
	s.db.wlock.RLock()
	defer s.db.wlock.RUnlock()
	var mounts []mount.Mount
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		lease, err := leaseFor(ctx, tx, ns)
		if err != nil {
			return err
		}
		bkt, err := createNSBucket(tx, ns, bucketSnapshots, []byte(s.name))
		if err != nil {
			return err
		}
		if bkt.Bucket([]byte(key)) != nil {
			return s.err(key, ns, errdefs.ErrAlreadyExists)
		}
		var bparent string
		var pb *bolt.Bucket
		if parent != "" {
			if pb = bkt.Bucket([]byte(parent)); pb == nil {
				return s.err(key, ns, fmt.Errorf("parent snapshot %q: %w", parent, errdefs.ErrNotFound))
			}
			bparent = string(pb.Get(keyName))
		}
		bkey, err := s.newBackendKey(ctx, tx, ns, key, func(bkey string) (err error) {
			if kind == snapshots.KindView {
				mounts, err = s.backend.View(ctx, bkey, bparent, bopts...)
			} else {
				mounts, err = s.backend.Prepare(ctx, bkey, bparent, bopts...)
			}
			return err
		})
		if err != nil {
			return s.err(key, ns, err)
		}
		if err := s.writeRecord(tx, bkt, ns, key, bkey, parent, labels, lease); err != nil {
			// The backend snapshot is now an orphan; collection removes it.
			return s.err(key, ns, err)
		}
		return nil
	})
	return mounts, err
}

// writeRecord records key in bkt (with its parent's children index and the
// lease) in the caller's transaction.
func (s *snapshotter) writeRecord(tx *bolt.Tx, bkt *bolt.Bucket, ns, key, bkey, parent string, labels map[string]string, lease string) error {
	b, err := bkt.CreateBucket([]byte(key))
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if err := b.Put(keyName, []byte(bkey)); err != nil {
		return err
	}
	if err := putString(b, keyParent, parent); err != nil {
		return err
	}
	if err := writeTime(b, keyCreatedAt, now); err != nil {
		return err
	}
	if err := writeTime(b, keyUpdatedAt, now); err != nil {
		return err
	}
	if err := writeMap(b, bucketLabels, labels); err != nil {
		return err
	}
	if parent != "" {
		cb, err := bkt.Bucket([]byte(parent)).CreateBucketIfNotExists(bucketChildren)
		if err != nil {
			return err
		}
		if err := cb.Put([]byte(key), nil); err != nil {
			return err
		}
	}
	if lease != "" {
		return addLeaseResource(tx, ns, lease, [][]byte{bucketSnapshots, []byte(s.name)}, []byte(key))
	}
	return nil
}

// Commit turns active snapshot key into committed snapshot name, with the
// labels of opts.
func (s *snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("snapshot name must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	labels, bopts, err := applyOpts(opts)
	if err != nil {
		return s.err(name, ns, err)
	}
	s.db.wlock.RLock()
	defer s.db.wlock.RUnlock()
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		lease, err := leaseFor(ctx, tx, ns)
		if err != nil {
			return err
		}
		bkt := s.bucket(tx, ns)
		if bkt == nil || key == "" || bkt.Bucket([]byte(key)) == nil {
			return s.err(key, ns, errdefs.ErrNotFound)
		}
		if bkt.Bucket([]byte(name)) != nil {
			return s.err(name, ns, errdefs.ErrAlreadyExists)
		}
		kb := bkt.Bucket([]byte(key))
		if !bucketEmpty(kb.Bucket(bucketChildren)) {
			return s.err(key, ns, fmt.Errorf("cannot commit a snapshot with children: %w", errdefs.ErrFailedPrecondition))
		}
		bkey := string(kb.Get(keyName))
		parent := string(kb.Get(keyParent))
		bname, err := s.newBackendKey(ctx, tx, ns, name, func(bname string) error {
			return s.backend.Commit(ctx, bname, bkey, bopts...)
		})
		if err != nil {
			return s.err(key, ns, fmt.Errorf("commit as %q: %w", name, err))
		}
		if err := bkt.DeleteBucket([]byte(key)); err != nil {
			return err
		}
		if parent != "" {
			if cb := bkt.Bucket([]byte(parent)).Bucket(bucketChildren); cb != nil {
				if err := cb.Delete([]byte(key)); err != nil {
					return err
				}
			}
		}
		return s.writeRecord(tx, bkt, ns, name, bname, parent, labels, lease)
	})
}

// Remove removes key from the namespace and the backend; FailedPrecondition
// while it has children.
func (s *snapshotter) Remove(ctx context.Context, key string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	var backendKey, backendParent string
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		bkt := s.bucket(tx, ns)
		if bkt == nil || key == "" || bkt.Bucket([]byte(key)) == nil {
			return s.err(key, ns, errdefs.ErrNotFound)
		}
		kb := bkt.Bucket([]byte(key))
		if !bucketEmpty(kb.Bucket(bucketChildren)) {
			return s.err(key, ns, fmt.Errorf("cannot remove a snapshot with children: %w", errdefs.ErrFailedPrecondition))
		}
		backendKey = string(kb.Get(keyName))
		if parent := string(kb.Get(keyParent)); parent != "" {
			// A parent without a record (never written that way) must not
			// make the child unremovable.
			if pb := bkt.Bucket([]byte(parent)); pb != nil {
				backendParent = string(pb.Get(keyName))
				if cb := pb.Bucket(bucketChildren); cb != nil {
					if err := cb.Delete([]byte(key)); err != nil {
						return err
					}
				}
			}
		}
		return bkt.DeleteBucket([]byte(key))
	})
	if err != nil {
		return err
	}
	// The backend snapshot goes after the record, outside the metadata
	// transaction and after the answer: the record is what every reader
	// sees, and the backend's own commit and the directory's removal need
	// not hold up the caller (the last step of every `ctr run --rm`).
	// Backend keys are never reused (they carry a sequence number), so
	// nothing can race for the name. If the removal fails (or the daemon
	// stops first), nothing references the snapshot any more and the
	// garbage collector removes it. A parent's removal waits for its
	// children's (a chain removed leaf first, as `ctr snapshots rm` and
	// image removal do, would otherwise race).
	ctx = context.WithoutCancel(ctx)
	var childDone func()
	if backendParent != "" {
		childDone = s.childRemoving(backendParent)
	}
	s.db.removals.Add(1)
	go func() {
		defer s.db.removals.Done()
		if childDone != nil {
			defer childDone()
		}
		s.waitChildren(backendKey)
		if err := s.backend.Remove(ctx, backendKey); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("key", backendKey).Warn("remove backend snapshot; left for garbage collection")
		}
	}()
	return nil
}

// Walk visits this namespace's snapshots matching any filter (name,
// parent, kind, labels.KEY). fn runs outside the bolt transaction.
func (s *snapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, exprs ...string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return err
	}
	records := map[string]snapRecord{}
	var keys []string
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		bkt := s.bucket(tx, ns)
		if bkt == nil {
			return nil
		}
		return bkt.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			r, err := readSnapRecord(bkt.Bucket(k))
			if err != nil {
				return s.err(string(k), ns, err)
			}
			records[string(k)] = r
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, key := range keys {
		r := records[key]
		binfo, err := s.backend.Stat(ctx, r.bkey)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		} else if err != nil {
			return s.err(key, ns, err)
		}
		info := snapshots.Info{Kind: binfo.Kind, Name: key, Parent: r.parent, Labels: r.labels, Created: r.created, Updated: r.updated}
		if !f.Match(snapshotAdaptor(&info)) {
			continue
		}
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

func snapshotAdaptor(info *snapshots.Info) filters.Adaptor {
	return filters.AdapterFunc(func(fp []string) (string, bool) {
		if len(fp) == 0 {
			return "", false
		}
		switch fp[0] {
		case "name":
			return info.Name, len(fp) == 1
		case "parent":
			// Present even when empty, as containerd's adaptor has it.
			return info.Parent, len(fp) == 1
		case "kind":
			return strings.ToLower(info.Kind.String()), len(fp) == 1
		case "labels":
			return labelField(info.Labels, fp[1:])
		}
		return "", false
	})
}

func (s *snapshotter) Close() error { return s.backend.Close() }
