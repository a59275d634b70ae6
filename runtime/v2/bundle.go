package v2

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
)

// Bundle is a task's folder under the runtime's state dir:
// <state>/<namespace>/<id> holding config.json, rootfs/ (mounted by the
// shim), the shim's "address" file, its "log" FIFO and "shim-binary-path"
// (the binary to call for cleanup after a restart), as containerd lays it
// out so either side's shim can work in it.
type Bundle struct {
	ID        string
	Namespace string
	Path      string
}

// bundlePath returns the bundle folder for ns/id after validating both, so
// neither can name a path outside state.
func bundlePath(state, ns, id string) (string, error) {
	if err := identifiers.Validate(ns); err != nil {
		return "", fmt.Errorf("namespace: %w", err)
	}
	if err := identifiers.Validate(id); err != nil {
		return "", fmt.Errorf("task id: %w", err)
	}
	return filepath.Join(state, ns, id), nil
}

// newBundle creates the bundle folder and writes the spec. spec is the
// runtime spec as JSON (the value of containerd's spec Any).
func newBundle(ctx context.Context, state, ns, id string, spec []byte) (*Bundle, error) {
	path, err := bundlePath(state, ns, id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("create bundle parent: %w", err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		if os.IsExist(err) {
			return nil, fmt.Errorf("bundle for task %q in namespace %q: %w", id, ns, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	b := &Bundle{ID: id, Namespace: ns, Path: path}
	if err := os.Mkdir(filepath.Join(path, "rootfs"), 0o711); err != nil {
		b.Delete()
		return nil, fmt.Errorf("create rootfs dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(path, "config.json"), spec, 0o600); err != nil {
		b.Delete()
		return nil, fmt.Errorf("write config.json: %w", err)
	}
	return b, nil
}

// loadBundle returns the existing bundle for ns/id.
func loadBundle(state, ns, id string) (*Bundle, error) {
	path, err := bundlePath(state, ns, id)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("bundle for task %q: %w", id, errdefs.ErrNotFound)
	}
	return &Bundle{ID: id, Namespace: ns, Path: path}, nil
}

// Delete removes the bundle. The rootfs must already be unmounted (the
// shim does it); a mounted rootfs makes RemoveAll fail rather than delete
// the container's files, which is the safe failure.
func (b *Bundle) Delete() error {
	rootfs := filepath.Join(b.Path, "rootfs")
	if err := os.Remove(rootfs); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove rootfs dir of bundle %s (still mounted?): %w", b.Path, err)
	}
	if err := os.RemoveAll(b.Path); err != nil {
		return fmt.Errorf("remove bundle %s: %w", b.Path, err)
	}
	return nil
}
