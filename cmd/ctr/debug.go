package main

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/berth-containers/berth/client"
)

// started is when ctr began, for --debug's request timeline.
var started = time.Now()

// debugDialOpts makes --debug log every request ctr sends: when it started
// and ended (ms since ctr began) and its code, so a slow command shows
// where its time went, between the daemon's requests and ctr's own work.
func debugDialOpts() client.Opt {
	since := func(t time.Time) float64 { return float64(t.Sub(started).Microseconds()) / 1000 }
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		t := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		logrus.WithFields(logrus.Fields{"start_ms": since(t), "end_ms": since(time.Now()), "error": err}).Debug(method)
		return err
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		t := time.Now()
		s, err := streamer(ctx, desc, cc, method, opts...)
		logrus.WithFields(logrus.Fields{"start_ms": since(t), "end_ms": since(time.Now()), "error": err}).Debug(method + " (stream opened)")
		return s, err
	}
	return client.WithDialOpts(grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream))
}
