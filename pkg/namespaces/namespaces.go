// Package namespaces carries the namespace on a context and across the wire:
// gRPC metadata key "containerd-namespace", ttrpc metadata key
// "containerd-namespace-ttrpc", exactly as containerd's clients send them.
package namespaces

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/metadata"
)

const (
	// GRPCHeader is the gRPC metadata key for the namespace.
	GRPCHeader = "containerd-namespace"
	// TTRPCHeader is the ttrpc metadata key for the namespace.
	TTRPCHeader = "containerd-namespace-ttrpc"
	// NamespaceEnvVar lets a user pick the default namespace.
	NamespaceEnvVar = "CONTAINERD_NAMESPACE"
	// Default is the namespace used when none is given.
	Default = "default"
)

type key struct{}

// WithNamespace returns a context carrying ns, also set as outgoing gRPC and
// ttrpc metadata so calls made with it name the namespace.
func WithNamespace(ctx context.Context, ns string) context.Context {
	ctx = context.WithValue(ctx, key{}, ns)
	ctx = withGRPCHeader(ctx, ns)
	return withTTRPCHeader(ctx, ns)
}

func withGRPCHeader(ctx context.Context, ns string) context.Context {
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok {
		md = metadata.MD{}
	} else {
		md = md.Copy()
	}
	md.Set(GRPCHeader, ns)
	return metadata.NewOutgoingContext(ctx, md)
}

func withTTRPCHeader(ctx context.Context, ns string) context.Context {
	md, ok := ttrpc.GetMetadata(ctx)
	if !ok {
		md = ttrpc.MD{}
	} else {
		md = md.Clone()
	}
	md.Set(TTRPCHeader, ns)
	return ttrpc.WithMetadata(ctx, md)
}

// NamespaceFromEnv returns a context with the namespace from the environment
// or the default.
func NamespaceFromEnv(ctx context.Context) context.Context {
	ns := os.Getenv(NamespaceEnvVar)
	if ns == "" {
		ns = Default
	}
	return WithNamespace(ctx, ns)
}

// Namespace returns the namespace on the context: the value set by
// WithNamespace, else incoming gRPC metadata, else incoming ttrpc metadata.
func Namespace(ctx context.Context) (string, bool) {
	if ns, ok := ctx.Value(key{}).(string); ok {
		return ns, true
	}
	// One key's values, not a copy of all the metadata (FromIncomingContext):
	// this runs several times per call.
	if v := metadata.ValueFromIncomingContext(ctx, GRPCHeader); len(v) > 0 {
		return v[0], true
	}
	if md, ok := ttrpc.GetMetadata(ctx); ok {
		if v, ok := md.Get(TTRPCHeader); ok && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// NamespaceRequired returns the context's namespace, validated, or an
// InvalidArgument error when there is none or it is malformed.
func NamespaceRequired(ctx context.Context) (string, error) {
	ns, ok := Namespace(ctx)
	if !ok || ns == "" {
		return "", fmt.Errorf("namespace is required: %w", errdefs.ErrInvalidArgument)
	}
	if err := identifiers.Validate(ns); err != nil {
		return "", fmt.Errorf("namespace validation: %w", err)
	}
	return ns, nil
}
