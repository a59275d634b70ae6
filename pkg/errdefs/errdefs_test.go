package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		kind error
		code codes.Code
		is   func(error) bool
	}{
		{ErrInvalidArgument, codes.InvalidArgument, IsInvalidArgument},
		{ErrNotFound, codes.NotFound, IsNotFound},
		{ErrAlreadyExists, codes.AlreadyExists, IsAlreadyExists},
		{ErrFailedPrecondition, codes.FailedPrecondition, IsFailedPrecondition},
		{ErrUnavailable, codes.Unavailable, IsUnavailable},
		{ErrNotImplemented, codes.Unimplemented, IsNotImplemented},
		{context.Canceled, codes.Canceled, IsCanceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded, IsDeadlineExceeded},
	} {
		err := fmt.Errorf("container %q in namespace %q: %w", "web", "default", tc.kind)
		g := ToGRPC(err)
		if got := status.Code(g); got != tc.code {
			t.Errorf("%v: code %v, want %v", tc.kind, got, tc.code)
		}
		back := FromGRPC(g)
		if !tc.is(back) {
			t.Errorf("%v: kind lost across the wire: %v", tc.kind, back)
		}
		if back.Error() != err.Error() {
			t.Errorf("message changed: %q != %q", back.Error(), err.Error())
		}
	}
}

func TestConflictMapsToFailedPrecondition(t *testing.T) {
	if c := Code(fmt.Errorf("x: %w", ErrConflict)); c != codes.FailedPrecondition {
		t.Fatalf("conflict code %v", c)
	}
}

func TestPlainErrorIsUnknown(t *testing.T) {
	g := ToGRPC(errors.New("boom"))
	if status.Code(g) != codes.Unknown {
		t.Fatalf("code %v", status.Code(g))
	}
	if ToGRPC(g) != g {
		t.Fatal("ToGRPC must pass a status error through")
	}
	if IsNotFound(FromGRPC(g)) {
		t.Fatal("unknown must not be not-found")
	}
}
