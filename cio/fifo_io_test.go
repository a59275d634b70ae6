package cio

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while a copier writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeShim plays the shim's side of cfg: it reads all of stdin and writes
// its outputs, closing each so EOF reaches the client.
type fakeShim struct {
	stdin string
	err   error
	done  chan struct{}
}

func runFakeShim(cfg Config, stdout, stderr string) *fakeShim {
	s := &fakeShim{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		if cfg.Stdin != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := os.OpenFile(cfg.Stdin, os.O_RDONLY, 0)
				if err != nil {
					s.err = err
					return
				}
				defer f.Close()
				b, err := io.ReadAll(f) // returns only at EOF
				s.stdin, s.err = string(b), err
			}()
		}
		write := func(path, data string) {
			defer wg.Done()
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				s.err = err
				return
			}
			defer f.Close()
			_, err = io.WriteString(f, data)
			if err != nil {
				s.err = err
			}
		}
		if cfg.Stdout != "" {
			wg.Add(1)
			go write(cfg.Stdout, stdout)
		}
		if cfg.Stderr != "" {
			wg.Add(1)
			go write(cfg.Stderr, stderr)
		}
		wg.Wait()
	}()
	return s
}

func waitTimeout(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func TestCreatorCopiesAndPropagatesEOF(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, more than a pipe buffer
	for _, tc := range []struct {
		name     string
		terminal bool
		stdin    string
	}{
		{"plain", false, "hello shim\n"},
		{"big stdin", false, big},
		{"empty stdin", false, ""},
		{"terminal", true, "ls\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			opts := []Opt{WithStreams(strings.NewReader(tc.stdin), &stdout, &stderr), WithFIFODir(dir)}
			if tc.terminal {
				opts = append(opts, WithTerminal)
			}
			cio, err := NewCreator(opts...)("task-1")
			if err != nil {
				t.Fatal(err)
			}
			cfg := cio.Config()
			if cfg.Terminal != tc.terminal || !strings.HasPrefix(cfg.Stdin, dir+"/") || !strings.HasSuffix(cfg.Stdin, "/task-1-stdin") ||
				!strings.HasSuffix(cfg.Stdout, "/task-1-stdout") {
				t.Fatalf("config %+v", cfg)
			}
			if tc.terminal != (cfg.Stderr == "") {
				t.Fatalf("terminal %v but stderr %q", tc.terminal, cfg.Stderr)
			}
			fi, err := os.Stat(filepath.Dir(cfg.Stdin))
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("fifo dir: %v %v", fi, err)
			}
			for _, p := range []string{cfg.Stdin, cfg.Stdout} {
				if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
					t.Fatalf("%s is not a fifo: %v", p, err)
				}
			}

			shim := runFakeShim(cfg, "out: "+tc.name, "err: "+tc.name)
			Release(cio) // the daemon created the process
			waitTimeout(t, "shim", func() { <-shim.done })
			if shim.err != nil {
				t.Fatal(shim.err)
			}
			if shim.stdin != tc.stdin {
				t.Fatalf("shim read %d bytes of stdin, want %d", len(shim.stdin), len(tc.stdin))
			}
			waitTimeout(t, "Wait", cio.Wait)
			if stdout.String() != "out: "+tc.name {
				t.Errorf("stdout %q", stdout.String())
			}
			wantErr := "err: " + tc.name
			if tc.terminal {
				wantErr = ""
			}
			if stderr.String() != wantErr {
				t.Errorf("stderr %q, want %q", stderr.String(), wantErr)
			}
			if err := cio.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Dir(cfg.Stdin)); !os.IsNotExist(err) {
				t.Fatalf("fifo dir left behind: %v", err)
			}
			if err := cio.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
		})
	}
}

func TestCreatorSkipsNilStreams(t *testing.T) {
	var stdout syncBuffer
	cio, err := NewCreator(WithStreams(nil, &stdout, nil), WithFIFODir(t.TempDir()))("t")
	if err != nil {
		t.Fatal(err)
	}
	defer cio.Close()
	cfg := cio.Config()
	if cfg.Stdin != "" || cfg.Stderr != "" || cfg.Stdout == "" {
		t.Fatalf("config %+v", cfg)
	}
	shim := runFakeShim(cfg, "only out", "")
	Release(cio)
	waitTimeout(t, "shim", func() { <-shim.done })
	waitTimeout(t, "Wait", cio.Wait)
	if stdout.String() != "only out" {
		t.Fatalf("stdout %q", stdout.String())
	}
}

