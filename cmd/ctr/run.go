package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/oci"
)

func consoleCurrent() console.Console { return console.Current() }

// runFlags are run's own flags beside the container flags.
var runFlags = []cli.Flag{
	&cli.BoolFlag{Name: "rm", Usage: "remove the container after running, cannot be used with --detach"},
	&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the task after it has started execution"},
	&cli.StringFlag{Name: "pid-file", Usage: "file path to write the task's pid"},
}

// moreContainerFlags complete the container flags shared with `create`.
var moreContainerFlags = []cli.Flag{
	&cli.StringSliceFlag{Name: "env-file", Usage: "specify additional container environment variables in a file(s)"},
	&cli.StringSliceFlag{Name: "mount", Usage: "specify additional container mount (e.g. type=bind,src=/tmp,dst=/host,options=rbind:ro)"},
	&cli.BoolFlag{Name: "net-host", Usage: "enable host networking for the container"},
	&cli.BoolFlag{Name: "privileged", Usage: "run privileged container"},
	&cli.BoolFlag{Name: "read-only", Usage: "set the containers filesystem as readonly"},
	&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "username or user id, group optional (format: <name|uid>[:<group|gid>])"},
	&cli.StringFlag{Name: "memory-limit", Usage: "memory limit (in bytes) for the container"},
	&cli.Float64Flag{Name: "cpus", Usage: "set the CFS cpu quota", Value: 0},
	&cli.Uint64Flag{Name: "cpu-shares", Usage: "set the cpu shares"},
	&cli.StringFlag{Name: "snapshotter", Usage: "snapshotter name", EnvVars: []string{"BERTH_SNAPSHOTTER", "CONTAINERD_SNAPSHOTTER"}},
	&cli.StringFlag{Name: "platform", Usage: "run image for specific platform"},
	&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "path to the runtime-specific spec config file"},
	&cli.BoolFlag{Name: "seccomp", Usage: "enable the default seccomp profile"},
	&cli.BoolFlag{Name: "pull", Usage: "pull the image first if it is not present"},
}

func init() {
	containerCreateCommand.Flags = append(containerCreateCommand.Flags, moreContainerFlags...)
}

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "run a container",
	ArgsUsage: "[flags] Image|RootFS ID [COMMAND] [ARG...]",
	Flags:     append(append(append(append([]cli.Flag{}, containerFlags...), moreContainerFlags...), runFlags...), ioFlags...),
	Action: func(c *cli.Context) error {
		ref, id := c.Args().Get(0), c.Args().Get(1)
		if ref == "" {
			return errors.New("image ref must be provided")
		}
		if id == "" {
			return errors.New("container id must be provided")
		}
		if c.Bool("rm") && c.Bool("detach") {
			return errors.New("flags --detach and --rm cannot be specified together")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		ct, err := newContainer(ctx, c, cl, ref, id, c.Args().Slice()[2:])
		if err != nil {
			return err
		}
		err = startTask(ctx, c, ct, c.Bool("tty"), c.Bool("detach"), c.Bool("rm"))
		if err != nil && c.Bool("rm") {
			if _, ok := err.(cli.ExitCoder); !ok {
				// A task that never ran leaves its container behind
				// unless we clean up here.
				deleteRecordFirst(ctx, ct, true)
			}
		}
		return err
	},
}

// extraSpecOpts turns the shared container flags into spec options.
func extraSpecOpts(c *cli.Context) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	for _, f := range c.StringSlice("env-file") {
		env, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oci.WithEnv(env))
	}
	for _, m := range c.StringSlice("mount") {
		mnt, err := parseMountFlag(m)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oci.WithMounts([]specs.Mount{mnt}))
	}
	if c.Bool("net-host") {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	}
	if c.Bool("privileged") {
		opts = append(opts, oci.WithPrivileged)
	}
	if c.Bool("read-only") {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if u := c.String("user"); u != "" {
		opts = append(opts, oci.WithUser(u))
	}
	if l := c.String("memory-limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("invalid --memory-limit %q: want a positive number of bytes", l)
		}
		opts = append(opts, oci.WithMemoryLimit(n))
	}
	if cpus := c.Float64("cpus"); cpus > 0 {
		opts = append(opts, oci.WithCPUs(cpus))
	}
	if s := c.Uint64("cpu-shares"); s > 0 {
		opts = append(opts, oci.WithCPUShares(s))
	}
	if c.Bool("seccomp") {
		opts = append(opts, oci.WithDefaultSeccomp())
	}
	return opts, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	var env []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		env = append(env, line)
	}
	return env, s.Err()
}

// parseMountFlag parses type=bind,src=/a,dst=/b,options=rbind:ro.
func parseMountFlag(s string) (specs.Mount, error) {
	var m specs.Mount
	for _, field := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return m, fmt.Errorf("invalid mount %q: field %q is not key=value", s, field)
		}
		switch k {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "destination", "dst", "target":
			m.Destination = v
		case "options":
			m.Options = strings.Split(v, ":")
		default:
			return m, fmt.Errorf("invalid mount %q: unknown key %q", s, k)
		}
	}
	if m.Destination == "" || !strings.HasPrefix(m.Destination, "/") {
		return m, fmt.Errorf("invalid mount %q: destination must be an absolute path", s)
	}
	if m.Type == "" {
		m.Type = "bind"
	}
	if m.Type == "bind" && len(m.Options) == 0 {
		m.Options = []string{"rbind"}
	}
	return m, nil
}
