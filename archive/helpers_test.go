package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry is one tar entry a test writes.
type entry struct {
	hdr  tar.Header
	data string
}

var testTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func dirE(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}}
}

func fileE(name, data string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: testTime}, data: data}
}

func symE(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func linkE(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}}
}

func whE(name string) entry { return fileE(name, "") }

// mkTar builds a tar stream from entries without validating them, so
// tests can write whatever a hostile layer would.
func mkTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.Format == tar.FormatUnknown && (len(hdr.Name) > 100 || len(hdr.Linkname) > 100 || len(hdr.PAXRecords) > 0 || hdr.ModTime.Nanosecond() != 0) {
			hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("write header %q: %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatalf("write data %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nodeState is what a tree snapshot records of one node.
type nodeState struct {
	mode     fs.FileMode
	uid, gid uint32
	size     int64
	mtime    int64
	ino      uint64
	nlink    uint64
	content  string // sha256 of a regular file, target of a symlink
}

// snapshotTree records every node under dir (dir itself included).
func snapshotTree(t testing.TB, dir string) map[string]nodeState {
	t.Helper()
	out := map[string]nodeState{}
	err := filepath.Walk(dir, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		ns := nodeState{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, size: fi.Size(),
			mtime: fi.ModTime().UnixNano(), ino: st.Ino, nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			ns.content = hex.EncodeToString(sum[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			ns.content, _ = os.Readlink(p)
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = ns
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

// sandbox is a temp directory holding the apply target "root" and a
// sentinel tree beside it that no layer may touch.
type sandbox struct {
	base, root, sentinel string
	before               map[string]nodeState
	passwd               nodeState
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	base := t.TempDir()
	s := &sandbox{base: base, root: filepath.Join(base, "root"), sentinel: filepath.Join(base, "sentinel")}
	for _, d := range []string{s.root, s.sentinel, filepath.Join(s.sentinel, "dir")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range map[string]string{"file": "sentinel", "x": "x", "dir/inner": "inner"} {
		if err := os.WriteFile(filepath.Join(s.sentinel, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("file", filepath.Join(s.sentinel, "link")); err != nil {
		t.Fatal(err)
	}
	jail(t, base)
	s.before = snapshotTree(t, base)
	s.passwd = statNode(t, "/etc/passwd")
	return s
}

// sub makes another target directory inside the root, for tests that need
// several.
func (s *sandbox) sub(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(s.root, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func statNode(t testing.TB, p string) nodeState {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return nodeState{ino: st.Ino, nlink: uint64(st.Nlink), size: st.Size, mtime: st.Mtim.Nano()}
}

// check fails the test if anything outside root changed.
func (s *sandbox) check(t testing.TB) {
	t.Helper()
	after := snapshotTree(t, s.base)
	var diffs []string
	for p, b := range s.before {
		if p == "root" {
			continue // the target's own times change as layers land
		}
		a, ok := after[p]
		if !ok {
			diffs = append(diffs, "removed "+p)
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed %s: %+v -> %+v", p, b, a))
		}
	}
	for p := range after {
		if p == "root" || strings.HasPrefix(p, "root/") {
			continue
		}
		if _, ok := s.before[p]; !ok {
			diffs = append(diffs, "created "+p)
		}
	}
	if got := statNode(t, "/etc/passwd"); got != s.passwd {
		diffs = append(diffs, fmt.Sprintf("/etc/passwd changed: %+v -> %+v", s.passwd, got))
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("apply touched files outside the target:\n%s", strings.Join(diffs, "\n"))
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
