package process

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"

	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// processIO is one process's stdio plumbing. The container never holds the
// client's FIFOs: it gets pipes (or a pty), and the shim copies between
// them and the FIFOs, so a client that goes away cannot wedge or kill the
// container with EPIPE, and the output survives a client reconnect.
type processIO struct {
	stdio Stdio
	// runc holds the container's ends, handed to runc and closed as soon as
	// runc has passed them on.
	runc runc.IO

	// stdinR reads the client's stdin FIFO. stdinW is a writer the shim
	// holds on the same FIFO so stdinR does not see EOF when the client
	// closes its end; CloseStdin closes it, and stdinR then reaches EOF
	// after the last byte the client wrote.
	stdinR, stdinW *os.File

	// termOut is where a terminal's output goes: the stdout target or the
	// logging binary's stdout pipe.
	termOut *sharedWriter

	console console.Console
	logger  *binaryLogger
	targets []*sharedWriter
	readers []*os.File // output pipes' shim ends, closed by their copies

	// outputs counts the output copies, which end when the process and
	// everything holding its stdout/stderr have exited. The stdin copy is
	// not counted: it ends only when the client or CloseStdin says so.
	outputs   sync.WaitGroup
	closeOnce sync.Once
}

// newIO opens stdio's destinations and starts copying. With a terminal the
// output copy starts when the pty master arrives (attachConsole).
func newIO(ctx context.Context, id string, stdio Stdio) (_ *processIO, retErr error) {
	p := &processIO{stdio: stdio}
	defer func() {
		if retErr != nil {
			p.closeAfterStart()
			p.Close()
		}
	}()
	if stdio.Stdin != "" {
		if err := p.openStdin(stdio.Stdin); err != nil {
			return nil, err
		}
		if !stdio.Terminal {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("stdin pipe: %w", err)
			}
			p.runc.Stdin = r
			go func() {
				_, _ = io.Copy(w, p.stdinR)
				w.Close()
			}()
		}
	}

	outURI, err := parseURI(stdio.Stdout)
	if err != nil {
		return nil, err
	}
	errURI, err := parseURI(stdio.Stderr)
	if err != nil {
		return nil, err
	}
	if isBinary(outURI) || isBinary(errURI) {
		u := outURI
		if !isBinary(u) {
			u = errURI
		}
		return p, p.startLogger(ctx, id, u)
	}

	if stdio.Terminal {
		if stdio.Stdout != "" {
			t, err := p.target(stdio.Stdout, outURI)
			if err != nil {
				return nil, err
			}
			p.termOut = t
		}
		return p, nil
	}
	if stdio.Stdout != "" {
		t, err := p.target(stdio.Stdout, outURI)
		if err != nil {
			return nil, err
		}
		if p.runc.Stdout, err = p.pipeTo(t); err != nil {
			return nil, fmt.Errorf("stdout pipe: %w", err)
		}
	}
	if stdio.Stderr != "" {
		t, err := p.target(stdio.Stderr, errURI)
		if err != nil {
			return nil, err
		}
		if p.runc.Stderr, err = p.pipeTo(t); err != nil {
			return nil, fmt.Errorf("stderr pipe: %w", err)
		}
	}
	return p, nil
}

// openStdin opens the reader, then the held writer: a non-blocking open
// for writing fails unless a reader exists.
func (p *processIO) openStdin(path string) error {
	r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin fifo: %w", err)
	}
	p.stdinR = r
	w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin fifo for writing: %w", err)
	}
	p.stdinW = w
	return nil
}

// pipeTo returns the write end of a new pipe whose contents are copied to t.
func (p *processIO) pipeTo(t *sharedWriter) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.refs++
	t.mu.Unlock()
	p.readers = append(p.readers, r)
	p.copyOut(t, r, func() {
		r.Close()
		t.release()
	})
	return w, nil
}

// target opens a stdout/stderr destination once per distinct name, so
// stdout and stderr sent to the same FIFO or file share one writer.
func (p *processIO) target(name string, u *url.URL) (*sharedWriter, error) {
	for _, t := range p.targets {
		if t.name == name {
			return t, nil
		}
	}
	w, err := openTarget(u)
	if err != nil {
		return nil, err
	}
	t := &sharedWriter{name: name, w: w}
	p.targets = append(p.targets, t)
	return t, nil
}

// copyOut copies one output stream.
func (p *processIO) copyOut(dst io.Writer, src io.Reader, done func()) {
	p.outputs.Add(1)
	go func() {
		defer p.outputs.Done()
		_, _ = io.Copy(dst, src)
		done()
	}()
}

// closeAfterStart closes the container's ends once runc has handed them to
// the process; otherwise the shim's copies would never see EOF.
func (p *processIO) closeAfterStart() {
	for _, f := range []*os.File{p.runc.Stdin, p.runc.Stdout, p.runc.Stderr} {
		if f != nil {
			f.Close()
		}
	}
	p.runc = runc.IO{}
}

// runcIO is what to hand to runc: nil for a terminal or null IO, where runc
// gives the process the pty or /dev/null.
func (p *processIO) runcIO() *runc.IO {
	if p == nil || p.stdio.Terminal {
		return nil
	}
	return &p.runc
}

// CloseStdin lets the process read EOF after the client's data.
func (p *processIO) CloseStdin() error {
	if p == nil || p.stdinW == nil {
		return nil
	}
	return p.stdinW.Close()
}

// Close tears everything down: it interrupts copies still running (a
// caller wanting the output drained waits on outputs first), closes the
// FIFOs and files and stops the logging binary.
func (p *processIO) Close() {
	if p == nil {
		return
	}
	p.closeOnce.Do(func() {
		for _, f := range []*os.File{p.stdinW, p.stdinR} {
			if f != nil {
				f.Close()
			}
		}
		if p.console != nil {
			p.console.Close()
		}
		for _, r := range p.readers {
			r.Close()
		}
		for _, t := range p.targets {
			t.Close()
		}
		if p.termOut != nil {
			p.termOut.Close()
		}
		if p.logger != nil {
			p.logger.stop()
		}
	})
}

// sharedWriter is a destination written by one or two copies; the last
// copy to finish closes it, so the client sees EOF when output ends.
type sharedWriter struct {
	name   string
	w      io.WriteCloser
	mu     sync.Mutex
	refs   int
	closed bool
}

func (s *sharedWriter) Write(b []byte) (int, error) { return s.w.Write(b) }

func (s *sharedWriter) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if s.refs <= 0 && !s.closed {
		s.closed = true
		s.w.Close()
	}
}

func (s *sharedWriter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.w.Close()
}
