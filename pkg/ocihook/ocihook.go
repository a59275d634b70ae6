// Package ocihook is `berthd oci-hook`: a runtime hook that fills the
// container's details into a command's arguments and runs it, so a hook
// binary that wants them as flags (nvidia-container-cli's --pid and rootfs,
// as `ctr run --gpus` sets it up) can be used as an OCI hook. The runtime
// hands a hook the container's state on stdin; the placeholders are
// containerd's: {{pid}}, {{id}}, {{bundle}}, {{rootfs}} and
// {{annotation "KEY"}}.
package ocihook

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// maxState bounds what is read from stdin: a state is a few hundred bytes
// plus the annotations.
const maxState = 1 << 20

// Details are what the placeholders expand to.
type Details struct {
	State  specs.State
	Rootfs string
}

// Load reads the state from r and the root file system's path from the
// bundle's config.json (relative paths are the bundle's).
func Load(r io.Reader) (Details, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxState+1))
	if err != nil {
		return Details{}, fmt.Errorf("oci-hook: read state: %w", err)
	}
	if len(b) > maxState {
		return Details{}, fmt.Errorf("oci-hook: state larger than %d bytes: %w", maxState, errdefs.ErrInvalidArgument)
	}
	var d Details
	if err := json.Unmarshal(b, &d.State); err != nil {
		return Details{}, fmt.Errorf("oci-hook: decode state: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if d.State.Bundle == "" {
		return Details{}, fmt.Errorf("oci-hook: the state names no bundle: %w", errdefs.ErrInvalidArgument)
	}
	cb, err := os.ReadFile(filepath.Join(d.State.Bundle, "config.json"))
	if err != nil {
		return Details{}, fmt.Errorf("oci-hook: read bundle config: %w", err)
	}
	var spec struct {
		Root *specs.Root `json:"root"`
	}
	if err := json.Unmarshal(cb, &spec); err != nil {
		return Details{}, fmt.Errorf("oci-hook: decode bundle config: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if spec.Root != nil && spec.Root.Path != "" {
		d.Rootfs = spec.Root.Path
		if !filepath.IsAbs(d.Rootfs) {
			d.Rootfs = filepath.Join(d.State.Bundle, d.Rootfs)
		}
	}
	return d, nil
}

// Render expands the placeholders in each argument. An unknown
// placeholder or an unterminated one is an error, not passed on.
func Render(args []string, d Details) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		var b strings.Builder
		rest := a
		for {
			start := strings.Index(rest, "{{")
			if start < 0 {
				b.WriteString(rest)
				break
			}
			end := strings.Index(rest[start:], "}}")
			if end < 0 {
				return nil, fmt.Errorf("oci-hook: argument %q: unterminated {{: %w", a, errdefs.ErrInvalidArgument)
			}
			b.WriteString(rest[:start])
			v, err := d.expand(strings.TrimSpace(rest[start+2 : start+end]))
			if err != nil {
				return nil, fmt.Errorf("oci-hook: argument %q: %w", a, err)
			}
			b.WriteString(v)
			rest = rest[start+end+2:]
		}
		out[i] = b.String()
	}
	return out, nil
}

func (d Details) expand(name string) (string, error) {
	switch name {
	case "pid":
		return strconv.Itoa(d.State.Pid), nil
	case "id":
		return d.State.ID, nil
	case "bundle":
		return d.State.Bundle, nil
	case "rootfs":
		return d.Rootfs, nil
	}
	if key, ok := strings.CutPrefix(name, "annotation "); ok {
		k, err := strconv.Unquote(strings.TrimSpace(key))
		if err != nil {
			return "", fmt.Errorf("{{%s}}: the key must be a quoted string: %w", name, errdefs.ErrInvalidArgument)
		}
		return d.State.Annotations[k], nil
	}
	return "", fmt.Errorf("unknown placeholder {{%s}}: %w", name, errdefs.ErrInvalidArgument)
}

// Exec replaces this process with args (expanded), its first element an
// absolute path, with this process's environment.
func Exec(args []string, d Details) error {
	if len(args) == 0 {
		return fmt.Errorf("oci-hook: no command given (oci-hook -- COMMAND [ARG...]): %w", errdefs.ErrInvalidArgument)
	}
	rendered, err := Render(args, d)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(rendered[0]) {
		return fmt.Errorf("oci-hook: command %q: must be an absolute path: %w", rendered[0], errdefs.ErrInvalidArgument)
	}
	if err := syscall.Exec(rendered[0], rendered, os.Environ()); err != nil {
		return fmt.Errorf("oci-hook: exec %s: %w", rendered[0], err)
	}
	return nil
}
