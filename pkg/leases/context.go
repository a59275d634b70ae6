// Package leases carries a lease ID on a context and across the wire in the
// gRPC metadata key "containerd-lease" (ttrpc: "containerd-lease-ttrpc"), as
// containerd's clients send it. Resources created while a lease is on the
// context are tied to that lease, so garbage collection keeps them until the
// lease is deleted or expires.
package leases

import (
	"context"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/metadata"
)

const (
	// GRPCHeader is the gRPC metadata key for the lease.
	GRPCHeader = "containerd-lease"
	// TTRPCHeader is the ttrpc metadata key for the lease.
	TTRPCHeader = "containerd-lease-ttrpc"
)

type key struct{}

// WithLease returns a context carrying the lease id, also set as outgoing
// gRPC and ttrpc metadata so calls made with it run under the lease.
func WithLease(ctx context.Context, id string) context.Context {
	ctx = context.WithValue(ctx, key{}, id)

	md, ok := metadata.FromOutgoingContext(ctx)
	if ok {
		md = md.Copy()
	} else {
		md = metadata.MD{}
	}
	md.Set(GRPCHeader, id)
	ctx = metadata.NewOutgoingContext(ctx, md)

	tmd, ok := ttrpc.GetMetadata(ctx)
	if ok {
		tmd = tmd.Clone()
	} else {
		tmd = ttrpc.MD{}
	}
	tmd.Set(TTRPCHeader, id)
	return ttrpc.WithMetadata(ctx, tmd)
}

// FromContext returns the lease on the context: the value set by WithLease,
// else incoming gRPC metadata, else incoming ttrpc metadata. An empty ID
// counts as no lease.
func FromContext(ctx context.Context) (string, bool) {
	if id, ok := ctx.Value(key{}).(string); ok {
		return id, id != ""
	}
	// One key's values, not a copy of all the metadata (FromIncomingContext):
	// this runs several times per call.
	if v := metadata.ValueFromIncomingContext(ctx, GRPCHeader); len(v) > 0 && v[0] != "" {
		return v[0], true
	}
	if md, ok := ttrpc.GetMetadata(ctx); ok {
		if v, ok := md.Get(TTRPCHeader); ok && len(v) > 0 && v[0] != "" {
			return v[0], true
		}
	}
	return "", false
}
