// Package plugin is berthd's registry. Every piece of the daemon (stores,
// snapshotters, services, the runtime) registers itself from an init()
// function; the server orders the registrations by what they require,
// decodes each one's config section and calls its InitFn once. A plugin that
// fails is recorded with its error instead of stopping the daemon, so one
// broken snapshotter does not take down the rest.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Type groups plugins by what they provide. The strings are containerd's so
// that introspection output reads the same to its users.
type Type string

func (t Type) String() string { return string(t) }

const (
	// All, used in Requires, means every plugin that does not itself require All.
	All Type = "*"

	ContentPlugin   Type = "io.containerd.content.v1"
	SnapshotPlugin  Type = "io.containerd.snapshotter.v1"
	MetadataPlugin  Type = "io.containerd.metadata.v1"
	DiffPlugin      Type = "io.containerd.differ.v1"
	GCPlugin        Type = "io.containerd.gc.v1"
	ServicePlugin   Type = "io.containerd.service.v1"
	GRPCPlugin      Type = "io.containerd.grpc.v1"
	TTRPCPlugin     Type = "io.containerd.ttrpc.v1"
	RuntimePluginV2 Type = "io.containerd.runtime.v2"
	LeasePlugin     Type = "io.containerd.lease.v1"
	EventPlugin     Type = "io.containerd.event.v1"
	InternalPlugin  Type = "io.containerd.internal.v1"
	MonitorPlugin   Type = "io.containerd.monitor.v1"
)

// ErrSkipPlugin is returned (possibly wrapped) by an InitFn to say the plugin
// does not apply here (say, a snapshotter whose file system is missing). The
// plugin is recorded as skipped, which is not a failure.
var ErrSkipPlugin = errors.New("skip plugin")

// IsSkipPlugin reports whether err means the plugin skipped itself.
func IsSkipPlugin(err error) bool { return errors.Is(err, ErrSkipPlugin) }

// Registration describes a plugin before it runs.
type Registration struct {
	Type Type
	ID   string
	// Requires lists the types that must be initialized first; All orders the
	// plugin after every plugin that does not itself require All.
	Requires []Type
	// Config is a pointer to a struct holding the defaults; the server decodes
	// the plugin's TOML section over a copy of it and hands the copy to InitFn
	// as InitContext.Config. Nil means the plugin takes no config.
	Config interface{}
	// InitFn builds the plugin's instance.
	InitFn func(*InitContext) (interface{}, error)
}

// URI is "<type>.<id>", the plugin's name in config and errors.
func (r *Registration) URI() string { return string(r.Type) + "." + r.ID }

func (r *Registration) validate() error {
	if r == nil {
		return fmt.Errorf("nil registration: %w", errdefs.ErrInvalidArgument)
	}
	if r.Type == "" || r.Type == All {
		return fmt.Errorf("plugin %q: invalid type %q: %w", r.ID, r.Type, errdefs.ErrInvalidArgument)
	}
	if err := identifiers.Validate(r.ID); err != nil {
		return fmt.Errorf("plugin %s: id: %w", r.URI(), err)
	}
	if r.InitFn == nil {
		return fmt.Errorf("plugin %s: no InitFn: %w", r.URI(), errdefs.ErrInvalidArgument)
	}
	if r.Config != nil {
		t := reflect.TypeOf(r.Config)
		if t.Kind() != reflect.Ptr || t.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("plugin %s: config must be a pointer to a struct, not %T: %w", r.URI(), r.Config, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Meta is what a plugin reports about itself during init, for introspection.
type Meta struct {
	Platforms    []ocispec.Platform
	Exports      map[string]string
	Capabilities []string
}

// Plugin is a registration after its init ran: the instance or the error.
type Plugin struct {
	Registration *Registration
	// Config is the decoded config the plugin was started with.
	Config interface{}
	Meta   *Meta

	instance interface{}
	err      error
}

// Instance returns the plugin's instance or its init error.
func (p *Plugin) Instance() (interface{}, error) { return p.instance, p.err }

// Err returns the init error, nil when the plugin is running.
func (p *Plugin) Err() error { return p.err }

// Skipped reports whether the plugin skipped itself.
func (p *Plugin) Skipped() bool { return IsSkipPlugin(p.err) }

// InitContext is what an InitFn gets.
type InitContext struct {
	Context context.Context
	// Root and State are the plugin's own folders, <root>/<type>.<id> and
	// <state>/<type>.<id>; the plugin creates them if it needs them.
	Root  string
	State string
	// Config is the decoded copy of Registration.Config (nil if none).
	Config interface{}
	// Address and TTRPCAddress are the daemon's sockets, for plugins (the
	// runtime) that tell shims where to call back.
	Address      string
	TTRPCAddress string
	// UUID is the daemon instance's persistent id (<root>/uuid).
	UUID string
	// Events is the daemon's event exchange.
	Events *events.Exchange
	// Meta is filled in by the plugin: platforms, exports, capabilities.
	Meta *Meta

	set *Set
}

// GetByType returns the initialized plugins of type t by id. It is an error
// (NotFound) when none of them is running; the message says why each failed.
func (ic *InitContext) GetByType(t Type) (map[string]interface{}, error) {
	return ic.set.GetByType(t)
}

// GetByID returns one plugin's instance, or its init error.
func (ic *InitContext) GetByID(t Type, id string) (interface{}, error) {
	return ic.set.GetByID(t, id)
}

// Plugins is the live set of all plugins, for introspection. Plugins
// initialized later are added to it as they run.
func (ic *InitContext) Plugins() *Set { return ic.set }
