package v2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	if err := openToUserNamespaceRoot(path, spec); err != nil {
		b.Delete()
		return nil, err
	}
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

// openToUserNamespaceRoot lets the root of a container in a new user
// namespace through the bundle folder to its rootfs, as containerd does:
// runc mounts the rootfs from inside the namespace, as a host id that
// mode 0700 keeps out. The folder's group becomes the host gid of the
// container's gid 0, with search permission only (0710).
func openToUserNamespaceRoot(path string, spec []byte) error {
	// Most specs have no mappings; they are not parsed.
	if !bytes.Contains(spec, []byte(`"gidMappings"`)) {
		return nil
	}
	var s specs.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		return fmt.Errorf("read spec: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if s.Linux == nil || !slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.UserNamespace && ns.Path == ""
	}) {
		return nil
	}
	for _, m := range s.Linux.GIDMappings {
		if m.ContainerID == 0 && m.Size > 0 {
			if err := os.Chown(path, -1, int(m.HostID)); err != nil {
				return fmt.Errorf("bundle group for the user namespace: %w", err)
			}
			return os.Chmod(path, 0o710)
		}
	}
	return nil
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
