package errdefs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ToGRPC turns an error into a gRPC status error whose code matches its kind.
// The message keeps the full text so the client sees what failed.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && isGRPCError(err) {
		return err
	}
	return status.Error(Code(err), err.Error())
}

// ToGRPCf is ToGRPC with extra context prepended.
func ToGRPCf(err error, format string, args ...interface{}) error {
	if err == nil {
		return nil
	}
	return ToGRPC(fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err))
}

func isGRPCError(err error) bool {
	_, ok := err.(interface{ GRPCStatus() *status.Status })
	return ok
}

// Code gives the gRPC code for an error's kind.
func Code(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case IsInvalidArgument(err):
		return codes.InvalidArgument
	case IsNotFound(err):
		return codes.NotFound
	case IsAlreadyExists(err):
		return codes.AlreadyExists
	case IsFailedPrecondition(err):
		return codes.FailedPrecondition
	case IsConflict(err):
		// containerd maps conflicts to FailedPrecondition too; the message says which.
		return codes.FailedPrecondition
	case IsUnavailable(err):
		return codes.Unavailable
	case IsNotImplemented(err):
		return codes.Unimplemented
	case IsCanceled(err):
		return codes.Canceled
	case IsDeadlineExceeded(err):
		return codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok && isGRPCError(err) {
		return s.Code()
	}
	return codes.Unknown
}

// FromGRPC turns a gRPC status error back into one wrapping our sentinel, so
// errdefs.IsNotFound(err) holds across the wire. Works for ttrpc status errors
// too, since ttrpc uses the same status type.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	var kind error
	switch s.Code() {
	case codes.InvalidArgument:
		kind = ErrInvalidArgument
	case codes.NotFound:
		kind = ErrNotFound
	case codes.AlreadyExists:
		kind = ErrAlreadyExists
	case codes.FailedPrecondition:
		kind = ErrFailedPrecondition
	case codes.Unavailable:
		kind = ErrUnavailable
	case codes.Unimplemented:
		kind = ErrNotImplemented
	case codes.Canceled:
		kind = context.Canceled
	case codes.DeadlineExceeded:
		kind = context.DeadlineExceeded
	default:
		return &remoteError{msg: s.Message(), kind: ErrUnknown}
	}
	return &remoteError{msg: stripKind(s.Message(), kind), kind: kind}
}

// remoteError keeps the server's message as is and answers errors.Is for its kind.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// stripKind leaves the message whole; it exists so that a message that is only
// the kind ("not found") still reads well.
func stripKind(msg string, kind error) string {
	if strings.TrimSpace(msg) == "" {
		return kind.Error()
	}
	return msg
}

// Is reports whether err is of kind; a convenience for callers holding a raw status.
func Is(err, kind error) bool { return errors.Is(err, kind) }
