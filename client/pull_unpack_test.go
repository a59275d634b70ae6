package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestBlobWaiter: a wait returns once its blob is fetched, with the
// fetch's error once it failed, with nil once it ended (the store then
// says whether the blob is there), or when ctx ends.
func TestBlobWaiter(t *testing.T) {
	d := digest.FromString("layer")
	boom := errors.New("fetch failed")
	for _, tc := range []struct {
		name  string
		event func(w *blobWaiter, cancel func())
		want  error
	}{
		{"fetched", func(w *blobWaiter, _ func()) { w.fetched(d) }, nil},
		{"other blob then fetch ends", func(w *blobWaiter, _ func()) { w.fetched(digest.FromString("x")); w.release(nil) }, nil},
		{"fetch failed", func(w *blobWaiter, _ func()) { w.release(boom) }, boom},
		{"cancelled", func(_ *blobWaiter, cancel func()) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newBlobWaiter()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan error, 1)
			go func() { got <- w.wait(ctx, d) }()
			select {
			case err := <-got:
				t.Fatalf("wait returned %v before anything happened", err)
			case <-time.After(20 * time.Millisecond):
			}
			tc.event(w, cancel)
			select {
			case err := <-got:
				if !errors.Is(err, tc.want) && err != tc.want {
					t.Fatalf("wait: %v, want %v", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("wait did not return")
			}
		})
	}
	// Fetched before anyone waits, and fetched twice: no block, no panic.
	w := newBlobWaiter()
	w.fetched(d)
	w.fetched(d)
	w.release(boom)
	if err := w.wait(context.Background(), d); err != nil {
		t.Fatalf("wait for a fetched blob after a failure elsewhere: %v", err)
	}
}
