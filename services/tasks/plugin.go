package tasks

import (
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/plugin"
	v2 "github.com/berth-containers/berth/runtime/v2"
)

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.RuntimePluginV2,
		ID:       "task",
		Requires: []plugin.Type{plugin.MetadataPlugin},
		Config:   v2.DefaultConfig(),
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			cfg := ic.Config.(*v2.Config)
			// The platform tasks run on, reported as containerd's runtime does.
			ic.Meta.Platforms = append(ic.Meta.Platforms, platforms.Default())
			ic.Meta.Capabilities = []string{"io.containerd.runc.v2", "io.containerd.berth.v2"}
			return v2.NewTaskManager(ic.Context, v2.ManagerConfig{
				State:        ic.State,
				Address:      ic.Address,
				TTRPCAddress: ic.TTRPCAddress,
				Runtimes:     cfg.Runtimes,
				Publisher:    ic.Events,
				NoSpareShim:  cfg.NoSpareShim,
				// As containerd does: a daemon logging at debug level
				// starts its shims with -debug.
				Debug: log.G(ic.Context).Logger.IsLevelEnabled(logrus.DebugLevel),
			})
		},
	})
	plugin.Register(&plugin.Registration{
		Type:     plugin.GRPCPlugin,
		ID:       "tasks",
		Requires: []plugin.Type{plugin.RuntimePluginV2, plugin.MetadataPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			rt, err := ic.GetByID(plugin.RuntimePluginV2, "task")
			if err != nil {
				return nil, err
			}
			m, err := ic.GetByID(plugin.MetadataPlugin, "bolt")
			if err != nil {
				return nil, err
			}
			db, ok := m.(*metadata.DB)
			if !ok {
				return nil, fmt.Errorf("metadata plugin is %T, not *metadata.DB", m)
			}
			return &service{local: &local{
				manager:    rt.(*v2.TaskManager),
				containers: metadata.NewContainerStore(db),
				publisher:  ic.Events,
			}}, nil
		},
	})
}
