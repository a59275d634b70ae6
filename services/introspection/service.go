// Package introspection serves containerd.services.introspection.v1:
// which plugins run (or why not) and the daemon's instance UUID.
package introspection

import (
	"context"
	"sort"

	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"

	api "github.com/berth-containers/berth/api/services/introspection/v1"
	types "github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/plugin"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type: plugin.GRPCPlugin,
		ID:   "introspection",
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			return &service{set: ic.Plugins(), uuid: ic.UUID}, nil
		},
	})
}

type service struct {
	api.UnimplementedIntrospectionServer
	set  *plugin.Set
	uuid string
}

func (s *service) Register(srv *grpc.Server) error {
	api.RegisterIntrospectionServer(srv, s)
	return nil
}

func (s *service) Plugins(ctx context.Context, r *api.PluginsRequest) (*api.PluginsResponse, error) {
	f, err := filters.ParseAll(r.Filters...)
	if err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	var out []*api.Plugin
	for _, p := range s.set.All() {
		pp := toProto(p)
		if f.Match(adaptor(pp)) {
			out = append(out, pp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Id < out[j].Id
	})
	return &api.PluginsResponse{Plugins: out}, nil
}

func (s *service) Server(context.Context, *emptypb.Empty) (*api.ServerResponse, error) {
	return &api.ServerResponse{Uuid: s.uuid}, nil
}

func toProto(p *plugin.Plugin) *api.Plugin {
	r := p.Registration
	pp := &api.Plugin{Type: string(r.Type), Id: r.ID}
	for _, t := range r.Requires {
		pp.Requires = append(pp.Requires, string(t))
	}
	if m := p.Meta; m != nil {
		for _, pl := range m.Platforms {
			pp.Platforms = append(pp.Platforms, &types.Platform{Os: pl.OS, Architecture: pl.Architecture, Variant: pl.Variant})
		}
		pp.Exports = m.Exports
		pp.Capabilities = m.Capabilities
	}
	if err := p.Err(); err != nil {
		code := codes.Unknown
		if plugin.IsSkipPlugin(err) {
			// containerd reports a skipped plugin's reason the same way.
			code = codes.Unknown
		} else {
			code = errdefs.Code(err)
		}
		pp.InitErr = &rpcstatus.Status{Code: int32(code), Message: err.Error()}
	}
	return pp
}

// adaptor exposes type, id, requires, capabilities, platforms and
// exports.KEY to filters.
func adaptor(p *api.Plugin) filters.Adaptor {
	return filters.AdapterFunc(func(fp []string) (string, bool) {
		if len(fp) == 0 {
			return "", false
		}
		switch fp[0] {
		case "type":
			return p.Type, true
		case "id":
			return p.Id, true
		case "exports":
			if len(fp) > 1 {
				v, ok := p.Exports[fp[1]]
				return v, ok
			}
		case "capabilities":
			if len(p.Capabilities) > 0 {
				return p.Capabilities[0], true
			}
		}
		return "", false
	})
}
