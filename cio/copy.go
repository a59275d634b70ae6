package cio

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/containerd/fifo"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyIO opens the client's ends of the FIFOs in set and starts copying.
//
// Every FIFO is opened O_NONBLOCK so this returns at once: the open(2)
// itself completes in the background when the shim opens its end, and
// reads/writes wait for that. That ordering matters because the shim only
// opens its ends after the daemon has been told about them, which happens
// after this returns. Cancel (or Close) abandons opens still pending.
//
// With hold, output is not copied until Release: see pipeIO.held.
func copyIO(set *FIFOSet, s *Streams, hold bool) (_ *pipeIO, retErr error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeIO{config: set.Config, cancel: cancel}
	if hold {
		p.held = make(chan struct{})
	}
	defer func() {
		if retErr != nil {
			for _, c := range p.closers {
				c.Close()
			}
			cancel()
		}
	}()

	open := func(path string, flag int) (io.ReadWriteCloser, error) {
		f, err := fifo.OpenFifo(ctx, path, flag|syscall.O_CREAT|syscall.O_NONBLOCK, 0o700)
		if err != nil {
			return nil, fmt.Errorf("open fifo %s: %w", path, err)
		}
		p.closers = append(p.closers, f)
		return f, nil
	}

	if set.Stdin != "" {
		w, err := open(set.Stdin, syscall.O_WRONLY)
		if err != nil {
			return nil, err
		}
		// Not in the WaitGroup: stdin (a terminal, say) may never end,
		// and Wait is about the process's output.
		go func() {
			buf := bufPool.Get().(*[]byte)
			defer bufPool.Put(buf)
			io.CopyBuffer(w, s.Stdin, *buf)
			// An empty write waits until the shim has opened its end
			// (or we are closed): closing before that would leave the
			// shim's open waiting for a writer instead of seeing EOF.
			w.Write(nil)
			// Closing our end is how EOF reaches the process.
			w.Close()
		}()
	}

	for _, out := range []struct {
		path string
		dst  io.Writer
	}{{set.Stdout, s.Stdout}, {set.Stderr, s.Stderr}} {
		if out.path == "" {
			continue
		}
		r, err := open(out.path, syscall.O_RDONLY)
		if err != nil {
			return nil, err
		}
		p.wg.Add(1)
		go func(dst io.Writer) {
			defer p.wg.Done()
			if p.held != nil {
				select {
				case <-p.held:
				case <-ctx.Done():
					// Never created: what runc wrote there while
					// failing is in the create's error already.
					r.Close()
					return
				}
			}
			buf := bufPool.Get().(*[]byte)
			defer bufPool.Put(buf)
			io.CopyBuffer(dst, r, *buf)
			r.Close()
		}(out.dst)
	}
	return p, nil
}
