package namespaces

import (
	"context"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/metadata"
)

func TestNamespace(t *testing.T) {
	ctx := context.Background()
	if _, err := NamespaceRequired(ctx); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("missing namespace: %v", err)
	}
	ctx = WithNamespace(ctx, "k8s.io")
	ns, err := NamespaceRequired(ctx)
	if err != nil || ns != "k8s.io" {
		t.Fatalf("got %q %v", ns, err)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get(GRPCHeader); len(v) != 1 || v[0] != "k8s.io" {
		t.Fatalf("grpc header %v", v)
	}
	tmd, _ := ttrpc.GetMetadata(ctx)
	if v, _ := tmd.Get(TTRPCHeader); len(v) != 1 || v[0] != "k8s.io" {
		t.Fatalf("ttrpc header %v", v)
	}
}

func TestIncoming(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(GRPCHeader, "a"))
	if ns, _ := Namespace(ctx); ns != "a" {
		t.Fatalf("grpc incoming: %q", ns)
	}
	ctx = ttrpc.WithMetadata(context.Background(), ttrpc.MD{TTRPCHeader: []string{"b"}})
	if ns, _ := Namespace(ctx); ns != "b" {
		t.Fatalf("ttrpc incoming: %q", ns)
	}
	ctx = metadata.NewIncomingContext(context.Background(), metadata.Pairs(GRPCHeader, "../x"))
	if _, err := NamespaceRequired(ctx); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad namespace accepted: %v", err)
	}
}
