package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/plugin"
	toml "github.com/pelletier/go-toml/v2"
)

// Defaults, containerd's layout under berth's names.
const (
	ConfigVersion      = 2
	DefaultConfigPath  = "/etc/berth/config.toml"
	DefaultRootDir     = "/var/lib/berth"
	DefaultStateDir    = "/run/berth"
	DefaultAddress     = "/run/berth/berth.sock"
	DefaultMaxMsgSize  = 16 << 20
	ttrpcAddressSuffix = ".ttrpc"
)

// Config is berthd's config file, version 2 of containerd's format.
type Config struct {
	Version         int      `toml:"version" comment:"Config format version; only 2 is understood."`
	Root            string   `toml:"root" comment:"Persistent data: one folder per plugin, named <type>.<id>."`
	State           string   `toml:"state" comment:"Runtime state (sockets, bundles, FIFOs); usually on tmpfs."`
	DisabledPlugins []string `toml:"disabled_plugins" comment:"Plugins not to load, by \"<type>.<id>\" or by id."`

	GRPC  GRPCConfig  `toml:"grpc"`
	TTRPC TTRPCConfig `toml:"ttrpc"`
	Debug DebugConfig `toml:"debug"`

	// Plugins holds each plugin's section, keyed "<type>.<id>", as decoded
	// TOML; DecodePlugin turns a section into the plugin's config struct.
	Plugins map[string]interface{} `toml:"plugins"`
}

// GRPCConfig is the API socket.
type GRPCConfig struct {
	Address        string `toml:"address" comment:"The API's unix socket (mode 0660)."`
	UID            int    `toml:"uid" comment:"Owner of the socket."`
	GID            int    `toml:"gid" comment:"Group of the socket: its members may use the API."`
	MaxRecvMsgSize int    `toml:"max_recv_message_size"`
	MaxSendMsgSize int    `toml:"max_send_message_size"`
}

// TTRPCConfig is the socket shims call back on.
type TTRPCConfig struct {
	Address string `toml:"address" comment:"Empty: the gRPC address with \".ttrpc\" appended."`
	UID     int    `toml:"uid"`
	GID     int    `toml:"gid"`
}

// DebugConfig is logging and the optional pprof socket.
type DebugConfig struct {
	Address string `toml:"address" comment:"A unix socket serving /v1/metrics (Prometheus), /debug/pprof and /debug/vars; empty: off."`
	UID     int    `toml:"uid"`
	GID     int    `toml:"gid"`
	Level   string `toml:"level" comment:"trace, debug, info, warn, error, fatal or panic."`
	Format  string `toml:"format" comment:"text or json."`
}

// DefaultConfig is the config used when the file says nothing.
func DefaultConfig() *Config {
	return &Config{
		Version:         ConfigVersion,
		Root:            DefaultRootDir,
		State:           DefaultStateDir,
		DisabledPlugins: []string{},
		GRPC: GRPCConfig{
			Address:        DefaultAddress,
			MaxRecvMsgSize: DefaultMaxMsgSize,
			MaxSendMsgSize: DefaultMaxMsgSize,
		},
		Debug:   DebugConfig{Level: "info", Format: "text"},
		Plugins: map[string]interface{}{},
	}
}

// TTRPCAddress is the ttrpc socket: the configured one, else the gRPC
// address with ".ttrpc" appended, so moving the API socket moves both.
func (c *Config) TTRPCAddress() string {
	if c.TTRPC.Address != "" {
		return c.TTRPC.Address
	}
	return c.GRPC.Address + ttrpcAddressSuffix
}

// LoadConfig decodes the file at path over cfg (normally DefaultConfig()).
// A missing file is an error satisfying errors.Is(err, os.ErrNotExist) and
// errdefs.IsNotFound, which the caller may treat as "use the defaults".
// Unknown keys are logged, not fatal, so a config written for a newer
// berthd still starts.
func LoadConfig(ctx context.Context, path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("config %s: %w: %w", path, errdefs.ErrNotFound, err)
		}
		return fmt.Errorf("read config %s: %w", path, err)
	}
	if err := decodeConfig(ctx, data, cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func decodeConfig(ctx context.Context, data []byte, cfg *Config) error {
	cfg.Version = 0
	if err := strictDecode(ctx, data, cfg, ""); err != nil {
		return err
	}
	switch cfg.Version {
	case 0:
		// No version line: read as the only version we have.
		cfg.Version = ConfigVersion
	case ConfigVersion:
	default:
		return fmt.Errorf("unsupported config version %d (only %d is supported): %w", cfg.Version, ConfigVersion, errdefs.ErrInvalidArgument)
	}
	return cfg.Validate()
}

// strictDecode decodes TOML, logging (not failing on) unknown keys.
func strictDecode(ctx context.Context, data []byte, v interface{}, section string) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		for _, e := range missing.Errors {
			key := strings.Join(e.Key(), ".")
			if section != "" {
				key = section + "." + key
			}
			log.G(ctx).WithField("key", key).Warn("unknown config key ignored")
		}
		return nil
	}
	if err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("line %d column %d: %v: %w", row, col, de, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Validate checks what the server needs to start.
func (c *Config) Validate() error {
	for name, dir := range map[string]string{"root": c.Root, "state": c.State} {
		if dir == "" || !filepath.IsAbs(dir) {
			return fmt.Errorf("%s %q must be an absolute path: %w", name, dir, errdefs.ErrInvalidArgument)
		}
	}
	if c.Root == c.State {
		return fmt.Errorf("root and state must differ (both %q): %w", c.Root, errdefs.ErrInvalidArgument)
	}
	if c.GRPC.Address == "" {
		return fmt.Errorf("grpc address must be set: %w", errdefs.ErrInvalidArgument)
	}
	if c.GRPC.MaxRecvMsgSize < 0 || c.GRPC.MaxSendMsgSize < 0 {
		return fmt.Errorf("grpc message sizes must not be negative: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// DecodePlugin returns r's config: a fresh copy of r.Config's defaults with
// the plugin's [plugins."<type>.<id>"] section (or, as in version 1 files,
// [plugins."<id>"]) decoded over it. Nil when the plugin takes no config.
func (c *Config) DecodePlugin(ctx context.Context, r *plugin.Registration) (interface{}, error) {
	if r.Config == nil {
		return nil, nil
	}
	// Copy through TOML rather than by value so that maps and slices in the
	// defaults are not shared with (and mutated through) the decoded copy.
	out := reflect.New(reflect.TypeOf(r.Config).Elem()).Interface()
	def, err := toml.Marshal(r.Config)
	if err != nil {
		return nil, fmt.Errorf("encode default config of %s: %w", r.URI(), err)
	}
	if err := toml.Unmarshal(def, out); err != nil {
		return nil, fmt.Errorf("copy default config of %s: %w", r.URI(), err)
	}
	section, ok := c.Plugins[r.URI()]
	if !ok {
		section, ok = c.Plugins[r.ID]
	}
	if !ok {
		return out, nil
	}
	if _, isTable := section.(map[string]interface{}); !isTable {
		return nil, fmt.Errorf("plugins.%q must be a table: %w", r.URI(), errdefs.ErrInvalidArgument)
	}
	data, err := toml.Marshal(section)
	if err != nil {
		return nil, fmt.Errorf("re-encode section of %s: %w", r.URI(), err)
	}
	if err := strictDecode(ctx, data, out, fmt.Sprintf("plugins.%q", r.URI())); err != nil {
		return nil, fmt.Errorf("plugins.%q: %w", r.URI(), err)
	}
	return out, nil
}
