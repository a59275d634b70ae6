package storage

import (
	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/plugin"
)

// The content plugin is the on-disk blob store under the plugin's root
// (<root>/io.containerd.content.v1.content). It is not namespaced: the
// metadata plugin wraps it, and services use the wrapped store.
func init() {
	plugin.Register(&plugin.Registration{
		Type: plugin.ContentPlugin,
		ID:   "content",
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			ic.Meta.Exports["root"] = ic.Root
			return local.NewStore(ic.Root)
		},
	})
}
