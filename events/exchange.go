package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
)

// DefaultSubscriberBuffer is how many events may wait for one subscriber.
const DefaultSubscriberBuffer = 1024

// ErrSlowSubscriber is what a subscriber gets when it fell too far behind.
var ErrSlowSubscriber = errors.New("subscriber too slow")

// Exchange fans events out to subscribers. Publishing never blocks on a
// subscriber: each one has a bounded queue, and a subscriber whose queue is
// full is dropped (its error channel says so) rather than stalling the
// services and shims that publish. Events are delivered to every subscriber
// in one global order.
type Exchange struct {
	buffer int

	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// Opt configures an Exchange.
type Opt func(*Exchange)

// WithSubscriberBuffer sets the per-subscriber queue length.
func WithSubscriberBuffer(n int) Opt {
	return func(e *Exchange) {
		if n > 0 {
			e.buffer = n
		}
	}
}

// NewExchange returns an exchange with no subscribers.
func NewExchange(opts ...Opt) *Exchange {
	e := &Exchange{buffer: DefaultSubscriberBuffer, subs: map[*subscriber]struct{}{}}
	for _, o := range opts {
		o(e)
	}
	return e
}

var (
	_ Publisher  = (*Exchange)(nil)
	_ Forwarder  = (*Exchange)(nil)
	_ Subscriber = (*Exchange)(nil)
)

type subscriber struct {
	filter filters.Filter
	q      chan *Envelope
	// dropped is closed (under Exchange.mu) when the queue overflowed.
	dropped chan struct{}
}

// Publish packs event with typeurl.MarshalAny and sends it under topic in
// the context's namespace.
func (e *Exchange) Publish(ctx context.Context, topic string, event interface{}) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if err := ValidateTopic(topic); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	a, err := typeurl.MarshalAny(event)
	if err != nil {
		return fmt.Errorf("publish %s: pack event: %w", topic, err)
	}
	e.broadcast(ctx, &Envelope{Timestamp: time.Now().UTC(), Namespace: ns, Topic: topic, Event: a})
	return nil
}

// Forward sends an envelope made elsewhere, after checking it; a missing
// timestamp is set to now.
func (e *Exchange) Forward(ctx context.Context, env *Envelope) error {
	if err := validateEnvelope(env); err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	if env.Timestamp.IsZero() {
		cp := *env
		cp.Timestamp = time.Now().UTC()
		env = &cp
	}
	e.broadcast(ctx, env)
	return nil
}

func (e *Exchange) broadcast(ctx context.Context, env *Envelope) {
	log.G(ctx).WithField("topic", env.Topic).WithField("namespace", env.Namespace).Debug("event")
	a := newAdaptor(env)
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		if !s.filter.Match(a) {
			continue
		}
		select {
		case s.q <- env:
		default:
			// Full queue: drop this subscriber instead of blocking everyone.
			close(s.dropped)
			delete(e.subs, s)
		}
	}
}

// Subscribe returns the events matching any of the filters (all events when
// none is given). The event channel closes when ctx ends or the subscriber
// is dropped; the error channel then yields the reason (nothing for a
// cancelled ctx) and closes. A malformed filter is reported the same way.
func (e *Exchange) Subscribe(ctx context.Context, fs ...string) (<-chan *Envelope, <-chan error) {
	evch := make(chan *Envelope)
	errq := make(chan error, 1)

	filter := filters.Always
	if len(fs) > 0 {
		f, err := filters.ParseAll(fs...)
		if err != nil {
			errq <- fmt.Errorf("subscribe: %w", err)
			close(errq)
			close(evch)
			return evch, errq
		}
		filter = f
	}
	s := &subscriber{filter: filter, q: make(chan *Envelope, e.buffer), dropped: make(chan struct{})}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()

	go func() {
		err := e.pump(ctx, s, evch)
		e.mu.Lock()
		delete(e.subs, s)
		e.mu.Unlock()
		if err != nil {
			errq <- err
		}
		close(errq)
		close(evch)
	}()
	return evch, errq
}

// pump moves events from s's queue to the consumer until ctx ends or s is
// dropped.
func (e *Exchange) pump(ctx context.Context, s *subscriber, evch chan<- *Envelope) error {
	overflow := fmt.Errorf("events subscriber dropped: more than %d events waiting: %w: %w",
		e.buffer, ErrSlowSubscriber, errdefs.ErrUnavailable)
	for {
		select {
		case <-s.dropped:
			return overflow
		default:
		}
		select {
		case env := <-s.q:
			select {
			case evch <- env:
			case <-s.dropped:
				return overflow
			case <-ctx.Done():
				return ctxErr(ctx)
			}
		case <-s.dropped:
			return overflow
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
}

// ctxErr is nil for a plain cancel (the subscriber hung up) and the
// context's error otherwise (a deadline).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
