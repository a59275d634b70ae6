package storage

import (
	"fmt"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/snapshots/native"
	"github.com/berth-containers/berth/snapshots/overlay"
)

// The snapshotters, each under its plugin root. overlayfs skips itself
// where the kernel or the backing file system cannot do overlay mounts;
// native (full copies) works everywhere. The metadata plugin wraps them
// per namespace; services use the wrapped ones. Each reports the host's
// platform, as containerd's do: clients read it through introspection
// (`ctr plugins ls`, the snapshotter's supported platforms).
func init() {
	plugin.Register(&plugin.Registration{
		Type: plugin.SnapshotPlugin,
		ID:   "overlayfs",
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			ic.Meta.Platforms = append(ic.Meta.Platforms, platforms.Default())
			ic.Meta.Exports["root"] = ic.Root
			sn, err := overlay.New(ic.Root)
			if errdefs.IsNotImplemented(err) {
				return nil, fmt.Errorf("%v: %w", err, plugin.ErrSkipPlugin)
			}
			return sn, err
		},
	})
	plugin.Register(&plugin.Registration{
		Type: plugin.SnapshotPlugin,
		ID:   "native",
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			ic.Meta.Platforms = append(ic.Meta.Platforms, platforms.Default())
			ic.Meta.Exports["root"] = ic.Root
			return native.New(ic.Root)
		},
	})
}
