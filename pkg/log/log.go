// Package log gives every package a logrus entry from the context, so fields
// added up the call chain (namespace, id, runtime) appear on every line.
package log

import (
	"context"

	"github.com/sirupsen/logrus"
)

type key struct{}

// L is the base entry.
var L = logrus.NewEntry(logrus.StandardLogger())

// WithLogger returns a context carrying entry.
func WithLogger(ctx context.Context, entry *logrus.Entry) context.Context {
	return context.WithValue(ctx, key{}, entry)
}

// G returns the context's entry, or L.
func G(ctx context.Context) *logrus.Entry {
	if e, ok := ctx.Value(key{}).(*logrus.Entry); ok {
		return e
	}
	return L.WithContext(ctx)
}
