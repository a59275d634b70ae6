package server

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/containerd/ttrpc"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// logDone logs a finished call at debug, with its method, namespace and
// duration. The entry is built only when debug logging is on: its fields
// were an eighth of what a daemon at info level allocated per call.
func logDone(ctx context.Context, method string, start time.Time, err error) {
	if !log.L.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return
	}
	l := log.G(ctx).WithField("method", method)
	if ns, ok := namespaces.Namespace(ctx); ok {
		l = l.WithField("namespace", ns)
	}
	l = l.WithField("duration", time.Since(start))
	if err != nil {
		l.WithError(err).Debug("request failed")
		return
	}
	l.Debug("request done")
}

// panicError turns a recovered panic into an Internal status and logs the
// stack: a bug in one handler must fail that call, not kill the daemon and
// every container's management with it.
func panicError(ctx context.Context, method string, v interface{}) error {
	log.G(ctx).WithField("method", method).Errorf("panic in handler: %v\n%s", v, debug.Stack())
	return status.Error(codes.Internal, fmt.Sprintf("%s: internal error: panic: %v", method, v))
}

// unaryLog logs each call at debug, records it in the metrics (count by
// method and code, latency) and maps any error still lacking a gRPC code
// with errdefs.ToGRPC, a safety net for services that forgot to. It is the
// outermost interceptor, so a recovered panic is counted as Internal.
func unaryLog(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	start := time.Now()
	grpcInFlight.With().Inc()
	defer grpcInFlight.With().Dec()
	resp, err := handler(ctx, req)
	err = errdefs.ToGRPC(err)
	logDone(ctx, info.FullMethod, start, err)
	observeCall(info.FullMethod, start, err)
	return resp, err
}

func unaryRecover(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp interface{}, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, panicError(ctx, info.FullMethod, v)
		}
	}()
	return handler(ctx, req)
}

func streamLog(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	grpcInFlight.With().Inc()
	defer grpcInFlight.With().Dec()
	err := errdefs.ToGRPC(handler(srv, ss))
	logDone(ss.Context(), info.FullMethod, start, err)
	observeCall(info.FullMethod, start, err)
	return err
}

func streamRecover(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicError(ss.Context(), info.FullMethod, v)
		}
	}()
	return handler(srv, ss)
}

// streamStopper ends streams when the server stops: GracefulStop waits for
// every call, and a stream such as an events subscription never ends by
// itself, so Stop cancels the streams' contexts after a short grace.
func streamStopper(stopping context.Context) grpc.StreamServerInterceptor {
	return func(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		unregister := context.AfterFunc(stopping, cancel)
		defer unregister()
		return handler(srv, &stoppableStream{ServerStream: ss, ctx: ctx})
	}
}

type stoppableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stoppableStream) Context() context.Context { return s.ctx }

// ttrpcLog and ttrpcRecover do for the ttrpc server what the gRPC ones do.
func ttrpcLog(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (interface{}, error) {
	start := time.Now()
	resp, err := method(ctx, unmarshal)
	err = errdefs.ToGRPC(err)
	logDone(ctx, info.FullMethod, start, err)
	ttrpcHandled.With(info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

func ttrpcRecover(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (resp interface{}, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, panicError(ctx, info.FullMethod, v)
		}
	}()
	return method(ctx, unmarshal)
}
