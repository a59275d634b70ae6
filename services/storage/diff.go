package storage

import (
	"github.com/berth-containers/berth/diff/walking"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/plugin"
)

// DiffConfig is the [plugins."io.containerd.differ.v1.walking"] section.
type DiffConfig struct {
	// MaxLayerSize bounds the uncompressed size of one applied layer, so a
	// decompression bomb fails instead of filling the disk; 0: no bound.
	MaxLayerSize int64 `toml:"max_layer_size"`
}

// The walking differ applies and computes layers over the namespaced
// content store: layer blobs are read, and computed layers written, in
// the caller's namespace. It reports the host's platform, as containerd's.
func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.DiffPlugin,
		ID:       "walking",
		Requires: []plugin.Type{plugin.ServicePlugin},
		Config:   &DiffConfig{},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			ic.Meta.Platforms = append(ic.Meta.Platforms, platforms.Default())
			s, err := GetStores(ic)
			if err != nil {
				return nil, err
			}
			var opts []walking.ApplierOpt
			if cfg, ok := ic.Config.(*DiffConfig); ok && cfg.MaxLayerSize > 0 {
				opts = append(opts, walking.WithMaxLayerSize(cfg.MaxLayerSize))
			}
			return walking.New(s.Content, opts...), nil
		},
	})
}
