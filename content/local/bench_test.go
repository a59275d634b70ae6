package local

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-containers/berth/content"
	"github.com/opencontainers/go-digest"
)

// BenchmarkWriteCommit writes and commits distinct 1 MiB blobs.
func BenchmarkWriteCommit(b *testing.B) {
	s, err := NewStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		copy(data, fmt.Sprint(i)) // distinct blobs, so none already exists
		w, err := s.Writer(ctx, content.WithRef(fmt.Sprint("bench-", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(ctx, int64(len(data)), digest.FromBytes(data)); err != nil {
			b.Fatal(err)
		}
	}
}
