package leases

import (
	"context"

	"github.com/berth-containers/berth/metadata"
)

// collect runs garbage collection after a lease is deleted. Until the
// collector lands (images work) there is nothing a lease can hold that
// needs collecting, so this is a no-op.
func collect(ctx context.Context, db *metadata.DB, sync bool) error { return nil }
