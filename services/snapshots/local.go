package snapshots

import (
	"context"
	"fmt"

	eventsapi "github.com/berth-containers/berth/api/events"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// local is the snapshots service's logic: it picks the snapshotter named by
// the request, publishes the prepare, commit and remove events, and asks
// for a garbage collection after a remove (the namespaced snapshotter only
// forgets the key; the backend snapshot goes at the next collection).
type local struct {
	snapshotters map[string]snapshots.Snapshotter
	publisher    events.Publisher
	collect      func()                      // may be nil
	collectSync  func(context.Context) error // may be nil
	// taskRootfs names the container whose task has the snapshot as its
	// root file system, if one has; nil when there is no runtime.
	taskRootfs func(ctx context.Context, snapshotter, key string) (string, bool, error)
}

func (l *local) get(name string) (snapshots.Snapshotter, error) {
	if name == "" {
		return nil, fmt.Errorf("snapshotter name is required: %w", errdefs.ErrInvalidArgument)
	}
	sn, ok := l.snapshotters[name]
	if !ok {
		// InvalidArgument, as containerd's snapshots service answers: the
		// request named something this daemon does not have.
		return nil, fmt.Errorf("snapshotter not loaded: %s: %w", name, errdefs.ErrInvalidArgument)
	}
	return sn, nil
}

func (l *local) publish(ctx context.Context, topic string, ev interface{}) {
	if l.publisher != nil {
		l.publisher.Publish(ctx, topic, ev)
	}
}

func (l *local) Prepare(ctx context.Context, name, key, parent string, labels map[string]string) ([]mount.Mount, error) {
	sn, err := l.get(name)
	if err != nil {
		return nil, err
	}
	mounts, err := sn.Prepare(ctx, key, parent, snapshots.WithLabels(labels))
	if err != nil {
		return nil, err
	}
	l.publish(ctx, "/snapshot/prepare", &eventsapi.SnapshotPrepare{Key: key, Parent: parent})
	return mounts, nil
}

func (l *local) View(ctx context.Context, name, key, parent string, labels map[string]string) ([]mount.Mount, error) {
	sn, err := l.get(name)
	if err != nil {
		return nil, err
	}
	return sn.View(ctx, key, parent, snapshots.WithLabels(labels))
}

func (l *local) Commit(ctx context.Context, name, newName, key string, labels map[string]string) error {
	sn, err := l.get(name)
	if err != nil {
		return err
	}
	if err := sn.Commit(ctx, newName, key, snapshots.WithLabels(labels)); err != nil {
		return err
	}
	l.publish(ctx, "/snapshot/commit", &eventsapi.SnapshotCommit{Key: key, Name: newName})
	return nil
}

func (l *local) Remove(ctx context.Context, name, key string) error {
	sn, err := l.get(name)
	if err != nil {
		return err
	}
	// A task's root file system is not removed from under it: containerd
	// would, and the running container's writable layer would go (any
	// client's `snapshots rm` of the wrong key). Clients delete the task
	// first, as both ctrs do before removing a container's snapshot.
	if l.taskRootfs != nil {
		id, ok, err := l.taskRootfs(ctx, name, key)
		if err != nil {
			// Not knowing, keep it: a wrong removal cannot be undone.
			return fmt.Errorf("remove snapshot %q: check for a task using it: %w", key, err)
		}
		if ok {
			return fmt.Errorf("snapshot %q is the root file system of container %q, which has a task; delete the task first: %w",
				key, id, errdefs.ErrFailedPrecondition)
		}
	}
	if err := sn.Remove(ctx, key); err != nil {
		return err
	}
	l.publish(ctx, "/snapshot/remove", &eventsapi.SnapshotRemove{Key: key})
	if l.collect != nil {
		l.collect()
	}
	return nil
}

// Cleanup frees space left by lazy removals: the snapshotter's own
// cleanup if it has one, else a garbage collection, which removes the
// backend snapshots no namespace refers to.
func (l *local) Cleanup(ctx context.Context, name string) error {
	sn, err := l.get(name)
	if err != nil {
		return err
	}
	if c, ok := sn.(snapshots.Cleaner); ok {
		return c.Cleanup(ctx)
	}
	if l.collectSync != nil {
		return l.collectSync(ctx)
	}
	return fmt.Errorf("snapshotter %q: cleanup: %w", name, errdefs.ErrNotImplemented)
}