// TestCreatorHoldsOutputUntilCreated: what is written before the process
// is created (runc's error on a failed create) is shown only if the create
// succeeds (Release), and dropped if it fails (Cancel, Close).
func TestCreatorHoldsOutputUntilCreated(t *testing.T) {
	for _, created := range []bool{true, false} {
		t.Run(fmt.Sprintf("created=%v", created), func(t *testing.T) {
			var stdout, stderr syncBuffer
			cio, err := NewCreator(WithStreams(nil, &stdout, &stderr), WithFIFODir(t.TempDir()))("t")
			if err != nil {
				t.Fatal(err)
			}
			shim := runFakeShim(cio.Config(), "early out", "runc create failed: boom")
			waitTimeout(t, "shim", func() { <-shim.done })
			time.Sleep(20 * time.Millisecond) // a copier that did not wait would have copied by now
			if stdout.String() != "" || stderr.String() != "" {
				t.Fatalf("output before the create answered: %q %q", stdout.String(), stderr.String())
			}
			if created {
				Release(cio)
			} else {
				cio.Cancel()
			}
			waitTimeout(t, "Wait", cio.Wait)
			if err := cio.Close(); err != nil {
				t.Fatal(err)
			}
			want := map[bool][2]string{true: {"early out", "runc create failed: boom"}, false: {"", ""}}[created]
			if stdout.String() != want[0] || stderr.String() != want[1] {
				t.Fatalf("stdout %q stderr %q, want %q", stdout.String(), stderr.String(), want)
			}
		})
	}
}

// TestCancelWithoutShim is the failed-create path: nobody ever opens the
// other ends, and Cancel plus Close must still let Wait return.
func TestCancelWithoutShim(t *testing.T) {
	stdin, stdinW := io.Pipe()
	defer stdinW.Close()
	cio, err := NewCreator(WithStreams(stdin, io.Discard, io.Discard), WithFIFODir(t.TempDir()))("t")
	if err != nil {
		t.Fatal(err)
	}
	cio.Cancel()
	waitTimeout(t, "Wait after Cancel", cio.Wait)
	waitTimeout(t, "Close", func() {
		if err := cio.Close(); err != nil {
			t.Error(err)
		}
	})
}

func TestAttach(t *testing.T) {
	set, err := NewFIFOSetInDir(t.TempDir(), "proc", false)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	// What the daemon reports for a running process: plain paths, no
	// closer of ours.
	reported := NewFIFOSet(set.Config, nil)

	var stdout, stderr syncBuffer
	io1, err := NewAttach(WithStreams(strings.NewReader("typed"), &stdout, &stderr))(reported)
	if err != nil {
		t.Fatal(err)
	}
	if io1.Config() != set.Config {
		t.Fatalf("config %+v, want %+v", io1.Config(), set.Config)
	}
	shim := runFakeShim(set.Config, "o", "e")
	waitTimeout(t, "shim", func() { <-shim.done })
	waitTimeout(t, "Wait", io1.Wait)
	if shim.err != nil || shim.stdin != "typed" || stdout.String() != "o" || stderr.String() != "e" {
		t.Fatalf("shim %q %v, stdout %q stderr %q", shim.stdin, shim.err, stdout.String(), stderr.String())
	}
	if err := io1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(set.Stdout); err != nil {
		t.Fatalf("attach Close removed the process's fifos: %v", err)
	}

	// Attaching without stdin leaves the stdin FIFO alone.
	io2, err := NewAttach(WithStreams(nil, io.Discard, io.Discard))(reported)
	if err != nil {
		t.Fatal(err)
	}
	if io2.Config().Stdin != "" {
		t.Fatalf("config %+v", io2.Config())
	}
	io2.Cancel()
	io2.Close()

	if _, err := NewAttach()(nil); err == nil {
		t.Fatal("attach to nil set succeeded")
	}
}

func TestFIFOSetIDValidation(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := NewFIFOSetInDir(t.TempDir(), id, false); err == nil {
			t.Errorf("id %q accepted", id)
		}
	}
}

func TestStdinCloser(t *testing.T) {
	calls := 0
	r := StdinCloser(strings.NewReader("abc"), func() { calls++ })
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "abc" {
		t.Fatal(b, err)
	}
	r.Read(make([]byte, 1))
	if calls != 1 {
		t.Fatalf("onEOF ran %d times", calls)
	}
}
