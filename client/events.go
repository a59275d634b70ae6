package client

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/anypb"

	eventsapi "github.com/berth-containers/berth/api/services/events/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

func namespaceFrom(ctx context.Context) (string, bool) { return namespaces.Namespace(ctx) }

// Envelope is one event as the daemon delivered it.
type Envelope struct {
	Timestamp time.Time
	Namespace string
	Topic     string
	Event     *anypb.Any
}

// Subscribe streams events matching any of the filters until ctx ends.
// Events of every namespace are delivered; filter on namespace to narrow.
func (c *Client) Subscribe(ctx context.Context, filters ...string) (<-chan *Envelope, <-chan error) {
	ch := make(chan *Envelope)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		stream, err := c.EventService().Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: filters})
		if err != nil {
			errc <- errdefs.FromGRPC(err)
			return
		}
		for {
			e, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					errc <- ctx.Err()
				} else {
					errc <- errdefs.FromGRPC(err)
				}
				return
			}
			select {
			case ch <- &Envelope{Timestamp: e.Timestamp.AsTime(), Namespace: e.Namespace, Topic: e.Topic, Event: e.Event}:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	return ch, errc
}

// Publish publishes an event under topic in the context's namespace.
func (c *Client) Publish(ctx context.Context, topic string, event *anypb.Any) error {
	_, err := c.EventService().Publish(c.withNamespace(ctx), &eventsapi.PublishRequest{Topic: topic, Event: event})
	return errdefs.FromGRPC(err)
}
