package content

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	eventsapi "github.com/berth-containers/berth/api/events"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// local is the content service's logic over the namespaced content store:
// digest validation, the delete event and the garbage collection it
// triggers. Reads and writes go straight to the store.
type local struct {
	content.Store
	publisher events.Publisher
	// collect asks for a garbage collection soon (may be nil): deleting a
	// blob only forgets it in the namespace; the bytes go at the next GC.
	collect func()
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return d, nil
}

func (l *local) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := l.Store.Delete(ctx, dgst); err != nil {
		return err
	}
	if l.publisher != nil {
		l.publisher.Publish(ctx, "/content/delete", &eventsapi.ContentDelete{Digest: dgst.String()})
	}
	if l.collect != nil {
		l.collect()
	}
	return nil
}
