package compression

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []byte
		want   Compression
	}{
		{"empty", nil, Uncompressed},
		{"short gzip", []byte{0x1f, 0x8b}, Uncompressed},
		{"gzip", []byte{0x1f, 0x8b, 0x08, 0x00}, Gzip},
		{"gzip other method", []byte{0x1f, 0x8b, 0x07}, Uncompressed},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00}, Zstd},
		{"tar", append([]byte("etc/passwd"), make([]byte, 500)...), Uncompressed},
	} {
		if got := DetectCompression(tc.header); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.Read(data[:1<<20]) // part incompressible, part zeros
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := CompressStream(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := DetectCompression(buf.Bytes()); got != c && !(c == Uncompressed && got == Uncompressed) {
				t.Fatalf("detected %v", got)
			}
			r, err := DecompressStream(&buf)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("round trip changed %d bytes into %d", len(data), len(out))
			}
		})
	}
}

func TestDecompressShortAndEmpty(t *testing.T) {
	for _, in := range [][]byte{nil, {0x1f}, {'a', 'b'}} {
		r, err := DecompressStream(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%x: %v", in, err)
		}
		out, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%x: got %x, %v", in, out, err)
		}
	}
}

func TestCorruptStreamsFail(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd} {
		var buf bytes.Buffer
		w, _ := CompressStream(&buf, c)
		w.Write(bytes.Repeat([]byte("layer"), 1000))
		w.Close()
		b := buf.Bytes()
		b = b[:len(b)-8] // cut the trailer
		r, err := DecompressStream(bytes.NewReader(b))
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if err == nil {
			t.Errorf("%v: truncated stream read without error", c)
		}
	}
}

func TestUnknownCompression(t *testing.T) {
	if _, err := CompressStream(io.Discard, Compression(42)); err == nil {
		t.Fatal("compression 42 accepted")
	}
}

// FuzzDetect feeds arbitrary bytes to detection and decompression: never a
// panic, and decompression of garbage stops (bounded output) with or
// without an error.
func FuzzDetect(f *testing.F) {
	for _, c := range []Compression{Gzip, Zstd} {
		var buf bytes.Buffer
		w, _ := CompressStream(&buf, c)
		w.Write([]byte("hello layer"))
		w.Close()
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := DetectCompression(b)
		r, err := DecompressStream(bytes.NewReader(b))
		if err != nil {
			if c == Uncompressed {
				t.Fatalf("uncompressed input failed: %v", err)
			}
			return
		}
		defer r.Close()
		io.Copy(io.Discard, io.LimitReader(r, 64<<20))
	})
}
