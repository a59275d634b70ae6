package cio

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultFIFODir is where Creators make FIFOs unless WithFIFODir says
// otherwise; it sits under the daemon's state directory.
const DefaultFIFODir = "/run/berth/fifo"

// FIFOSet is a set of FIFO paths for one process, plus how to remove them.
type FIFOSet struct {
	Config
	close func() error
}

// NewFIFOSet wraps paths the caller already has; close, if not nil, is
// called by Close (e.g. to remove them).
func NewFIFOSet(config Config, close func() error) *FIFOSet {
	return &FIFOSet{Config: config, close: close}
}

// NewFIFOSetInDir names FIFOs for process id in a fresh private directory
// under root (created 0700 if missing): <root>/<random>/<id>-stdin,
// -stdout and, without a terminal, -stderr. The random directory keeps two
// clients attaching to the same process apart, and lets Close remove
// everything at once. The FIFOs themselves are made when they are opened.
func NewFIFOSetInDir(root, id string, terminal bool) (*FIFOSet, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return nil, fmt.Errorf("fifo set: id %q must be a plain file name", id)
	}
	if root == "" {
		root = DefaultFIFODir
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create fifo dir: %w", err)
	}
	dir, err := os.MkdirTemp(root, "")
	if err != nil {
		return nil, fmt.Errorf("create fifo dir: %w", err)
	}
	cfg := Config{
		Terminal: terminal,
		Stdin:    filepath.Join(dir, id+"-stdin"),
		Stdout:   filepath.Join(dir, id+"-stdout"),
	}
	if !terminal {
		cfg.Stderr = filepath.Join(dir, id+"-stderr")
	}
	return NewFIFOSet(cfg, func() error { return os.RemoveAll(dir) }), nil
}

// Close removes the FIFOs if this set knows how.
func (f *FIFOSet) Close() error {
	if f == nil || f.close == nil {
		return nil
	}
	return f.close()
}
