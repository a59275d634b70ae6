// Package storage registers the daemon's storage plugins: the bbolt
// metadata database, and (with the images work) the content store,
// snapshotters and differ. Each registration only wires a constructor from
// its own package to the plugin registry.
package storage

import (
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/plugin"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type: plugin.MetadataPlugin,
		ID:   "bolt",
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			return metadata.NewDB(ic.Root)
		},
	})
}
