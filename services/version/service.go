// Package version serves containerd.services.version.v1.Version.
package version

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	api "github.com/berth-containers/berth/api/services/version/v1"
	"github.com/berth-containers/berth/pkg/version"
	"github.com/berth-containers/berth/plugin"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type: plugin.GRPCPlugin,
		ID:   "version",
		InitFn: func(*plugin.InitContext) (interface{}, error) {
			return &service{}, nil
		},
	})
}

type service struct {
	api.UnimplementedVersionServer
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterVersionServer(srv, s)
	return nil
}

func (s *service) Version(context.Context, *emptypb.Empty) (*api.VersionResponse, error) {
	return &api.VersionResponse{Version: version.Version, Revision: version.Revision}, nil
}
