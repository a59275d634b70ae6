package leases

import (
	"context"

	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/log"
)

// collector runs garbage collection after a lease is deleted, so what only
// the lease held goes. A sync delete waits for a collection; any other
// only asks the GC scheduler for one soon, debounced with every other
// delete's: a burst of `ctr run`s (each deletes its lease) costs one
// mark-and-sweep, not one each holding the database's write lock.
type collector struct {
	trigger func()
	sync    func(context.Context) error
}

// directCollector collects on db itself, for a daemon without the GC
// scheduler plugin: now and waited for with sync, else in the background.
// Collections serialize on the database.
func directCollector(db *metadata.DB) collector {
	run := func(ctx context.Context) error {
		_, err := db.GarbageCollect(ctx)
		return err
	}
	return collector{
		trigger: func() {
			go func() {
				ctx := context.Background()
				if err := run(ctx); err != nil {
					log.G(ctx).WithError(err).Warn("garbage collection after lease delete failed")
				}
			}()
		},
		sync: run,
	}
}

func (c collector) collect(ctx context.Context, sync bool) error {
	if sync {
		return c.sync(ctx)
	}
	c.trigger()
	return nil
}
