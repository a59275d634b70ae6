// Package opt is the "opt" plugin (io.containerd.internal.v1.opt), as in
// containerd: a folder whose bin/ and lib/ `ctr install` fills from an
// image, put first on berthd's PATH and LD_LIBRARY_PATH so that what is
// installed there (a shim, say) is what berthd runs.
package opt

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
)

// Config is the plugin's section of the config file.
type Config struct {
	// Path holds bin/ and lib/. Empty means the plugin's own folder under
	// --root (containerd's default is /opt/containerd; berthd keeps to its
	// root unless told otherwise).
	Path string `toml:"path"`
}

func init() {
	plugin.Register(&plugin.Registration{
		Type:   plugin.InternalPlugin,
		ID:     "opt",
		Config: &Config{},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			path := ic.Root
			if cfg, ok := ic.Config.(*Config); ok && cfg.Path != "" {
				path = cfg.Path
			}
			d, err := setUp(path)
			if err != nil {
				return nil, err
			}
			// Clients (ctr install) find the folder here.
			ic.Meta.Exports["path"] = d.Path
			return d, nil
		},
	})
}

// Dir is the plugin's instance: the folder it set up.
type Dir struct{ Path string }

func setUp(path string) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("opt path %q must be absolute: %w", path, errdefs.ErrInvalidArgument)
	}
	path = filepath.Clean(path)
	bin, lib := filepath.Join(path, "bin"), filepath.Join(path, "lib")
	for _, d := range []string{bin, lib} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("opt: %w", err)
		}
	}
	if err := prependEnv("PATH", bin); err != nil {
		return nil, err
	}
	if err := prependEnv("LD_LIBRARY_PATH", lib); err != nil {
		return nil, err
	}
	return &Dir{Path: path}, nil
}

// prependEnv puts dir first in the list variable name (once).
func prependEnv(name, dir string) error {
	cur := os.Getenv(name)
	for _, p := range filepath.SplitList(cur) {
		if p == dir {
			return nil
		}
	}
	v := dir
	if cur != "" {
		v = dir + string(os.PathListSeparator) + cur
	}
	if err := os.Setenv(name, v); err != nil {
		return fmt.Errorf("opt: set %s: %w", name, err)
	}
	return nil
}
