package archive

import (
	"bytes"
	"context"
	"testing"
)

// FuzzApply applies two arbitrary layers onto one root: whatever the bytes,
// Apply must not panic and must not create, change or remove anything
// outside the root (the sandbox's sentinel tree and /etc/passwd). Seeds are
// the hostile corpus. A size limit keeps each run short: without it, a
// mutated sparse header spends seconds producing gigabytes of zeros.
func FuzzApply(f *testing.F) {
	seedSentinel := f.TempDir() + "/sentinel"
	for _, tc := range hostileCases {
		layers := tc.layers(f, seedSentinel)
		l1, l2 := layers[0], []byte(nil)
		if len(layers) > 1 {
			l2 = layers[1]
		}
		f.Add(l1, l2, false)
		f.Add(l1, l2, true)
	}
	f.Fuzz(func(t *testing.T, l1, l2 []byte, overlay bool) {
		s := newSandbox(t)
		opts := []ApplyOpt{WithMaxSize(16 << 20)}
		if overlay {
			opts = append(opts, WithOverlayWhiteouts())
		}
		ctx := context.Background()
		Apply(ctx, s.root, bytes.NewReader(l1), opts...)
		Apply(ctx, s.root, bytes.NewReader(l2), opts...)
		s.check(t)
	})
}
