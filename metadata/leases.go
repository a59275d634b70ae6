package metadata

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// ExpireLabel holds a lease's expiry time (RFC3339); garbage collection
// deletes a lease once it has passed.
const ExpireLabel = "containerd.io/gc.expire"

// Lease keeps the resources added to it (and what they reference) from
// garbage collection until it is deleted or expires.
type Lease struct {
	ID        string
	CreatedAt time.Time
	Labels    map[string]string
}

// Resource is something a lease keeps: Type "content" (ID a digest),
// "ingests" (ID an ingest ref) or "snapshots/<snapshotter>" (ID a key).
type Resource struct {
	ID   string
	Type string
}

// LeaseStore manages leases in the context's namespace.
type LeaseStore struct{ db *DB }

// NewLeaseStore returns the lease store backed by db.
func NewLeaseStore(db *DB) *LeaseStore { return &LeaseStore{db: db} }

func leaseErr(id, ns string, err error) error {
	return fmt.Errorf("lease %q in namespace %q: %w", id, ns, err)
}

func validateLease(l *Lease) error {
	// Not the identifier rule: containerd's clients make lease IDs like
	// "455218903--vgB". IDs are bolt keys only, never paths.
	if err := identifiers.ValidateName("lease id", l.ID); err != nil {
		return err
	}
	if err := validateLabels(l.Labels); err != nil {
		return err
	}
	if v, ok := l.Labels[ExpireLabel]; ok {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return fmt.Errorf("label %q: %q is not an RFC3339 time: %w", ExpireLabel, v, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Create records lease l, setting CreatedAt; AlreadyExists if the ID is taken.
func (s *LeaseStore) Create(ctx context.Context, l Lease) (Lease, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Lease{}, err
	}
	if err := validateLease(&l); err != nil {
		return Lease{}, leaseErr(l.ID, ns, err)
	}
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		parent, err := createNSBucket(tx, ns, bucketLeases)
		if err != nil {
			return err
		}
		if parent.Bucket([]byte(l.ID)) != nil {
			return leaseErr(l.ID, ns, errdefs.ErrAlreadyExists)
		}
		b, err := parent.CreateBucket([]byte(l.ID))
		if err != nil {
			return leaseErr(l.ID, ns, err)
		}
		l.CreatedAt = time.Now().UTC()
		if err := writeTime(b, keyCreatedAt, l.CreatedAt); err != nil {
			return err
		}
		return writeMap(b, bucketLabels, l.Labels)
	})
	if err != nil {
		return Lease{}, err
	}
	return l, nil
}

// Delete removes lease id; what it kept becomes collectable. NotFound if
// it does not exist.
func (s *LeaseStore) Delete(ctx context.Context, id string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketLeases)
		if b == nil || b.Bucket([]byte(id)) == nil {
			return leaseErr(id, ns, errdefs.ErrNotFound)
		}
		return b.DeleteBucket([]byte(id))
	})
}

// List returns the leases matching any of the filters (id, labels.KEY).
func (s *LeaseStore) List(ctx context.Context, exprs ...string) ([]Lease, error) {
	return listObjects(ctx, s.db, bucketLeases, exprs, readLease, leaseAdaptor, leaseErr)
}

func readLease(id string, lb *bolt.Bucket) (Lease, error) {
	l := Lease{ID: id, Labels: readMap(lb, bucketLabels)}
	var err error
	l.CreatedAt, err = readTime(lb, keyCreatedAt)
	return l, err
}

func leaseAdaptor(l *Lease) filters.Adaptor {
	return filters.AdapterFunc(func(fp []string) (string, bool) {
		if len(fp) == 0 {
			return "", false
		}
		switch fp[0] {
		case "id":
			return l.ID, len(fp) == 1
		case "labels":
			return labelField(l.Labels, fp[1:])
		}
		return "", false
	})
}

