// Package errdefs is Berth's one set of error kinds. Every layer wraps one of
// these sentinels (fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)) so
// callers test the kind with errors.Is or the Is* helpers, and the gRPC layer
// maps the kind to a status code and back (see grpc.go).
package errdefs

import (
	"context"
	"errors"
)

var (
	ErrUnknown            = errors.New("unknown")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrConflict           = errors.New("conflict")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
)

func IsInvalidArgument(err error) bool    { return errors.Is(err, ErrInvalidArgument) }
func IsNotFound(err error) bool           { return errors.Is(err, ErrNotFound) }
func IsAlreadyExists(err error) bool      { return errors.Is(err, ErrAlreadyExists) }
func IsFailedPrecondition(err error) bool { return errors.Is(err, ErrFailedPrecondition) }
func IsConflict(err error) bool           { return errors.Is(err, ErrConflict) }
func IsUnavailable(err error) bool        { return errors.Is(err, ErrUnavailable) }
func IsNotImplemented(err error) bool     { return errors.Is(err, ErrNotImplemented) }
func IsCanceled(err error) bool           { return errors.Is(err, context.Canceled) }
func IsDeadlineExceeded(err error) bool   { return errors.Is(err, context.DeadlineExceeded) }
