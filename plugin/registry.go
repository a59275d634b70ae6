package plugin

import (
	"fmt"
	"strings"
	"sync"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// Registry holds registrations in the order they were made. The daemon uses
// the package-level one (Register, Graph); tests make their own.
type Registry struct {
	mu   sync.Mutex
	regs []*Registration
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds r; a malformed or duplicate (same type and id) registration
// is an error.
func (reg *Registry) Register(r *Registration) error {
	if err := r.validate(); err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	for _, o := range reg.regs {
		if o.Type == r.Type && o.ID == r.ID {
			return fmt.Errorf("plugin %s registered twice: %w", r.URI(), errdefs.ErrAlreadyExists)
		}
	}
	reg.regs = append(reg.regs, r)
	return nil
}

// Registrations returns every registration in registration order.
func (reg *Registry) Registrations() []*Registration {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return append([]*Registration(nil), reg.regs...)
}

// DisableFilter reports whether a registration is turned off by config.
type DisableFilter func(*Registration) bool

// Disabled builds a DisableFilter from the disabled_plugins list, whose
// entries name a plugin by "<type>.<id>" or by its bare id.
func Disabled(names []string) DisableFilter {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[strings.TrimSpace(n)] = struct{}{}
	}
	return func(r *Registration) bool {
		_, byURI := set[r.URI()]
		_, byID := set[r.ID]
		return byURI || byID
	}
}

// Graph returns the enabled registrations ordered so that each comes after
// everything it requires. The order is stable: among plugins free to go in
// either order, registration order wins. A dependency cycle is an error
// naming the cycle.
func (reg *Registry) Graph(disabled DisableFilter) ([]*Registration, error) {
	var enabled []*Registration
	for _, r := range reg.Registrations() {
		if disabled != nil && disabled(r) {
			continue
		}
		enabled = append(enabled, r)
	}
	return order(enabled)
}

const (
	unvisited = iota
	visiting
	done
)

// order is a depth-first topological sort over the registrations in their
// given order; "visiting" marks the current path, so reaching a node on it
// is a cycle.
func order(regs []*Registration) ([]*Registration, error) {
	state := make(map[*Registration]int, len(regs))
	out := make([]*Registration, 0, len(regs))
	var path []*Registration

	var visit func(r *Registration) error
	visit = func(r *Registration) error {
		switch state[r] {
		case done:
			return nil
		case visiting:
			return cycleError(path, r)
		}
		state[r] = visiting
		path = append(path, r)
		for _, dep := range dependencies(r, regs) {
			if err := visit(dep); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[r] = done
		out = append(out, r)
		return nil
	}
	for _, r := range regs {
		if err := visit(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dependencies lists the registrations r must come after, in registration
// order.
func dependencies(r *Registration, regs []*Registration) []*Registration {
	if requiresAll(r) {
		// After everything that is not itself an "after everything" plugin;
		// those keep registration order among themselves.
		var deps []*Registration
		for _, o := range regs {
			if o != r && !requiresAll(o) {
				deps = append(deps, o)
			}
		}
		return deps
	}
	var deps []*Registration
	for _, o := range regs {
		if o == r {
			continue
		}
		for _, t := range r.Requires {
			if o.Type == t {
				deps = append(deps, o)
				break
			}
		}
	}
	return deps
}

func requiresAll(r *Registration) bool {
	for _, t := range r.Requires {
		if t == All {
			return true
		}
	}
	return false
}

func cycleError(path []*Registration, back *Registration) error {
	start := 0
	for i, p := range path {
		if p == back {
			start = i
			break
		}
	}
	names := make([]string, 0, len(path)-start+1)
	for _, p := range path[start:] {
		names = append(names, p.URI())
	}
	names = append(names, back.URI())
	return fmt.Errorf("plugin dependency cycle: %s: %w", strings.Join(names, " -> "), errdefs.ErrFailedPrecondition)
}

// defaultRegistry is where init() functions register.
var defaultRegistry = NewRegistry()

// Register adds r to the daemon's registry. It panics on a malformed or
// duplicate registration: that is a programming error found at startup.
func Register(r *Registration) {
	if err := defaultRegistry.Register(r); err != nil {
		panic(err)
	}
}

// Registrations returns the daemon's registrations in registration order.
func Registrations() []*Registration { return defaultRegistry.Registrations() }

// Graph orders the daemon's enabled registrations; see Registry.Graph.
func Graph(disabled DisableFilter) ([]*Registration, error) {
	return defaultRegistry.Graph(disabled)
}
