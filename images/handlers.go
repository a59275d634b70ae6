package images

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/berth-containers/berth/pkg/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	// ErrSkipDesc from a handler skips the descriptor's children but not
	// its siblings.
	ErrSkipDesc = errors.New("skip descriptor")
	// ErrStopHandler from a handler in Handlers stops the chain for this
	// descriptor without error; the children found so far are kept.
	ErrStopHandler = errors.New("stop handler")
)

// Handler handles one descriptor and returns its children to visit next.
type Handler interface {
	Handle(ctx context.Context, desc ocispec.Descriptor) (children []ocispec.Descriptor, err error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error)

// Handle implements Handler.
func (fn HandlerFunc) Handle(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	return fn(ctx, desc)
}

// Handlers runs handlers in order on each descriptor and concatenates the
// children they return.
func Handlers(handlers ...Handler) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		var children []ocispec.Descriptor
		for _, h := range handlers {
			ch, err := h.Handle(ctx, desc)
			if err != nil {
				if errors.Is(err, ErrStopHandler) {
					break
				}
				return nil, err
			}
			children = append(children, ch...)
		}
		return children, nil
	}
}

// Walk visits descs and their children depth first, one at a time.
func Walk(ctx context.Context, handler Handler, descs ...ocispec.Descriptor) error {
	for _, desc := range descs {
		if err := ctx.Err(); err != nil {
			return err
		}
		children, err := handler.Handle(ctx, desc)
		if err != nil {
			if errors.Is(err, ErrSkipDesc) {
				continue
			}
			return err
		}
		if len(children) > 0 {
			if err := Walk(ctx, handler, children...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Dispatch visits descs and their children concurrently, with at most
// limit handler calls running at once (limit <= 0: no bound). The first
// error cancels the rest and is returned once every goroutine has stopped.
func Dispatch(ctx context.Context, handler Handler, limit int, descs ...ocispec.Descriptor) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sem chan struct{}
	if limit > 0 {
		sem = make(chan struct{}, limit)
	}
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	fail := func(err error) {
		once.Do(func() { ferr = err; cancel(err) })
	}
	var dispatch func(desc ocispec.Descriptor)
	dispatch = func(desc ocispec.Descriptor) {
		defer wg.Done()
		// The slot is held only for the handler call, never while children
		// run, so a deep graph cannot deadlock on its own parents.
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				fail(context.Cause(ctx))
				return
			}
		}
		if err := ctx.Err(); err != nil {
			if sem != nil {
				<-sem
			}
			fail(context.Cause(ctx))
			return
		}
		children, err := handler.Handle(ctx, desc)
		if sem != nil {
			<-sem
		}
		if err != nil {
			if !errors.Is(err, ErrSkipDesc) {
				fail(err)
			}
			return
		}
		for _, c := range children {
			wg.Add(1)
			go dispatch(c)
		}
	}
	for _, d := range descs {
		wg.Add(1)
		go dispatch(d)
	}
	wg.Wait()
	return ferr
}

// FilterPlatforms wraps f so children of an index whose platform does not
// match m are dropped. Children without a platform are kept.
func FilterPlatforms(f HandlerFunc, m platforms.Matcher) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f(ctx, desc)
		if err != nil || m == nil {
			return children, err
		}
		out := children[:0:0]
		for _, c := range children {
			if c.Platform == nil || m.Match(*c.Platform) {
				out = append(out, c)
			}
		}
		return out, nil
	}
}

// LimitManifests wraps f so an index yields at most n of its manifests,
// the best for m first (n <= 0: all, sorted). Other children pass as is.
func LimitManifests(f HandlerFunc, m platforms.MatchComparer, n int) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := f(ctx, desc)
		if err != nil || !IsIndexType(desc.MediaType) {
			return children, err
		}
		sortByPlatform(children, m)
		if n > 0 && len(children) > n {
			children = children[:n]
		}
		return children, nil
	}
}

// sortByPlatform orders descriptors best first for m: those with a
// platform before those without, as containerd does.
func sortByPlatform(descs []ocispec.Descriptor, m platforms.MatchComparer) {
	if m == nil {
		return
	}
	sort.SliceStable(descs, func(i, j int) bool {
		pi, pj := descs[i].Platform, descs[j].Platform
		switch {
		case pi == nil:
			return false
		case pj == nil:
			return true
		}
		return m.Less(*pi, *pj)
	})
}
