package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
)

// benchLayer is a layer shaped like a distribution base image: many small
// files in a few hundred directories, some symlinks, and a few large files.
func benchLayer(b *testing.B) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	small := bytes.Repeat([]byte("x"), 2048)
	big := bytes.Repeat([]byte("y"), 8<<20)
	for d := range 200 {
		dir := fmt.Sprintf("usr/share/pkg%03d/", d)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755})
		for f := range 25 {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sfile%02d", dir, f), Mode: 0o644, Size: int64(len(small))})
			tw.Write(small)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: dir + "link", Linkname: "file00"})
	}
	for f := range 4 {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/big%d", f), Mode: 0o755, Size: int64(len(big))})
		tw.Write(big)
	}
	tw.Close()
	return buf.Bytes()
}

func BenchmarkApply(b *testing.B) {
	layer := benchLayer(b)
	b.SetBytes(int64(len(layer)))
	base := b.TempDir()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		root := fmt.Sprintf("%s/%d", base, i)
		os.Mkdir(root, 0o755)
		b.StartTimer()
		if _, err := Apply(ctx, root, bytes.NewReader(layer)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(root)
		b.StartTimer()
	}
}

func BenchmarkTar(b *testing.B) {
	layer := benchLayer(b)
	root := b.TempDir()
	if _, err := Apply(context.Background(), root, bytes.NewReader(layer)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for range b.N {
		var out countWriter
		if err := Tar(context.Background(), &out, root); err != nil {
			b.Fatal(err)
		}
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
