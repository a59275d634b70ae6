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
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return nil, err
	}
	var out []T
	err = db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, kind)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			obj, err := read(string(k), b.Bucket(k))
			if err != nil {
				return errf(string(k), ns, err)
			}
			if f.Match(adapt(&obj)) {
				out = append(out, obj)
			}
			return nil
		})
	})
	return out, err
}