// resourcePath maps a resource to its bucket path inside the lease and the
// key it is stored under, validating both.
func resourcePath(r Resource) ([][]byte, []byte, error) {
	if r.ID == "" {
		return nil, nil, fmt.Errorf("resource id must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	switch {
	case r.Type == "content":
		if _, err := digest.Parse(r.ID); err != nil {
			return nil, nil, fmt.Errorf("content resource %q: invalid digest: %v: %w", r.ID, err, errdefs.ErrInvalidArgument)
		}
		return [][]byte{bucketContent}, []byte(r.ID), nil
	case r.Type == "ingests":
		return [][]byte{bucketIngests}, []byte(r.ID), nil
	case strings.HasPrefix(r.Type, "snapshots/"):
		sn := strings.TrimPrefix(r.Type, "snapshots/")
		if err := identifiers.Validate(sn); err != nil {
			return nil, nil, fmt.Errorf("resource type %q: snapshotter: %w", r.Type, err)
		}
		return [][]byte{bucketSnapshots, []byte(sn)}, []byte(r.ID), nil
	}
	// NotImplemented, as containerd answers a type it does not track.
	return nil, nil, fmt.Errorf("unsupported resource type %q (want content, ingests or snapshots/<snapshotter>): %w", r.Type, errdefs.ErrNotImplemented)
}

// AddResource records that lease id keeps r. Adding twice is harmless.
func (s *LeaseStore) AddResource(ctx context.Context, id string, r Resource) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	// The lease is looked for first, then the resource checked, as
	// containerd orders its answers.
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		if nsBucket(tx, ns, bucketLeases, []byte(id)) == nil {
			return leaseErr(id, ns, errdefs.ErrNotFound)
		}
		path, key, err := resourcePath(r)
		if err != nil {
			return leaseErr(id, ns, err)
		}
		return addLeaseResource(tx, ns, id, path, key)
	})
}

// addLeaseResource is AddResource inside a caller's transaction, used by
// the content and snapshot wrappers for the lease on the context.
func addLeaseResource(tx *bolt.Tx, ns, id string, path [][]byte, key []byte) error {
	lb := nsBucket(tx, ns, bucketLeases, []byte(id))
	if lb == nil {
		return leaseErr(id, ns, errdefs.ErrNotFound)
	}
	b, err := createNested(lb, path)
	if err != nil {
		return err
	}
	return b.Put(key, nil)
}

// createNested creates path under b.
func createNested(b *bolt.Bucket, path [][]byte) (*bolt.Bucket, error) {
	var err error
	for _, k := range path {
		if b, err = b.CreateBucketIfNotExists(k); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// DeleteResource forgets r from lease id; NotFound if the lease does not
// exist, nothing if it did not hold r.
func (s *LeaseStore) DeleteResource(ctx context.Context, id string, r Resource) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		lb := nsBucket(tx, ns, bucketLeases, []byte(id))
		if lb == nil {
			return leaseErr(id, ns, errdefs.ErrNotFound)
		}
		path, key, err := resourcePath(r)
		if err != nil {
			return leaseErr(id, ns, err)
		}
		b := lb
		for _, k := range path {
			if b = b.Bucket(k); b == nil {
				return nil
			}
		}
		return b.Delete(key)
	})
}

// ListResources returns what lease id keeps.
func (s *LeaseStore) ListResources(ctx context.Context, id string) ([]Resource, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	var out []Resource
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		lb := nsBucket(tx, ns, bucketLeases, []byte(id))
		if lb == nil {
			return leaseErr(id, ns, errdefs.ErrNotFound)
		}
		out = leaseResources(lb)
		return nil
	})
	return out, err
}

// leaseResources lists the resources recorded in lease bucket lb.
func leaseResources(lb *bolt.Bucket) []Resource {
	var out []Resource
	keys := func(b *bolt.Bucket, typ string) {
		if b == nil {
			return
		}
		_ = b.ForEach(func(k, v []byte) error {
			out = append(out, Resource{ID: string(k), Type: typ})
			return nil
		})
	}
	keys(lb.Bucket(bucketContent), "content")
	keys(lb.Bucket(bucketIngests), "ingests")
	if sb := lb.Bucket(bucketSnapshots); sb != nil {
		_ = sb.ForEach(func(k, v []byte) error {
			if v == nil {
				keys(sb.Bucket(k), "snapshots/"+string(k))
			}
			return nil
		})
	}
	return out
}
