package metadata

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// fakeSnapshotter is an in-memory backend with the Snapshotter contract's
// rules (parents must be committed, no removal with children), used until
// a real snapshotter lands in the tree.
type fakeSnapshotter struct {
	mu    sync.Mutex
	snaps map[string]snapshots.Info
	// slowRemove, if set, runs before Remove of a key with a parent
	// (outside the lock): tests make a child's removal slow with it.
	slowRemove func(key string)
}

func newFakeSnapshotter() *fakeSnapshotter {
	return &fakeSnapshotter{snaps: map[string]snapshots.Info{}}
}

func (f *fakeSnapshotter) keys() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for k := range f.snaps {
		out[k] = true
	}
	return out
}

func (f *fakeSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.snaps[key]
	if !ok {
		return info, fmt.Errorf("fake %q: %w", key, errdefs.ErrNotFound)
	}
	return info, nil
}

func (f *fakeSnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	return f.Stat(ctx, info.Name)
}

func (f *fakeSnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	_, err := f.Stat(ctx, key)
	return snapshots.Usage{Size: 1}, err
}

func (f *fakeSnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	if _, err := f.Stat(ctx, key); err != nil {
		return nil, err
	}
	return []mount.Mount{{Type: "bind", Source: "/fake/" + key}}, nil
}

func (f *fakeSnapshotter) create(key, parent string, kind snapshots.Kind) ([]mount.Mount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[key]; ok {
		return nil, fmt.Errorf("fake %q: %w", key, errdefs.ErrAlreadyExists)
	}
	if parent != "" {
		p, ok := f.snaps[parent]
		if !ok {
			return nil, fmt.Errorf("fake parent %q: %w", parent, errdefs.ErrNotFound)
		}
		if p.Kind != snapshots.KindCommitted {
			return nil, fmt.Errorf("fake parent %q not committed: %w", parent, errdefs.ErrInvalidArgument)
		}
	}
	f.snaps[key] = snapshots.Info{Kind: kind, Name: key, Parent: parent, Created: time.Now()}
	return []mount.Mount{{Type: "bind", Source: "/fake/" + key}}, nil
}

func (f *fakeSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return f.create(key, parent, snapshots.KindActive)
}

func (f *fakeSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	return f.create(key, parent, snapshots.KindView)
}

func (f *fakeSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.snaps[key]
	if !ok {
		return fmt.Errorf("fake %q: %w", key, errdefs.ErrNotFound)
	}
	if info.Kind != snapshots.KindActive {
		return fmt.Errorf("fake %q not active: %w", key, errdefs.ErrFailedPrecondition)
	}
	if _, ok := f.snaps[name]; ok {
		return fmt.Errorf("fake %q: %w", name, errdefs.ErrAlreadyExists)
	}
	delete(f.snaps, key)
	info.Name, info.Kind = name, snapshots.KindCommitted
	f.snaps[name] = info
	return nil
}

func (f *fakeSnapshotter) Remove(ctx context.Context, key string) error {
	f.mu.Lock()
	slow := f.slowRemove
	parent := f.snaps[key].Parent
	f.mu.Unlock()
	if slow != nil && parent != "" {
		slow(key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[key]; !ok {
		return fmt.Errorf("fake %q: %w", key, errdefs.ErrNotFound)
	}
	for _, s := range f.snaps {
		if s.Parent == key {
			return fmt.Errorf("fake %q has children: %w", key, errdefs.ErrFailedPrecondition)
		}
	}
	delete(f.snaps, key)
	return nil
}

func (f *fakeSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, filters ...string) error {
	f.mu.Lock()
	var infos []snapshots.Info
	for _, s := range f.snaps {
		infos = append(infos, s)
	}
	f.mu.Unlock()
	for _, info := range infos {
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSnapshotter) Close() error { return nil }
