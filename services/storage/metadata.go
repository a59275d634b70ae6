// Package storage registers the daemon's storage plugins: the bbolt
// metadata database, the content store, the snapshotters, the differ and
// the garbage collector. Each registration only wires a constructor from
// its own package to the plugin registry.
package storage

import (
	"fmt"
	"sort"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/snapshots"
)

// StoresID is the id of the plugin (type plugin.ServicePlugin) whose
// instance is *Stores.
const StoresID = "storage"

func init() {
	// The metadata plugin's instance stays the *metadata.DB that the
	// containers, namespaces, leases and tasks services use directly.
	plugin.Register(&plugin.Registration{
		Type:     plugin.MetadataPlugin,
		ID:       "bolt",
		Requires: []plugin.Type{plugin.ContentPlugin, plugin.SnapshotPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			return metadata.NewDB(ic.Root)
		},
	})
	// The stores plugin wraps the content store and each snapshotter in
	// their namespaced views, once: wrapping also registers the backends
	// with the database for garbage collection.
	plugin.Register(&plugin.Registration{
		Type:     plugin.ServicePlugin,
		ID:       StoresID,
		Requires: []plugin.Type{plugin.MetadataPlugin, plugin.ContentPlugin, plugin.SnapshotPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			m, err := ic.GetByID(plugin.MetadataPlugin, "bolt")
			if err != nil {
				return nil, err
			}
			db, ok := m.(*metadata.DB)
			if !ok {
				return nil, fmt.Errorf("metadata plugin is %T, not *metadata.DB", m)
			}
			cs, err := ic.GetByID(plugin.ContentPlugin, "content")
			if err != nil {
				return nil, err
			}
			s := &Stores{
				DB:           db,
				Content:      metadata.NewContentStore(db, cs.(content.Store)),
				Snapshotters: map[string]snapshots.Snapshotter{},
			}
			sns, err := ic.GetByType(plugin.SnapshotPlugin)
			if err != nil {
				log.G(ic.Context).WithError(err).Warn("no snapshotter loaded")
			}
			for name, sn := range sns {
				s.Snapshotters[name] = metadata.NewSnapshotter(db, name, sn.(snapshots.Snapshotter))
			}
			for name := range s.Snapshotters {
				ic.Meta.Exports["snapshotter."+name] = "namespaced"
			}
			return s, nil
		},
	})
}

// Stores is what the services that hold image data use: the bolt DB and
// the content store and snapshotters as seen through it, per namespace.
type Stores struct {
	DB           *metadata.DB
	Content      content.Store
	Snapshotters map[string]snapshots.Snapshotter
}

// Snapshotter returns the snapshotter named name.
func (s *Stores) Snapshotter(name string) (snapshots.Snapshotter, error) {
	if name == "" {
		return nil, fmt.Errorf("snapshotter name is required: %w", errdefs.ErrInvalidArgument)
	}
	sn, ok := s.Snapshotters[name]
	if !ok {
		return nil, fmt.Errorf("snapshotter %q: not loaded (have %v): %w", name, s.names(), errdefs.ErrNotFound)
	}
	return sn, nil
}

func (s *Stores) names() []string {
	out := make([]string, 0, len(s.Snapshotters))
	for n := range s.Snapshotters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// GetStores returns the stores for a plugin's InitFn; the plugin must
// require plugin.ServicePlugin (or list the stores plugin's requirements
// and plugin.ServicePlugin) so that it is initialized after them.
func GetStores(ic *plugin.InitContext) (*Stores, error) {
	inst, err := ic.GetByID(plugin.ServicePlugin, StoresID)
	if err != nil {
		return nil, err
	}
	s, ok := inst.(*Stores)
	if !ok {
		return nil, fmt.Errorf("storage plugin is %T, not *storage.Stores", inst)
	}
	return s, nil
}
