package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
)

// testPluginConfig exercises nested tables, maps, lists and durations.
type testPluginConfig struct {
	Size     int64             `toml:"size"`
	Names    []string          `toml:"names"`
	Runtimes map[string]string `toml:"runtimes"`
	Timeout  time.Duration     `toml:"timeout"`
	Nested   struct {
		Path string `toml:"path"`
	} `toml:"nested"`
}

func defaultTestPluginConfig() *testPluginConfig {
	return &testPluginConfig{
		Size:     64,
		Names:    []string{"a", "b"},
		Runtimes: map[string]string{"io.containerd.runc.v2": "containerd-shim-berth-v2"},
		Timeout:  3 * time.Second,
	}
}

var testConfigReg = &plugin.Registration{
	Type:   plugin.InternalPlugin,
	ID:     "servertest-config",
	Config: defaultTestPluginConfig(),
	InitFn: func(ic *plugin.InitContext) (interface{}, error) { return ic.Config, nil },
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultConfigRoundTrip(t *testing.T) {
	ctx := context.Background()
	data, err := DefaultTOML(ctx)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"version = 2", "root = '/var/lib/berth'", "state = '/run/berth'",
		"[grpc]", "address = '/run/berth/berth.sock'", "[ttrpc]", "[debug]",
		"[plugins.'io.containerd.internal.v1.servertest-config']",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("default TOML lacks %q:\n%s", want, text)
		}
	}

	got := DefaultConfig()
	if err := LoadConfig(ctx, writeFile(t, text), got); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	gotPlugins := got.Plugins
	got.Plugins, want.Plugins = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", got, want)
	}
	got.Plugins = gotPlugins
	pc, err := got.DecodePlugin(ctx, testConfigReg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pc, defaultTestPluginConfig()) {
		t.Fatalf("plugin config round trip: %+v", pc)
	}
	if got.TTRPCAddress() != "/run/berth/berth.sock.ttrpc" {
		t.Fatalf("ttrpc address %q", got.TTRPCAddress())
	}
}

func TestLoadConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		body  string
		check func(*testing.T, *Config)
		err   string
	}{
		{
			name: "overrides",
			body: `
version = 2
root = "/srv/berth"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "zfs"]
unknown_top = 1
[grpc]
  address = "/tmp/b.sock"
  gid = 42
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.servertest-config"]
  size = 7
  timeout = 1000
  unknown_in_plugin = true
  [plugins."io.containerd.internal.v1.servertest-config".runtimes]
    "io.containerd.kata.v2" = "kata"
`,
			check: func(t *testing.T, c *Config) {
				if c.Root != "/srv/berth" || c.State != DefaultStateDir || c.GRPC.GID != 42 || c.Debug.Level != "debug" {
					t.Errorf("config %+v", c)
				}
				if len(c.DisabledPlugins) != 2 {
					t.Errorf("disabled %v", c.DisabledPlugins)
				}
				if c.TTRPCAddress() != "/tmp/b.sock.ttrpc" {
					t.Errorf("ttrpc follows grpc: %q", c.TTRPCAddress())
				}
				v, err := c.DecodePlugin(ctx, testConfigReg)
				if err != nil {
					t.Fatal(err)
				}
				pc := v.(*testPluginConfig)
				if pc.Size != 7 || pc.Timeout != time.Microsecond || !reflect.DeepEqual(pc.Names, []string{"a", "b"}) {
					t.Errorf("plugin config %+v", pc)
				}
				// Sections merge over the defaults' maps...
				if len(pc.Runtimes) != 2 {
					t.Errorf("runtimes %v", pc.Runtimes)
				}
				// ...without touching the registration's defaults.
				if len(testConfigReg.Config.(*testPluginConfig).Runtimes) != 1 {
					t.Errorf("defaults mutated: %v", testConfigReg.Config)
				}
			},
		},
		{
			name: "version 1 section keyed by id",
			body: "[plugins.servertest-config]\nsize = 9\n",
			check: func(t *testing.T, c *Config) {
				v, err := c.DecodePlugin(ctx, testConfigReg)
				if err != nil || v.(*testPluginConfig).Size != 9 || c.Version != 2 {
					t.Errorf("%+v %v", v, err)
				}
			},
		},
		{name: "unsupported version", body: "version = 3\n", err: "unsupported config version 3"},
		{name: "syntax", body: "root = \n", err: "line 1"},
		{name: "relative root", body: "root = \"var/lib\"\n", err: "must be an absolute path"},
		{name: "wrong type", body: "[grpc]\naddress = 5\n", err: "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			err := LoadConfig(ctx, writeFile(t, tc.body), c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if !errdefs.IsInvalidArgument(err) {
					t.Errorf("err %v is not InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}

	err := LoadConfig(ctx, filepath.Join(t.TempDir(), "none.toml"), DefaultConfig())
	if !errors.Is(err, os.ErrNotExist) || !errdefs.IsNotFound(err) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPluginSectionMustBeTable(t *testing.T) {
	c := DefaultConfig()
	if err := LoadConfig(context.Background(), writeFile(t, "[plugins]\n'io.containerd.internal.v1.servertest-config' = 3\n"), c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DecodePlugin(context.Background(), testConfigReg); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err %v", err)
	}
}
