package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// rawEntry returns the blocks of one USTAR entry with the given type flag,
// which tar.Writer refuses to write itself (PAX 'x' headers).
func rawEntry(t testing.TB, typ byte, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Flush()
	b := buf.Bytes()
	b[156] = typ
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b[:512] {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func paxRecords(kv ...string) []byte {
	var out []byte
	for i := 0; i < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec)
		for {
			s := fmt.Sprintf("%d%s", n, rec)
			if len(s) == n {
				out = append(out, s...)
				break
			}
			n = len(s)
		}
	}
	return out
}

// sparseTar is a PAX 1.0 sparse file of the given logical size whose data
// regions are the given offset/data pairs (in order).
func sparseTar(t testing.TB, name string, size int64, regions ...any) []byte {
	mp := fmt.Sprintf("%d\n", len(regions)/2)
	var data []byte
	for i := 0; i < len(regions); i += 2 {
		d := regions[i+1].(string)
		mp += fmt.Sprintf("%d\n%d\n", regions[i].(int64), len(d))
		data = append(data, d...)
	}
	block := append([]byte(mp), make([]byte, 512-len(mp)%512)...)
	var out []byte
	out = append(out, rawEntry(t, 'x', "PaxHeaders/"+name, paxRecords(
		"GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", name,
		"GNU.sparse.realsize", fmt.Sprint(size)))...)
	out = append(out, rawEntry(t, '0', "GNUSparseFile.0/"+name, append(block, data...))...)
	return append(out, make([]byte, 1024)...)
}

func TestApplySparse(t *testing.T) {
	s := newSandbox(t)
	const hole = 8 << 20
	layer := sparseTar(t, "f", hole+5+(4<<20), int64(0), "hello", int64(hole), "world")
	if err := apply(t, s.root, layer); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.root, "f")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != hole+5+(4<<20) || string(b[:5]) != "hello" || string(b[hole:hole+5]) != "world" ||
		!bytes.Equal(b[5:hole], make([]byte, hole-5)) || !bytes.Equal(b[hole+5:], make([]byte, 4<<20)) {
		t.Fatal("sparse file content wrong")
	}
	if st := lstat(t, p); st.Blocks*512 > 4<<20 {
		t.Errorf("sparse file takes %d bytes on disk: holes were written", st.Blocks*512)
	}
	s.check(t)
}

func TestApplySparseBomb(t *testing.T) {
	s := newSandbox(t)
	// A few hundred bytes claiming an exabyte: refused before writing,
	// by default and under a stream limit it would otherwise pass.
	layer := sparseTar(t, "f", 1<<60)
	for _, opts := range [][]ApplyOpt{nil, {WithMaxSize(1 << 20)}} {
		_, err := Apply(context.Background(), s.root, bytes.NewReader(layer), opts...)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `entry "f": sparse files expand`) {
			t.Fatalf("err = %v", err)
		}
	}
	// Many sparse files add up.
	var many []byte
	for i := range 3 {
		l := sparseTar(t, fmt.Sprint("f", i), 400<<10)
		many = append(many, l[:len(l)-1024]...) // drop the end-of-archive marker
	}
	many = append(many, make([]byte, 1024)...)
	_, err := Apply(context.Background(), s.root, bytes.NewReader(many), WithMaxSize(1<<20))
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `entry "f2"`) {
		t.Fatalf("err = %v", err)
	}
	s.check(t)
}
