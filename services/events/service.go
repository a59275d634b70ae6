// Package events serves containerd.services.events.v1.Events over gRPC and
// containerd.services.events.ttrpc.v1.Events (Forward, used by shims) over
// ttrpc, both on the daemon's one exchange.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/events/v1"
	ttrpcapi "github.com/berth-containers/berth/api/services/ttrpc/events/v1"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/plugin"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type: plugin.GRPCPlugin,
		ID:   "events",
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			return &service{ex: ic.Events}, nil
		},
	})
}

type service struct {
	api.UnimplementedEventsServer
	ex *events.Exchange
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterEventsServer(srv, s)
	return nil
}

func (s *service) RegisterTTRPC(srv *ttrpc.Server) error {
	ttrpcapi.RegisterEventsService(srv, &ttrpcService{ex: s.ex})
	return nil
}

func (s *service) Publish(ctx context.Context, r *api.PublishRequest) (*emptypb.Empty, error) {
	if r.Event == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("publish %q: event is required: %w", r.Topic, errdefs.ErrInvalidArgument))
	}
	if err := s.ex.Publish(ctx, r.Topic, r.Event); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Forward(ctx context.Context, r *api.ForwardRequest) (*emptypb.Empty, error) {
	env := r.GetEnvelope()
	if env == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("forward: envelope is required: %w", errdefs.ErrInvalidArgument))
	}
	if err := s.ex.Forward(ctx, fromProto(env.Timestamp, env.Namespace, env.Topic, env)); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func (s *service) Subscribe(r *api.SubscribeRequest, stream api.Events_SubscribeServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	ch, errs := s.ex.Subscribe(ctx, r.Filters...)
	for {
		select {
		case env, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(&api.Envelope{
				Timestamp: timestamppb.New(env.Timestamp), Namespace: env.Namespace,
				Topic: env.Topic, Event: env.Event,
			}); err != nil {
				return err
			}
		case err := <-errs:
			if err != nil && ctx.Err() == nil {
				return errdefs.ToGRPC(err)
			}
			return nil
		}
	}
}

type ttrpcService struct{ ex *events.Exchange }

func (s *ttrpcService) Forward(ctx context.Context, r *ttrpcapi.ForwardRequest) (*emptypb.Empty, error) {
	env := r.GetEnvelope()
	if env == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("forward: envelope is required: %w", errdefs.ErrInvalidArgument))
	}
	e := &events.Envelope{Timestamp: env.GetTimestamp().AsTime(), Namespace: env.Namespace, Topic: env.Topic, Event: env.Event}
	if e.Namespace == "" {
		// Some shims leave the envelope's namespace to the call's metadata.
		e.Namespace, _ = namespaces.Namespace(ctx)
	}
	if err := s.ex.Forward(ctx, e); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &emptypb.Empty{}, nil
}

func fromProto(ts *timestamppb.Timestamp, ns, topic string, env *api.Envelope) *events.Envelope {
	t := time.Now()
	if ts != nil {
		t = ts.AsTime()
	}
	return &events.Envelope{Timestamp: t, Namespace: ns, Topic: topic, Event: env.Event}
}
