package metadata

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/namespaces"
)

// listObjects is List for every store that keeps one bucket per object
// under <namespace>/<kind>: it reads each object with read, keeps those
// matching any of the filter expressions, and names the object in errors
// with errf.
func listObjects[T any](ctx context.Context, db *DB, kind []byte, exprs []string,
	read func(name string, b *bolt.Bucket) (T, error),
	adapt func(*T) filters.Adaptor,
	errf func(name, ns string, err error) error,
) ([]T, error) {
	var out []T
	err := walkObjects(ctx, db, kind, exprs, read, adapt, errf, func(obj *T) error {
		out = append(out, *obj)
		return nil
	})
	return out, err
}

// walkObjects is listObjects calling fn with each matching object, in key
// order, instead of collecting them. fn runs inside the read transaction
// (so it must not block) and the object it gets is reused for the next
// one: fn copies what it keeps. An error from fn ends the walk.
func walkObjects[T any](ctx context.Context, db *DB, kind []byte, exprs []string,
	read func(name string, b *bolt.Bucket) (T, error),
	adapt func(*T) filters.Adaptor,
	errf func(name, ns string, err error) error,
	fn func(*T) error,
) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return err
	}
	return db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, kind)
		if b == nil {
			return nil
		}
		var obj T
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			var err error
			if obj, err = read(string(k), b.Bucket(k)); err != nil {
				return errf(string(k), ns, err)
			}
			if f == filters.Always || f.Match(adapt(&obj)) {
				return fn(&obj)
			}
			return nil
		})
	})
}
