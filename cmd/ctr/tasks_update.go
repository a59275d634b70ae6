package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
)

// maxResourcesFile bounds --resources: a resources document is a few KB.
const maxResourcesFile = 1 << 20

// taskUpdateCommand is containerd's `ctr tasks update`: a running task's
// cgroup limits from a runtime-spec resources document and/or flags.
var taskUpdateCommand = &cli.Command{
	Name:      "update",
	Usage:     "update a live task's resources",
	ArgsUsage: "[flags] CONTAINER",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Usage: "path to the runtime-specific spec resources file (`-` for stdin)"},
		&cli.Int64Flag{Name: "cpu-quota", Usage: "set the cpu quota", Value: -1},
		&cli.Uint64Flag{Name: "cpu-period", Usage: "set the cpu period"},
		&cli.Int64Flag{Name: "memory-limit", Usage: "set the memory limit (bytes)"},
	},
	Action: func(c *cli.Context) error {
		r, err := updateResources(c)
		if err != nil {
			return err
		}
		return withTask(c, c.Args().First(), func(ctx context.Context, _ *client.Client, t *client.Task) error {
			return t.Update(ctx, r)
		})
	},
}

// updateResources builds the resources to set from --resources, then the
// flags on top of it.
func updateResources(c *cli.Context) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if path := c.String("resources"); path != "" {
		var in io.Reader = os.Stdin
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return nil, fmt.Errorf("resources: %w", err)
			}
			defer f.Close()
			in = f
		}
		b, err := io.ReadAll(io.LimitReader(in, maxResourcesFile+1))
		if err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		if len(b) > maxResourcesFile {
			return nil, fmt.Errorf("resources: larger than %d bytes", maxResourcesFile)
		}
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("resources %s: not a runtime-spec LinuxResources document: %w", path, err)
		}
	}
	if c.IsSet("cpu-quota") || c.IsSet("cpu-period") {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if c.IsSet("cpu-quota") {
			q := c.Int64("cpu-quota")
			if q < -1 || q == 0 {
				return nil, fmt.Errorf("invalid --cpu-quota %d: want -1 (no limit) or a positive number of microseconds", q)
			}
			r.CPU.Quota = &q
		}
		if c.IsSet("cpu-period") {
			p := c.Uint64("cpu-period")
			if p == 0 {
				return nil, errors.New("invalid --cpu-period 0: want a positive number of microseconds")
			}
			r.CPU.Period = &p
		}
	}
	if c.IsSet("memory-limit") {
		m := c.Int64("memory-limit")
		if m <= 0 {
			return nil, fmt.Errorf("invalid --memory-limit %d: want a positive number of bytes", m)
		}
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		r.Memory.Limit = &m
	}
	return r, nil
}
