package server

import (
	"bytes"
	"context"
	"fmt"

	"github.com/berth-containers/berth/plugin"
	toml "github.com/pelletier/go-toml/v2"
)

// RenderConfig writes c as TOML with a section for every registration that
// takes config: its decoded section from c (so the output shows what each
// plugin will actually get) or, when c has none, its defaults.
func RenderConfig(ctx context.Context, c *Config, regs []*plugin.Registration) ([]byte, error) {
	out := *c
	out.Plugins = make(map[string]interface{}, len(c.Plugins)+len(regs))
	for k, v := range c.Plugins {
		out.Plugins[k] = v
	}
	for _, r := range regs {
		if r.Config == nil {
			continue
		}
		v, err := c.DecodePlugin(ctx, r)
		if err != nil {
			return nil, err
		}
		// A v1-style section keyed by id is shown under its full name.
		delete(out.Plugins, r.ID)
		out.Plugins[r.URI()] = v
	}
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(true)
	if err := enc.Encode(&out); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// DefaultTOML is the complete default config: the server's defaults and the
// default section of every registered plugin.
func DefaultTOML(ctx context.Context) ([]byte, error) {
	return RenderConfig(ctx, DefaultConfig(), plugin.Registrations())
}
