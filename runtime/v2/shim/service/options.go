package service

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/api/runtime/runc/options"
	runtimeoptions "github.com/berth-containers/berth/api/runtime/runtimeoptions/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/typeurl"
	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	"google.golang.org/protobuf/types/known/anypb"
)

const (
	// DefaultRuncRoot is runc's state root; each namespace gets a folder
	// below it, as containerd does under /run/containerd/runc.
	DefaultRuncRoot = "/run/berth/runc"
	// OptionsFile keeps the runtime options in the bundle, so `shim delete`
	// finds the runc binary and root of a shim that is gone.
	OptionsFile = "options.json"
	// RuncLogFile is runc's json log in the bundle.
	RuncLogFile = "log.json"
)

// DecodeOptions reads containerd.runc.v1.Options from an Any, or from the
// file or body a runtimeoptions.v1.Options names; nil or empty is the
// defaults.
func DecodeOptions(a *anypb.Any) (*options.Options, error) {
	opts := &options.Options{}
	if a == nil || (a.TypeUrl == "" && len(a.Value) == 0) {
		return opts, nil
	}
	if typeurl.Is(a, &runtimeoptions.Options{}) {
		ro := &runtimeoptions.Options{}
		if err := typeurl.UnmarshalTo(a, ro); err != nil {
			return nil, fmt.Errorf("runtime options: %w", err)
		}
		return optionsFromConfig(ro)
	}
	if err := typeurl.UnmarshalTo(a, opts); err != nil {
		return nil, fmt.Errorf("runtime options: %w", err)
	}
	return opts, nil
}

// WriteOptions saves opts as the bundle's options.json (the JSON names are
// containerd's, so its tools read it too).
func WriteOptions(bundle string, opts *options.Options) error {
	b, err := json.Marshal(opts)
	if err != nil {
		return fmt.Errorf("encode runtime options: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, OptionsFile), b, 0o600); err != nil {
		return fmt.Errorf("write runtime options: %w", err)
	}
	return nil
}

// ReadOptions loads the bundle's options.json; a missing file is the
// defaults.
func ReadOptions(bundle string) (*options.Options, error) {
	opts := &options.Options{}
	b, err := os.ReadFile(filepath.Join(bundle, OptionsFile))
	if os.IsNotExist(err) {
		return opts, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read runtime options: %w", err)
	}
	if err := json.Unmarshal(b, opts); err != nil {
		return nil, fmt.Errorf("decode runtime options %s: %w: %w", OptionsFile, err, errdefs.ErrInvalidArgument)
	}
	return opts, nil
}

// bundlesDir is the folder of the v2 runtime's bundles under a daemon's
// state folder: <state>/io.containerd.runtime.v2.task/<namespace>/<id>.
const bundlesDir = "io.containerd.runtime.v2.task"

// runcRoot is runc's state root for a bundle without a configured one:
// "runc" in the state folder of the daemon the bundle belongs to, so that
// daemons with state folders of their own never share runc's state (with
// the default state, /run/berth, it is DefaultRuncRoot; a bundle of
// containerd's gets /run/containerd/runc, its own shim's root). A bundle
// elsewhere gets DefaultRuncRoot.
func runcRoot(bundle string) string {
	nsDir := filepath.Dir(filepath.Clean(bundle))
	if pluginDir := filepath.Dir(nsDir); filepath.Base(pluginDir) == bundlesDir {
		return filepath.Join(filepath.Dir(pluginDir), "runc")
	}
	return DefaultRuncRoot
}

// NewRunc is the runc for a container of namespace ns in bundle.
func NewRunc(ns, bundle string, opts *options.Options) *runc.Runc {
	root := runcRoot(bundle)
	if opts.GetRoot() != "" {
		root = opts.GetRoot()
	}
	return &runc.Runc{
		Command:       opts.GetBinaryName(),
		Root:          filepath.Join(root, ns),
		Log:           filepath.Join(bundle, RuncLogFile),
		SystemdCgroup: opts.GetSystemdCgroup(),
	}
}
