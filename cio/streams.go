package cio

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// Streams are the client's ends of a process's IO.
type Streams struct {
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	Terminal bool
	FIFODir  string
}

// Opt configures Streams.
type Opt func(*Streams)

// WithStdio connects the process to this program's stdin, stdout, stderr.
func WithStdio(s *Streams) {
	WithStreams(os.Stdin, os.Stdout, os.Stderr)(s)
}

// WithStreams sets the streams; a nil one is not connected at all.
func WithStreams(stdin io.Reader, stdout, stderr io.Writer) Opt {
	return func(s *Streams) {
		s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	}
}

// WithTerminal gives the process a terminal; its output all arrives on
// stdout and stderr is not used.
func WithTerminal(s *Streams) {
	s.Terminal = true
}

// WithFIFODir makes the FIFOs under dir instead of DefaultFIFODir.
func WithFIFODir(dir string) Opt {
	return func(s *Streams) {
		s.FIFODir = dir
	}
}

func newStreams(opts []Opt) *Streams {
	s := &Streams{FIFODir: DefaultFIFODir}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NewCreator returns a Creator that makes a FIFO set for each process and
// copies between it and the streams. Streams left nil get no FIFO. The
// output is held until Release (the client calls it once the daemon has
// created the process).
func NewCreator(opts ...Opt) Creator {
	streams := newStreams(opts)
	return func(id string) (IO, error) {
		set, err := NewFIFOSetInDir(streams.FIFODir, id, streams.Terminal)
		if err != nil {
			return nil, err
		}
		dropUnused(set, streams)
		p, err := copyIO(set, streams, true)
		if err != nil {
			set.Close()
			return nil, err
		}
		p.set = set
		return p, nil
	}
}

// NewAttach returns an Attach that opens an existing process's FIFOs and
// copies between them and the streams. Closing the IO leaves the FIFOs in
// place: they belong to whoever created the process.
func NewAttach(opts ...Opt) Attach {
	streams := newStreams(opts)
	return func(set *FIFOSet) (IO, error) {
		if set == nil {
			return nil, fmt.Errorf("attach: no fifos given")
		}
		cfg := set.Config
		attached := NewFIFOSet(cfg, nil)
		// The process's terminal setting decides whether stderr exists.
		s := *streams
		s.Terminal = cfg.Terminal
		dropUnused(attached, &s)
		return copyIO(attached, &s, false)
	}
}

// dropUnused clears the paths of streams the client does not connect, so
// neither side opens a FIFO nobody reads or writes.
func dropUnused(set *FIFOSet, s *Streams) {
	if s.Stdin == nil {
		set.Stdin = ""
	}
	if s.Stdout == nil {
		set.Stdout = ""
	}
	if s.Stderr == nil || set.Terminal {
		set.Stderr = ""
	}
}

// StdinCloser wraps a stdin reader so onEOF runs once when it is drained;
// clients use it to ask the daemon to close the process's stdin (CloseIO),
// since the shim may hold its own end of the FIFO open.
func StdinCloser(r io.Reader, onEOF func()) io.Reader {
	return &stdinCloser{r: r, onEOF: onEOF}
}

type stdinCloser struct {
	r     io.Reader
	once  sync.Once
	onEOF func()
}

func (s *stdinCloser) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err == io.EOF && s.onEOF != nil {
		s.once.Do(s.onEOF)
	}
	return n, err
}
