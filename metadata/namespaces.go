package metadata

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	bolt "go.etcd.io/bbolt"
)

// NamespaceStore manages namespaces. Unlike the other stores it names the
// namespace it acts on as a parameter: the namespace is the object here.
type NamespaceStore struct{ db *DB }

// NewNamespaceStore returns the namespace store backed by db.
func NewNamespaceStore(db *DB) *NamespaceStore { return &NamespaceStore{db: db} }

func validateNamespace(ns string) error {
	if err := identifiers.Validate(ns); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	return nil
}

// Create makes namespace ns with labels; AlreadyExists if it exists.
func (s *NamespaceStore) Create(ctx context.Context, ns string, labels map[string]string) error {
	if err := validateNamespace(ns); err != nil {
		return err
	}
	if err := validateLabels(labels); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		v1 := tx.Bucket(bucketV1)
		if v1.Bucket([]byte(ns)) != nil {
			return fmt.Errorf("namespace %q: %w", ns, errdefs.ErrAlreadyExists)
		}
		b, err := v1.CreateBucket([]byte(ns))
		if err != nil {
			return fmt.Errorf("namespace %q: create: %w", ns, err)
		}
		return writeMap(b, bucketLabels, labels)
	})
}

// Labels returns the labels of namespace ns; NotFound if it does not exist.
func (s *NamespaceStore) Labels(ctx context.Context, ns string) (map[string]string, error) {
	if err := validateNamespace(ns); err != nil {
		return nil, err
	}
	labels := map[string]string{}
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		b := getBucket(tx, bucketV1, []byte(ns))
		if b == nil {
			return fmt.Errorf("namespace %q: %w", ns, errdefs.ErrNotFound)
		}
		for k, v := range readMap(b, bucketLabels) {
			labels[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return labels, nil
}

// UpdateLabels changes namespace ns's labels in one transaction and
// returns them: with replace, every label not in set goes; then each of set
// is written, an empty value deleting its key. A namespace that does not
// exist is created, as containerd's namespace store does when a label is
// set (`ctr namespaces label NEW k=v` on a fresh node).
func (s *NamespaceStore) UpdateLabels(ctx context.Context, ns string, set map[string]string, replace bool) (map[string]string, error) {
	if err := validateNamespace(ns); err != nil {
		return nil, err
	}
	for k, v := range set {
		if err := validateLabel(k, v); err != nil {
			return nil, fmt.Errorf("namespace %q: %w", ns, err)
		}
	}
	var labels map[string]string
	err := s.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketV1).CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return fmt.Errorf("namespace %q: create: %w", ns, err)
		}
		if replace {
			if b.Bucket(bucketLabels) != nil {
				if err := b.DeleteBucket(bucketLabels); err != nil {
					return err
				}
			}
		}
		lb, err := b.CreateBucketIfNotExists(bucketLabels)
		if err != nil {
			return err
		}
		for k, v := range set {
			if v == "" {
				err = lb.Delete([]byte(k))
			} else {
				err = lb.Put([]byte(k), []byte(v))
			}
			if err != nil {
				return err
			}
		}
		labels = readMap(b, bucketLabels)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return labels, nil
}

// List returns the namespaces, sorted.
func (s *NamespaceStore) List(ctx context.Context) ([]string, error) {
	var names []string
	err := s.db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketV1).ForEach(func(k, v []byte) error {
			if v == nil { // buckets only; "version" is a key
				names = append(names, string(k))
			}
			return nil
		})
	})
	sort.Strings(names)
	return names, err
}

// Delete removes namespace ns. It refuses with FailedPrecondition while the
// namespace still holds anything, listing what.
func (s *NamespaceStore) Delete(ctx context.Context, ns string) error {
	if err := validateNamespace(ns); err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		v1 := tx.Bucket(bucketV1)
		b := v1.Bucket([]byte(ns))
		if b == nil {
			return fmt.Errorf("namespace %q: %w", ns, errdefs.ErrNotFound)
		}
		if used := namespaceContents(b); len(used) > 0 {
			return fmt.Errorf("namespace %q must be empty, but it still has %s: %w",
				ns, strings.Join(used, ", "), errdefs.ErrFailedPrecondition)
		}
		return v1.DeleteBucket([]byte(ns))
	})
}

// namespaceContents names the kinds of object left in namespace bucket b.
func namespaceContents(b *bolt.Bucket) []string {
	var used []string
	for _, kind := range [][]byte{bucketContainers, bucketImages, bucketLeases} {
		if !bucketEmpty(b.Bucket(kind)) {
			used = append(used, string(kind))
		}
	}
	if cb := b.Bucket(bucketContent); cb != nil {
		if !bucketEmpty(cb.Bucket(bucketBlob)) || !bucketEmpty(cb.Bucket(bucketIngest)) {
			used = append(used, "content")
		}
	}
	if sb := b.Bucket(bucketSnapshots); sb != nil {
		// Per-snapshotter buckets may linger empty after their last removal.
		nonEmpty := false
		_ = sb.ForEach(func(k, v []byte) error {
			if v == nil && !bucketEmpty(sb.Bucket(k)) {
				nonEmpty = true
			}
			return nil
		})
		if nonEmpty {
			used = append(used, "snapshots")
		}
	}
	return used
}
