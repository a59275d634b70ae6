package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
)

// blobWaiter tells an unpack that runs beside a fetch when each blob is
// in the content store. Once the fetch has ended (release), waiting stops:
// a blob is there or it is not, and the store says which.
type blobWaiter struct {
	mu      sync.Mutex
	blobs   map[digest.Digest]chan struct{}
	err     error
	stopped chan struct{}
	once    sync.Once
}

func newBlobWaiter() *blobWaiter {
	return &blobWaiter{blobs: map[digest.Digest]chan struct{}{}, stopped: make(chan struct{})}
}

func (w *blobWaiter) ch(d digest.Digest) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.blobs[d]
	if !ok {
		c = make(chan struct{})
		w.blobs[d] = c
	}
	return c
}

// fetched marks d as in the store.
func (w *blobWaiter) fetched(d digest.Digest) {
	c := w.ch(d)
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// release ends every wait: with err if the fetch failed, else with nil.
func (w *blobWaiter) release(err error) {
	w.once.Do(func() {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		close(w.stopped)
	})
}

func (w *blobWaiter) wait(ctx context.Context, d digest.Digest) error {
	c := w.ch(d)
	select {
	case <-c:
		return nil
	default:
	}
	select {
	case <-c:
		return nil
	case <-w.stopped:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitingStore reads a blob only once the fetch has it.
type waitingStore struct {
	content.Store
	w *blobWaiter
}

func (s waitingStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if err := s.w.wait(ctx, desc.Digest); err != nil {
		return nil, err
	}
	return s.Store.ReaderAt(ctx, desc)
}

func (s waitingStore) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	if err := s.w.wait(ctx, d); err != nil {
		return content.Info{}, err
	}
	return s.Store.Info(ctx, d)
}

// pullUnpacking fetches ref as fetch does and unpacks it for rc.Platform
// at the same time: each layer is applied as soon as it and the layers
// below it are in, instead of after the last download (containerd's pull
// overlaps the two the same way). ctx holds the pull's lease.
func (c *Client) pullUnpacking(ctx context.Context, ref string, rc *RemoteContext) (ImageInfo, error) {
	sn, err := c.snapshotterName(ctx, rc.Snapshotter)
	if err != nil {
		return ImageInfo{}, err
	}
	w := newBlobWaiter()
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		uerr    error
		started bool
		udone   = make(chan struct{})
	)
	rc.onBlob = w.fetched
	rc.onRoot = func(root ocispec.Descriptor) {
		started = true
		go func() {
			defer close(udone)
			_, uerr = images.Unpack(uctx, waitingStore{Store: c.ContentStore(), w: w}, root, c.SnapshotService(sn), c.DiffService(), rc.Platform,
				images.WithSnapshotterName(sn),
				images.WithLayerReady(func(ctx context.Context, l ocispec.Descriptor) error { return w.wait(ctx, l.Digest) }))
			if uerr != nil {
				uerr = fmt.Errorf("unpack image %q into %s: %w", ref, sn, uerr)
			}
		}()
	}
	info, err := c.fetch(ctx, ref, rc)
	w.release(err)
	if !started {
		return info, err
	}
	if err != nil {
		cancel()
		<-udone
		return info, err
	}
	<-udone
	return info, uerr
}
