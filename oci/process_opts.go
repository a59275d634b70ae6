package oci

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithProcessArgs sets the command line of the container's process.
func WithProcessArgs(args ...string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureProcess(s)
		s.Process.Args = append([]string(nil), args...)
		return nil
	}
}

// WithProcessCwd sets the working directory, which must be absolute.
func WithProcessCwd(cwd string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if !path.IsAbs(cwd) || strings.ContainsRune(cwd, 0) {
			return fmt.Errorf("working directory %q must be an absolute path: %w", cwd, errdefs.ErrInvalidArgument)
		}
		ensureProcess(s)
		s.Process.Cwd = cwd
		return nil
	}
}

// WithEnv merges env into the process environment: "KEY=value" replaces
// an existing KEY or is appended, a bare "KEY" removes KEY.
func WithEnv(env []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		for _, e := range env {
			if e == "" || strings.HasPrefix(e, "=") || strings.ContainsRune(e, 0) {
				return fmt.Errorf("environment variable %q: %w", e, errdefs.ErrInvalidArgument)
			}
		}
		ensureProcess(s)
		s.Process.Env = mergeEnv(s.Process.Env, env)
		return nil
	}
}

// mergeEnv returns base with overrides applied by key, keeping the order of
// base and appending new keys in the order given.
func mergeEnv(base, overrides []string) []string {
	out := make([]string, 0, len(base)+len(overrides))
	index := make(map[string]int, len(base))
	for _, e := range base {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := index[k]; ok { // duplicate in base: last one wins
			out[i] = e
			continue
		}
		index[k] = len(out)
		out = append(out, e)
	}
	removed := map[string]bool{}
	for _, e := range overrides {
		k, _, hasValue := strings.Cut(e, "=")
		if !hasValue {
			removed[k] = true
			continue
		}
		delete(removed, k)
		if i, ok := index[k]; ok {
			out[i] = e
			continue
		}
		index[k] = len(out)
		out = append(out, e)
	}
	if len(removed) == 0 {
		return out
	}
	kept := out[:0]
	for _, e := range out {
		k, _, _ := strings.Cut(e, "=")
		if !removed[k] {
			kept = append(kept, e)
		}
	}
	return kept
}

// WithTTY gives the process a terminal, and TERM=xterm unless TERM is set,
// as containerd does.
func WithTTY(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
	ensureProcess(s)
	s.Process.Terminal = true
	for _, e := range s.Process.Env {
		if strings.HasPrefix(e, "TERM=") {
			return nil
		}
	}
	s.Process.Env = append(s.Process.Env, "TERM=xterm")
	return nil
}

// WithTTYSize sets the initial console size of a terminal process.
func WithTTYSize(width, height uint) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureProcess(s)
		s.Process.ConsoleSize = &specs.Box{Width: width, Height: height}
		return nil
	}
}

// WithHostname sets the hostname seen inside the container's UTS namespace.
func WithHostname(name string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		// The kernel limit is 64 bytes; catch it here with a clear message
		// instead of a sethostname EINVAL from runc.
		if len(name) > 64 || strings.ContainsRune(name, 0) {
			return fmt.Errorf("hostname %q: %w", name, errdefs.ErrInvalidArgument)
		}
		s.Hostname = name
		return nil
	}
}

// WithAnnotations merges annotations into the spec, replacing same keys.
func WithAnnotations(annotations map[string]string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if len(annotations) == 0 {
			return nil
		}
		if s.Annotations == nil {
			s.Annotations = make(map[string]string, len(annotations))
		}
		for k, v := range annotations {
			if k == "" {
				return fmt.Errorf("annotation with empty key: %w", errdefs.ErrInvalidArgument)
			}
			s.Annotations[k] = v
		}
		return nil
	}
}

// WithNoNewPrivileges sets whether the process may gain privileges
// through setuid binaries or file capabilities.
func WithNoNewPrivileges(on bool) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureProcess(s)
		s.Process.NoNewPrivileges = on
		return nil
	}
}

// WithRlimit sets (or replaces) one resource limit, e.g. "RLIMIT_NOFILE".
func WithRlimit(typ string, hard, soft uint64) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if !strings.HasPrefix(typ, "RLIMIT_") || soft > hard {
			return fmt.Errorf("rlimit %s soft=%d hard=%d: %w", typ, soft, hard, errdefs.ErrInvalidArgument)
		}
		ensureProcess(s)
		for i := range s.Process.Rlimits {
			if s.Process.Rlimits[i].Type == typ {
				s.Process.Rlimits[i].Hard, s.Process.Rlimits[i].Soft = hard, soft
				return nil
			}
		}
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: typ, Hard: hard, Soft: soft})
		return nil
	}
}
