// Package events is the daemon's event exchange: services publish what they
// did (/containers/create, /tasks/exit, ...), shims forward their task
// events, and clients subscribe with containerd's filter syntax.
package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"google.golang.org/protobuf/types/known/anypb"
)

// Envelope is one event as it travels: who (namespace), what (topic), when,
// and the payload packed with typeurl.MarshalAny.
type Envelope struct {
	Timestamp time.Time
	Namespace string
	Topic     string
	Event     *anypb.Any
}

// Publisher publishes an event under a topic in the context's namespace.
type Publisher interface {
	Publish(ctx context.Context, topic string, event interface{}) error
}

// Forwarder passes on an envelope built elsewhere (a shim, a client).
type Forwarder interface {
	Forward(ctx context.Context, envelope *Envelope) error
}

// Subscriber streams envelopes matching any of the filters until ctx ends.
type Subscriber interface {
	Subscribe(ctx context.Context, filters ...string) (ch <-chan *Envelope, errs <-chan error)
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, topic string, event interface{}) error

// Publish implements Publisher.
func (fn PublisherFunc) Publish(ctx context.Context, topic string, event interface{}) error {
	return fn(ctx, topic, event)
}

// ValidateTopic checks a topic: it starts with '/' and every component
// between slashes is an identifier ("/tasks/exit", "/containers/create").
func ValidateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("topic must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if !strings.HasPrefix(topic, "/") {
		return fmt.Errorf("topic %q must start with '/': %w", topic, errdefs.ErrInvalidArgument)
	}
	for _, part := range strings.Split(topic[1:], "/") {
		if err := identifiers.Validate(part); err != nil {
			return fmt.Errorf("topic %q: component %q is not an identifier: %w", topic, part, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func validateEnvelope(env *Envelope) error {
	if env == nil {
		return fmt.Errorf("nil envelope: %w", errdefs.ErrInvalidArgument)
	}
	if err := identifiers.Validate(env.Namespace); err != nil {
		return fmt.Errorf("envelope namespace: %w", err)
	}
	if err := ValidateTopic(env.Topic); err != nil {
		return err
	}
	if env.Event == nil {
		return fmt.Errorf("envelope for %s has no event: %w", env.Topic, errdefs.ErrInvalidArgument)
	}
	return nil
}
