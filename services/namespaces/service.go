// Package namespaces serves containerd.services.namespaces.v1.Namespaces.
package namespaces

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	eventsapi "github.com/berth-containers/berth/api/events"
	api "github.com/berth-containers/berth/api/services/namespaces/v1"
	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/plugin"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "namespaces",
		Requires: []plugin.Type{plugin.MetadataPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			m, err := ic.GetByID(plugin.MetadataPlugin, "bolt")
			if err != nil {
				return nil, err
			}
			return &service{store: metadata.NewNamespaceStore(m.(*metadata.DB)), publisher: ic.Events}, nil
		},
	})
}

type service struct {
	api.UnimplementedNamespacesServer
	store     *metadata.NamespaceStore
	publisher events.Publisher
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterNamespacesServer(srv, s)
	return nil
}

// Get answers for a namespace that does not exist (yet) with no labels, as
// containerd's does: its clients read the namespace's default runtime and
// snapshotter labels before anything has created the namespace.
func (s *service) Get(ctx context.Context, r *api.GetNamespaceRequest) (*api.GetNamespaceResponse, error) {
	labels, err := s.store.Labels(ctx, r.Name)
	if errdefs.IsNotFound(err) {
		labels, err = map[string]string{}, nil
	}
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	return &api.GetNamespaceResponse{Namespace: &api.Namespace{Name: r.Name, Labels: labels}}, nil
}

func (s *service) List(ctx context.Context, r *api.ListNamespacesRequest) (*api.ListNamespacesResponse, error) {
	names, err := s.store.List(ctx)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	out := &api.ListNamespacesResponse{}
	for _, n := range names {
		labels, err := s.store.Labels(ctx, n)
		if err != nil {
			return nil, errdefs.ToGRPC(err)
		}
		out.Namespaces = append(out.Namespaces, &api.Namespace{Name: n, Labels: labels})
	}
	return out, nil
}

func (s *service) Create(ctx context.Context, r *api.CreateNamespaceRequest) (*api.CreateNamespaceResponse, error) {
	ns := r.GetNamespace()
	if ns == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("create namespace: namespace is required: %w", errdefs.ErrInvalidArgument))
	}
	if err := s.store.Create(ctx, ns.Name, ns.Labels); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	s.publish(ctx, ns.Name, "/namespaces/create", &eventsapi.NamespaceCreate{Name: ns.Name, Labels: ns.Labels})
	return &api.CreateNamespaceResponse{Namespace: ns}, nil
}

// Update supports the paths "labels" (replace all) and "labels.KEY"; with
// no mask the labels are replaced. All in one transaction; a namespace
// that does not exist is created (see metadata.UpdateLabels).
func (s *service) Update(ctx context.Context, r *api.UpdateNamespaceRequest) (*api.UpdateNamespaceResponse, error) {
	ns := r.GetNamespace()
	if ns == nil {
		return nil, errdefs.ToGRPC(fmt.Errorf("update namespace: namespace is required: %w", errdefs.ErrInvalidArgument))
	}
	paths := r.GetUpdateMask().GetPaths()
	replace := len(paths) == 0
	set := map[string]string{}
	for _, p := range paths {
		switch {
		case p == "labels":
			replace = true
		case strings.HasPrefix(p, "labels."):
			k := strings.TrimPrefix(p, "labels.")
			set[k] = ns.Labels[k]
		default:
			return nil, errdefs.ToGRPC(fmt.Errorf("update namespace %q: cannot update field %q: %w", ns.Name, p, errdefs.ErrInvalidArgument))
		}
	}
	if replace {
		for k, v := range ns.Labels {
			set[k] = v
		}
	}
	labels, err := s.store.UpdateLabels(ctx, ns.Name, set, replace)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	s.publish(ctx, ns.Name, "/namespaces/update", &eventsapi.NamespaceUpdate{Name: ns.Name, Labels: labels})
	return &api.UpdateNamespaceResponse{Namespace: &api.Namespace{Name: ns.Name, Labels: labels}}, nil
}

func (s *service) Delete(ctx context.Context, r *api.DeleteNamespaceRequest) (*emptypb.Empty, error) {
	if err := s.store.Delete(ctx, r.Name); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	s.publish(ctx, r.Name, "/namespaces/delete", &eventsapi.NamespaceDelete{Name: r.Name})
	return &emptypb.Empty{}, nil
}

// publish sends namespace events in the namespace they are about, as
// containerd does, since the caller's context may name another one.
func (s *service) publish(ctx context.Context, ns, topic string, ev interface{}) {
	if s.publisher != nil {
		s.publisher.Publish(namespaces.WithNamespace(ctx, ns), topic, ev)
	}
}
