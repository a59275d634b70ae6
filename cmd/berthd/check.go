package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/berth-containers/berth/pkg/preflight"
	"github.com/berth-containers/berth/plugin"
	v2 "github.com/berth-containers/berth/runtime/v2"
	"github.com/berth-containers/berth/services/server"
)

// runCheck is "berthd check": the host's preflight checks, the config and
// every plugin's section.
func runCheck(c *cliContext) error {
	ctx := c.Context
	opts := preflight.Options{Root: server.DefaultRootDir}
	cfg, cfgErr := loadConfig(c)
	var extra []preflight.Check
	if cfgErr != nil {
		if v := c.global.root; v != "" {
			opts.Root = v
		}
		extra = append(extra, preflight.Check{Name: "config", Run: func(context.Context) preflight.Result {
			return preflight.Result{Status: preflight.Fail, What: fmt.Sprintf("config %s does not load", c.global.config), Why: cfgErr.Error()}
		}})
	} else {
		opts.Root = cfg.Root
		opts.Shims, opts.Runc = runtimeBinaries(ctx, cfg)
		extra = append(extra,
			preflight.Check{Name: "config", Run: func(context.Context) preflight.Result {
				what := fmt.Sprintf("config %s loads", c.global.config)
				if _, err := os.Stat(c.global.config); err != nil {
					what = fmt.Sprintf("config %s absent; defaults apply", c.global.config)
				}
				return preflight.Result{Status: preflight.OK, What: what, Why: fmt.Sprintf("root %s, state %s, socket %s", cfg.Root, cfg.State, cfg.GRPC.Address)}
			}},
			preflight.Check{Name: "plugins", Run: func(context.Context) preflight.Result { return checkPluginConfigs(ctx, cfg) }},
		)
	}
	opts.Extra = extra
	results := preflight.Run(ctx, preflight.Checks(opts))

	if c.json {
		out := struct {
			Config interface{}        `json:"config,omitempty"`
			Checks []preflight.Result `json:"checks"`
			OK     bool               `json:"ok"`
		}{Checks: results, OK: !preflight.Failed(results)}
		if cfg != nil {
			conf, err := configAsMap(ctx, cfg)
			if err != nil {
				return err
			}
			out.Config = conf
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("encode check results: %w", err)
		}
	} else {
		fmt.Print(preflight.Format(results))
	}
	if preflight.Failed(results) {
		return &exitError{code: 1}
	}
	return nil
}

// runtimeBinaries returns the shim binaries the configured runtimes run and
// the runc binary their options name (empty: runc).
func runtimeBinaries(ctx context.Context, cfg *server.Config) (shims []string, runc string) {
	for _, r := range plugin.Registrations() {
		if r.Type != plugin.RuntimePluginV2 {
			continue
		}
		dec, err := cfg.DecodePlugin(ctx, r)
		if err != nil {
			continue // reported by the plugins check
		}
		rc, ok := dec.(*v2.Config)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		names := make([]string, 0, len(rc.Runtimes))
		for name := range rc.Runtimes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			rt := rc.Runtimes[name]
			bin := rt.Binary
			if bin == "" {
				parts := strings.Split(name, ".")
				if len(parts) < 2 {
					continue
				}
				bin = fmt.Sprintf("containerd-shim-%s-%s", parts[len(parts)-2], parts[len(parts)-1])
			}
			if !seen[bin] {
				seen[bin] = true
				shims = append(shims, bin)
			}
			if runc == "" && rt.BinaryName != "" {
				runc = rt.BinaryName
			}
		}
	}
	return shims, runc
}

// checkPluginConfigs decodes every plugin's section: the cheap half of
// whether each plugin would start.
func checkPluginConfigs(ctx context.Context, cfg *server.Config) preflight.Result {
	disabled := plugin.Disabled(cfg.DisabledPlugins)
	var bad []string
	n := 0
	for _, r := range plugin.Registrations() {
		if disabled(r) {
			continue
		}
		n++
		if _, err := cfg.DecodePlugin(ctx, r); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if _, err := plugin.Graph(disabled); err != nil {
		bad = append(bad, err.Error())
	}
	if len(bad) > 0 {
		return preflight.Result{Status: preflight.Fail, What: fmt.Sprintf("%d of %d plugin sections do not load", len(bad), n), Why: strings.Join(bad, "; ")}
	}
	why := "every section decodes and the dependency order resolves"
	if len(cfg.DisabledPlugins) > 0 {
		why += "; disabled: " + strings.Join(cfg.DisabledPlugins, ", ")
	}
	return preflight.Result{Status: preflight.OK, What: fmt.Sprintf("%d plugins configured", n), Why: why}
}

// configAsMap is the config as berthd would run with it (plugin sections
// included), keyed as in the TOML file.
func configAsMap(ctx context.Context, cfg *server.Config) (map[string]interface{}, error) {
	data, err := server.RenderConfig(ctx, cfg, plugin.Registrations())
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	var m map[string]interface{}
	if err := toml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("re-read config: %w", err)
	}
	return m, nil
}
