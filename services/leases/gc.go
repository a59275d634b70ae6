package leases

import (
	"context"

	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/log"
)

// collect runs garbage collection after a lease is deleted, so what only
// the lease held goes: now and waited for with sync, else in the
// background. Collections serialize on the database, so a background one
// never races the scheduler's.
func collect(ctx context.Context, db *metadata.DB, sync bool) error {
	if sync {
		_, err := db.GarbageCollect(ctx)
		return err
	}
	go func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := db.GarbageCollect(ctx); err != nil {
			log.G(ctx).WithError(err).Warn("garbage collection after lease delete failed")
		}
	}()
	return nil
}
