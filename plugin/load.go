package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
)

// LoadOptions is what the server hands every plugin.
type LoadOptions struct {
	Root, State           string
	Address, TTRPCAddress string
	UUID                  string
	Events                *events.Exchange
	// Config returns the decoded config for a registration; nil means each
	// plugin gets its Registration.Config as is.
	Config func(*Registration) (interface{}, error)
}

// Load initializes the registrations in the given order (see Graph) and
// returns every one of them with its instance or error. A failing plugin
// does not stop the others; one that requires a type whose plugins all
// failed is failed itself, with an error naming the missing dependency.
func Load(ctx context.Context, ordered []*Registration, opts LoadOptions) *Set {
	set := NewSet()
	for _, r := range ordered {
		p := loadOne(ctx, r, set, opts)
		set.add(p)
		lg := log.G(ctx).WithField("plugin", r.URI())
		switch {
		case p.err == nil:
			lg.Debug("plugin loaded")
		case p.Skipped():
			lg.WithError(p.err).Info("plugin skipped")
		default:
			lg.WithError(p.err).Warn("failed to load plugin")
		}
	}
	return set
}

func loadOne(ctx context.Context, r *Registration, set *Set, opts LoadOptions) *Plugin {
	p := &Plugin{Registration: r, Meta: &Meta{Exports: map[string]string{}}, Config: r.Config}
	if opts.Config != nil {
		cfg, err := opts.Config(r)
		if err != nil {
			p.err = fmt.Errorf("plugin %s: config: %w", r.URI(), err)
			return p
		}
		p.Config = cfg
	}
	if err := set.checkRequires(r); err != nil {
		p.err = err
		return p
	}
	ic := &InitContext{
		Context:      log.WithLogger(ctx, log.G(ctx).WithField("plugin", r.URI())),
		Root:         filepath.Join(opts.Root, r.URI()),
		State:        filepath.Join(opts.State, r.URI()),
		Config:       p.Config,
		Address:      opts.Address,
		TTRPCAddress: opts.TTRPCAddress,
		UUID:         opts.UUID,
		Events:       opts.Events,
		Meta:         p.Meta,
		set:          set,
	}
	p.instance, p.err = callInit(r, ic)
	if p.err != nil {
		p.instance = nil
	}
	return p
}

// callInit runs InitFn, turning a panic into that plugin's error so one bad
// plugin cannot take down the daemon at startup.
func callInit(r *Registration, ic *InitContext) (inst interface{}, err error) {
	defer func() {
		if v := recover(); v != nil {
			log.G(ic.Context).Errorf("plugin init panicked: %v\n%s", v, debug.Stack())
			inst, err = nil, fmt.Errorf("plugin %s: init panicked: %v", r.URI(), v)
		}
	}()
	return r.InitFn(ic)
}

// Set is the loaded plugins in init order. It is safe for concurrent use:
// introspection reads it while later plugins are still being added.
type Set struct {
	mu      sync.RWMutex
	ordered []*Plugin
	byType  map[Type]map[string]*Plugin
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{byType: map[Type]map[string]*Plugin{}} }

func (s *Set) add(p *Plugin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ordered = append(s.ordered, p)
	m := s.byType[p.Registration.Type]
	if m == nil {
		m = map[string]*Plugin{}
		s.byType[p.Registration.Type] = m
	}
	m[p.Registration.ID] = p
}

// All returns every plugin, running or not, in init order.
func (s *Set) All() []*Plugin {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Plugin(nil), s.ordered...)
}

// GetByType returns the running plugins of type t by id. When none is
// running the NotFound error says what happened to each one.
func (s *Set) GetByType(t Type) (map[string]interface{}, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]interface{}{}
	for id, p := range s.byType[t] {
		if p.err == nil {
			out[id] = p.instance
		}
	}
	if len(out) == 0 {
		if why := s.failuresLocked(t); why != "" {
			return nil, fmt.Errorf("no %s plugin is running (%s): %w", t, why, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("no %s plugin is loaded: %w", t, errdefs.ErrNotFound)
	}
	return out, nil
}

// GetByID returns one plugin's instance, or its init error.
func (s *Set) GetByID(t Type, id string) (interface{}, error) {
	s.mu.RLock()
	p, ok := s.byType[t][id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("plugin %s.%s is not loaded: %w", t, id, errdefs.ErrNotFound)
	}
	if p.err != nil {
		return nil, fmt.Errorf("plugin %s.%s did not start: %w", t, id, p.err)
	}
	return p.instance, nil
}

// checkRequires fails r when a type it requires has plugins but every one
// of them failed (skipping is not failing: a skipped snapshotter must not
// fail the services that use whichever snapshotters did start).
func (s *Set) checkRequires(r *Registration) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range r.Requires {
		if t == All {
			continue
		}
		running, failed := 0, 0
		for _, p := range s.byType[t] {
			switch {
			case p.err == nil:
				running++
			case !p.Skipped():
				failed++
			}
		}
		if running == 0 && failed > 0 {
			return fmt.Errorf("plugin %s: required %s plugin failed (%s): %w",
				r.URI(), t, s.failuresLocked(t), errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}

func (s *Set) failuresLocked(t Type) string {
	var why []string
	for _, p := range s.ordered {
		if p.Registration.Type == t && p.err != nil {
			why = append(why, fmt.Sprintf("%s: %v", p.Registration.URI(), p.err))
		}
	}
	return strings.Join(why, "; ")
}
