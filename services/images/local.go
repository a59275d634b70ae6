package images

import (
	"context"

	eventsapi "github.com/berth-containers/berth/api/events"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/metadata"
)

// local is the images service's logic over the image store: events after
// each write, and garbage collection after a delete (waited for when the
// caller asks for a synchronous delete).
type local struct {
	store       *metadata.ImageStore
	publisher   events.Publisher
	collect     func()                      // may be nil
	collectSync func(context.Context) error // may be nil
}

func (l *local) publish(ctx context.Context, topic string, ev interface{}) {
	if l.publisher != nil {
		l.publisher.Publish(ctx, topic, ev)
	}
}

func (l *local) Get(ctx context.Context, name string) (metadata.Image, error) {
	return l.store.Get(ctx, name)
}

func (l *local) List(ctx context.Context, filters ...string) ([]metadata.Image, error) {
	return l.store.List(ctx, filters...)
}

func (l *local) Create(ctx context.Context, img metadata.Image) (metadata.Image, error) {
	created, err := l.store.Create(ctx, img)
	if err != nil {
		return metadata.Image{}, err
	}
	l.publish(ctx, "/images/create", &eventsapi.ImageCreate{Name: created.Name, Labels: created.Labels})
	return created, nil
}

func (l *local) Update(ctx context.Context, img metadata.Image, paths ...string) (metadata.Image, error) {
	updated, err := l.store.Update(ctx, img, paths...)
	if err != nil {
		return metadata.Image{}, err
	}
	l.publish(ctx, "/images/update", &eventsapi.ImageUpdate{Name: updated.Name, Labels: updated.Labels})
	return updated, nil
}

func (l *local) Delete(ctx context.Context, name string, sync bool) error {
	if err := l.store.Delete(ctx, name); err != nil {
		return err
	}
	l.publish(ctx, "/images/delete", &eventsapi.ImageDelete{Name: name})
	if sync && l.collectSync != nil {
		return l.collectSync(ctx)
	}
	if l.collect != nil {
		l.collect()
	}
	return nil
}
