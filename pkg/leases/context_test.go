package leases

import (
	"context"
	"testing"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/metadata"
)

func TestFromContext(t *testing.T) {
	bg := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		id   string
		ok   bool
	}{
		{"none", bg, "", false},
		{"value", WithLease(bg, "l1"), "l1", true},
		{"empty value", WithLease(bg, ""), "", false},
		{"incoming grpc", metadata.NewIncomingContext(bg, metadata.Pairs(GRPCHeader, "l2")), "l2", true},
		{"incoming ttrpc", ttrpc.WithMetadata(bg, ttrpc.MD{TTRPCHeader: []string{"l3"}}), "l3", true},
		{"override", WithLease(WithLease(bg, "a"), "b"), "b", true},
	} {
		id, ok := FromContext(tc.ctx)
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.name, id, ok, tc.id, tc.ok)
		}
	}
}

func TestOutgoing(t *testing.T) {
	ctx := WithLease(metadata.AppendToOutgoingContext(context.Background(), "other", "x"), "l1")
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get(GRPCHeader); len(v) != 1 || v[0] != "l1" {
		t.Fatalf("outgoing lease %v", v)
	}
	if v := md.Get("other"); len(v) != 1 {
		t.Fatalf("other metadata lost: %v", md)
	}
	tmd, _ := ttrpc.GetMetadata(ctx)
	if v, _ := tmd.Get(TTRPCHeader); len(v) != 1 || v[0] != "l1" {
		t.Fatalf("ttrpc lease %v", v)
	}
}
