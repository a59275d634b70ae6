// Package storage registers the daemon's storage plugins: the bbolt
// metadata database, the content store, the snapshotters, the differ and
// the garbage collector. Each registration only wires a constructor from
// its own package to the plugin registry.
package storage

import (
	"fmt"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/snapshots"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.MetadataPlugin,
		ID:       "bolt",
		Requires: []plugin.Type{plugin.ContentPlugin, plugin.SnapshotPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			return metadata.NewDB(ic.Root)
		},
	})
}

// Stores is what the services that hold image data use: the bolt DB and
// the content store and snapshotters as seen through it.
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
		return nil, fmt.Errorf("snapshotter %q: not loaded: %w", name, errdefs.ErrNotFound)
	}
	return sn, nil
}

// GetStores returns the stores for a plugin's InitFn; the plugin must
// require plugin.MetadataPlugin.
func GetStores(ic *plugin.InitContext) (*Stores, error) {
	m, err := ic.GetByID(plugin.MetadataPlugin, "bolt")
	if err != nil {
		return nil, err
	}
	if s, ok := m.(*Stores); ok {
		return s, nil
	}
	db, ok := m.(*metadata.DB)
	if !ok {
		return nil, fmt.Errorf("metadata plugin is %T, not *metadata.DB", m)
	}
	cs, err := ic.GetByID(plugin.ContentPlugin, "content")
	if err != nil {
		return nil, err
	}
	s := &Stores{DB: db, Content: cs.(content.Store), Snapshotters: map[string]snapshots.Snapshotter{}}
	sns, err := ic.GetByType(plugin.SnapshotPlugin)
	if err == nil {
		for id, sn := range sns {
			s.Snapshotters[id] = sn.(snapshots.Snapshotter)
		}
	}
	return s, nil
}
