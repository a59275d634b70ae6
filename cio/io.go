// Package cio is the client side of a task's standard IO. The client picks
// where the process's stdin, stdout and stderr go — FIFOs it copies to and
// from its own streams, a log file, a logging binary, or nowhere — and sends
// the daemon the resulting Config: paths or URIs the shim opens.
package cio

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Config is what the daemon is told about a process's IO. Each stream is a
// FIFO path, a "file://" or "binary://" URI, or "" for none.
type Config struct {
	Terminal bool
	Stdin    string
	Stdout   string
	Stderr   string
}

// IO is a process's IO as seen by the client.
type IO interface {
	// Config is what to send the daemon when creating the process.
	Config() Config
	// Cancel stops waiting for the shim to open FIFOs it has not opened
	// yet, so Wait can return after a failed create.
	Cancel()
	// Wait blocks until stdout and stderr have been copied to the end.
	Wait()
	// Close releases the client's ends of the streams and removes any
	// FIFOs it created.
	Close() error
}

// Creator makes the IO for a new process with the given id.
type Creator func(id string) (IO, error)

// Attach re-connects to the FIFOs of a process that already exists, given
// the paths the daemon reports for it.
type Attach func(*FIFOSet) (IO, error)

// NullIO is a Creator for a process with no IO at all.
func NullIO(_ string) (IO, error) {
	return &staticIO{}, nil
}

// staticIO is IO with nothing to copy: null IO and log URIs, where the shim
// does all the work.
type staticIO struct{ config Config }

func (s *staticIO) Config() Config { return s.config }
func (s *staticIO) Cancel()        {}
func (s *staticIO) Wait()          {}
func (s *staticIO) Close() error   { return nil }

// pipeIO is IO backed by FIFOs and copy goroutines.
type pipeIO struct {
	config Config
	wg     sync.WaitGroup // stdout and stderr copiers
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
	closers   []io.Closer
	set       *FIFOSet // removed on Close when we created it

	// held, when not nil, keeps the output copiers waiting until the
	// daemon has created the process (Release): until then the only
	// writer is runc, whose error on a failed create would otherwise
	// print before, and again in, the create's own error (the shim gives
	// runc the process's stdio). The pipe keeps anything written
	// meanwhile; Cancel or Close before Release drops it.
	held        chan struct{}
	releaseOnce sync.Once
}

// Release lets a held IO's output through; the process now exists.
func (p *pipeIO) Release() {
	if p.held != nil {
		p.releaseOnce.Do(func() { close(p.held) })
	}
}

// Release lets the output of an IO made by a Creator through once the
// daemon has created its process (task create, or an exec's start); until
// then it is held (see pipeIO.held). Other IOs are not held.
func Release(i IO) {
	if r, ok := i.(interface{ Release() }); ok {
		r.Release()
	}
}

func (p *pipeIO) Config() Config { return p.config }

func (p *pipeIO) Cancel() {
	if p.cancel != nil {
		p.cancel()
	}
}

func (p *pipeIO) Wait() { p.wg.Wait() }

func (p *pipeIO) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		for _, c := range p.closers {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if p.cancel != nil {
			p.cancel()
		}
		if p.set != nil {
			if err := p.set.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
