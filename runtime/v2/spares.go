package v2

import (
	"errors"
	"os"
	"sync"

	"github.com/berth-containers/berth/pkg/log"
	shimcmd "github.com/berth-containers/berth/runtime/v2/shim"
)

// spares keeps one spare shim (see shimcmd.StartSpare) ready for each
// binary of our own shim that tasks use, so a task's create skips a
// process start. The first task of a binary starts the first spare; each
// spare taken starts the next in the background. A burst takes the one
// spare and starts the rest the usual way.
type spares struct {
	address string
	env     []string

	mu       sync.Mutex
	ready    map[string]*spare
	starting map[string]bool
	closed   bool
}

// spare is a ready spare and the binary it was started from: a binary
// replaced since (an upgrade) makes it stale, and it is let go unused.
type spare struct {
	*shimcmd.Spare
	bin os.FileInfo
}

func newSpares(address string, env []string) *spares {
	return &spares{address: address, env: env, ready: map[string]*spare{}, starting: map[string]bool{}}
}

// take returns the spare for bin, or nil, and has the next one started.
func (p *spares) take(bin string) *shimcmd.Spare {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	s := p.ready[bin]
	delete(p.ready, bin)
	if !p.starting[bin] {
		p.starting[bin] = true
		go p.fill(bin)
	}
	if s == nil {
		return nil
	}
	if fi, err := os.Stat(bin); err != nil || !os.SameFile(fi, s.bin) || !fi.ModTime().Equal(s.bin.ModTime()) {
		go s.Discard()
		return nil
	}
	return s.Spare
}

func (p *spares) fill(bin string) {
	fi, serr := os.Stat(bin)
	s, err := shimcmd.StartSpare(bin, p.address, p.env)
	p.mu.Lock()
	p.starting[bin] = false
	if err != nil || serr != nil || p.closed || p.ready[bin] != nil {
		p.mu.Unlock()
		if s != nil {
			s.Discard()
		}
		if err = errors.Join(err, serr); err != nil {
			// Tasks start their shims the usual way meanwhile.
			log.L.WithError(err).WithField("binary", bin).Warn("start spare shim")
		}
		return
	}
	p.ready[bin] = &spare{Spare: s, bin: fi}
	p.mu.Unlock()
}

// close lets the ready spares go (they exit on EOF) and reaps them.
func (p *spares) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = map[string]*spare{}
	p.mu.Unlock()
	for _, s := range ready {
		s.Discard()
	}
}
