package containers

import (
	"context"
	"fmt"

	eventsapi "github.com/berth-containers/berth/api/events"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

// local is the containers service's logic: validation lives in the store,
// events are published here after the write committed.
type local struct {
	store     *metadata.ContainerStore
	publisher events.Publisher
	// tasks, when the runtime is loaded, lets Delete refuse a container
	// whose task still exists: its shim, mounts and bundle depend on it.
	tasks taskGetter
}

type taskGetter interface {
	Has(ctx context.Context, id string) bool
}

func (l *local) Get(ctx context.Context, id string) (metadata.Container, error) {
	return l.store.Get(ctx, id)
}

// WalkStored calls fn with each container matching any of the filters, as
// stored; see metadata.StoredContainer for how long it is valid.
func (l *local) WalkStored(ctx context.Context, fn func(*metadata.StoredContainer) error, filters ...string) error {
	return l.store.WalkStored(ctx, fn, filters...)
}

func (l *local) Create(ctx context.Context, c metadata.Container) (metadata.Container, error) {
	created, err := l.store.Create(ctx, c)
	if err != nil {
		return metadata.Container{}, err
	}
	l.publish(ctx, "/containers/create", &eventsapi.ContainerCreate{
		Id: created.ID, Image: created.Image,
		Runtime: &eventsapi.ContainerCreate_Runtime{Name: created.Runtime.Name, Options: created.Runtime.Options},
	})
	return created, nil
}

func (l *local) Update(ctx context.Context, c metadata.Container, paths ...string) (metadata.Container, error) {
	updated, err := l.store.Update(ctx, c, paths...)
	if err != nil {
		return metadata.Container{}, err
	}
	l.publish(ctx, "/containers/update", &eventsapi.ContainerUpdate{
		Id: updated.ID, Image: updated.Image, Labels: updated.Labels, SnapshotKey: updated.SnapshotKey,
	})
	return updated, nil
}

func (l *local) Delete(ctx context.Context, id string) error {
	if l.tasks != nil && l.tasks.Has(ctx, id) {
		ns, _ := namespaces.Namespace(ctx)
		return fmt.Errorf("container %q in namespace %q has a task; delete the task first: %w", id, ns, errdefs.ErrFailedPrecondition)
	}
	if err := l.store.Delete(ctx, id); err != nil {
		return err
	}
	l.publish(ctx, "/containers/delete", &eventsapi.ContainerDelete{Id: id})
	return nil
}

// publish never fails the call: the write is done and acknowledged; a lost
// event is logged by the exchange.
func (l *local) publish(ctx context.Context, topic string, ev interface{}) {
	if l.publisher != nil {
		l.publisher.Publish(ctx, topic, ev)
	}
}
