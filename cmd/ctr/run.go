package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/berth-containers/berth/api/runtime/runc/options"
	runtimeoptions "github.com/berth-containers/berth/api/runtime/runtimeoptions/v1"
	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/oci"
	"github.com/berth-containers/berth/pkg/typeurl"
)

func consoleCurrent() console.Console { return console.Current() }

// runFlags are run's own flags beside the container flags.
var runFlags = []cli.Flag{
	&cli.BoolFlag{Name: "rm", Usage: "remove the container after running, cannot be used with --detach"},
	&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the task after it has started execution"},
	&cli.StringFlag{Name: "cgroup", Usage: "cgroup path (To disable use of cgroup, set to \"\" explicitly)"},
	&cli.StringFlag{Name: "runc-binary", Usage: "specify runc-compatible binary"},
	&cli.StringFlag{Name: "runc-root", Usage: "specify runc-compatible root"},
	&cli.BoolFlag{Name: "runc-systemd-cgroup", Usage: "start runc with systemd cgroup manager"},
	&cli.BoolFlag{Name: "cni", Usage: "enable cni networking for the container"},
	&cli.StringFlag{Name: "uidmap", Usage: "run inside a user namespace with the specified UID mapping range; specified with the format `container-uid:host-uid:length`"},
	&cli.StringFlag{Name: "gidmap", Usage: "run inside a user namespace with the specified GID mapping range; specified with the format `container-gid:host-gid:length`"},
	&cli.BoolFlag{Name: "remap-labels", Usage: "provide the user namespace ID remapping to the snapshotter via label options (containerd.io/snapshot/uidmapping, gidmapping) instead of a chowned copy of the image; our overlay and native snapshotters map the ids with idmapped mounts"},
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
	&cli.StringFlag{Name: "runtime-config-path", Usage: "optional runtime config path: a TOML file of runc options (BinaryName, Root, SystemdCgroup, …) the shim reads when the task starts"},
	&cli.BoolFlag{Name: "seccomp", Usage: "enable the default seccomp profile"},
	&cli.StringSliceFlag{Name: "snapshotter-label", Usage: "labels added to the new snapshot for this container"},
	&cli.StringSliceFlag{Name: "annotation", Usage: "specify additional OCI annotations (e.g. foo=bar)"},
	&cli.StringSliceFlag{Name: "with-ns", Usage: "specify existing Linux namespaces to join at container runtime (format '<nstype>:<path>')"},
	// As containerd's, create accepts --pid-file and ignores it; run
	// writes the task's pid there.
	&cli.StringFlag{Name: "pid-file", Usage: "file path to write the task's pid"},
	&cli.BoolFlag{Name: "allow-new-privs", Usage: "turn off OCI spec's NoNewPrivileges feature flag"},
	&cli.StringSliceFlag{Name: "device", Usage: "file path to a device to add to the container; or a path to a directory tree of devices to add to the container"},
	&cli.StringSliceFlag{Name: "cap-add", Usage: "add Linux capabilities (Set capabilities with 'CAP_' prefix)"},
	&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop Linux capabilities (Set capabilities with 'CAP_' prefix, or ALL)"},
	&cli.StringFlag{Name: "seccomp-profile", Usage: "file path to custom seccomp profile. seccomp must be set to true, before using seccomp-profile"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "disable use of pivot-root (linux only)"},
	&cli.Int64Flag{Name: "cpu-quota", Usage: "Limit CPU CFS quota", Value: -1},
	&cli.Uint64Flag{Name: "cpu-period", Usage: "Limit CPU CFS period", Value: 0},
	&cli.StringFlag{Name: "rootfs-propagation", Usage: "set the propagation of the container rootfs"},
	&cli.StringFlag{Name: "apparmor-profile", Usage: "enable AppArmor with an existing custom profile"},
	&cli.IntSliceFlag{Name: "gpus", Usage: "add gpus to the container (NVIDIA's, through nvidia-container-cli from a prestart hook)"},
	&cli.StringFlag{Name: "rdt-class", Usage: "name of the RDT class to associate the container with. Specifies a Class of Service (CLOS) for cache and memory bandwidth management."},
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
		var network *cniNetwork
		if c.Bool("cni") {
			if c.Bool("net-host") {
				return errors.New("--cni and --net-host cannot be used together")
			}
			var err error
			if network, err = loadCNI(c.String("namespace")); err != nil {
				return err
			}
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
		err = startTask(ctx, c, ct, c.Bool("tty"), c.Bool("detach"), c.Bool("rm"), network)
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
	if p := c.String("seccomp-profile"); p != "" {
		if !c.Bool("seccomp") {
			return nil, errors.New("seccomp must be set to true, if using a custom seccomp-profile")
		}
		opts = append(opts, oci.WithSeccompProfile(p))
	} else if c.Bool("seccomp") {
		opts = append(opts, oci.WithDefaultSeccomp())
	}
	more, err := moreSpecOpts(c)
	if err != nil {
		return nil, err
	}
	return append(opts, more...), nil
}

// moreSpecOpts turns the flags containerd's ctr has beside the common
// ones (annotations, capabilities, devices, CFS, namespaces to join,
// privileges, cgroup, rootfs propagation) into spec options, checking
// each value first.
func moreSpecOpts(c *cli.Context) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if a := c.StringSlice("annotation"); len(a) > 0 {
		annotations, err := parseKeyValues("annotation", a)
		if err != nil {
			return nil, err
		}
		opts = append(opts, oci.WithAnnotations(annotations))
	}
	add, err := capabilityFlag(c, "cap-add")
	if err != nil {
		return nil, err
	}
	drop, err := capabilityFlag(c, "cap-drop")
	if err != nil {
		return nil, err
	}
	// containerd adds, then drops. Dropping ALL (our extension, Docker's
	// spelling) comes first instead, so --cap-drop ALL --cap-add X keeps X.
	var dropRest []string
	for _, d := range drop {
		if d == "ALL" {
			opts = append(opts, oci.WithDroppedCapabilities([]string{"ALL"}))
		} else {
			dropRest = append(dropRest, d)
		}
	}
	if len(add) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(add))
	}
	if len(dropRest) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(dropRest))
	}
	quota, period := c.Int64("cpu-quota"), c.Uint64("cpu-period")
	if quota != -1 || period != 0 {
		if c.Float64("cpus") > 0 {
			return nil, errors.New("cpus and quota/period should be used separately")
		}
		if quota != -1 && quota < 1000 {
			return nil, fmt.Errorf("invalid --cpu-quota %d: want -1 (no limit) or at least 1000 microseconds", quota)
		}
		if period != 0 && (period < 1000 || period > 1000000) {
			return nil, fmt.Errorf("invalid --cpu-period %d: want 1000 to 1000000 microseconds", period)
		}
		opts = append(opts, oci.WithCPUCFS(quota, period))
	}
	for _, ns := range c.StringSlice("with-ns") {
		parts := strings.Split(ns, ":")
		if len(parts) != 2 {
			return nil, fmt.Errorf("invalid --with-ns %q: joining a Linux namespace using --with-ns requires the format 'nstype:path'", ns)
		}
		typ := specs.LinuxNamespaceType(parts[0])
		if !oci.JoinableNamespace(typ) {
			return nil, fmt.Errorf("invalid --with-ns %q: the Linux namespace type %q is not valid (pid, network, mount, uts, ipc, user, cgroup)", ns, parts[0])
		}
		if !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("invalid --with-ns %q: the namespace path must be absolute", ns)
		}
		opts = append(opts, oci.WithNamespacePath(typ, parts[1]))
	}
	if c.Bool("allow-new-privs") {
		opts = append(opts, oci.WithNoNewPrivileges(false))
	}
	if c.IsSet("cgroup") {
		// "" explicitly asks for no cgroups path.
		opts = append(opts, oci.WithCgroup(c.String("cgroup")))
	}
	for _, dev := range c.StringSlice("device") {
		if _, err := os.Stat(dev); err != nil {
			return nil, fmt.Errorf("invalid --device: %w", err)
		}
		opts = append(opts, oci.WithDevices(dev, "", "rwm"))
	}
	if p := c.String("rootfs-propagation"); p != "" {
		opts = append(opts, oci.WithRootfsPropagation(p))
	}
	if c.IsSet("apparmor-profile") {
		opts = append(opts, oci.WithApparmorProfile(c.String("apparmor-profile")))
	}
	if c.IsSet("rdt-class") {
		opts = append(opts, oci.WithRdt(c.String("rdt-class")))
	}
	if c.IsSet("gpus") {
		o, err := gpuOpt(c.IntSlice("gpus"))
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	return opts, nil
}

// gpuOpt is --gpus: the prestart hook `berthd oci-hook` runs
// nvidia-container-cli from, both found on PATH now, as containerd's ctr
// finds `containerd` and the CLI.
func gpuOpt(devices []int) (oci.SpecOpts, error) {
	var paths [2]string
	for i, name := range []string{"berthd", oci.NvidiaCLI} {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("--gpus: %w", err)
		}
		if paths[i], err = filepath.Abs(p); err != nil {
			return nil, fmt.Errorf("--gpus: %w", err)
		}
	}
	return oci.WithNvidiaGPUs(paths[0], paths[1], devices, os.Environ()), nil
}

// capabilityFlag is a capability flag's values, each CAP_NAME (as
// containerd's ctr wants) and known, or ALL.
func capabilityFlag(c *cli.Context, name string) ([]string, error) {
	caps := c.StringSlice(name)
	for _, cp := range caps {
		if cp == "ALL" {
			continue
		}
		if !strings.HasPrefix(cp, "CAP_") {
			return nil, fmt.Errorf("invalid --%s %q: capabilities must be specified with 'CAP_' prefix", name, cp)
		}
		if !oci.KnownCapability(cp) {
			return nil, fmt.Errorf("invalid --%s %q: unknown capability", name, cp)
		}
	}
	return caps, nil
}

// parseKeyValues parses KEY=VALUE arguments of flag name; the "=" is
// required and the key must not be empty.
func parseKeyValues(name string, args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid --%s %q: want KEY=VALUE", name, a)
		}
		out[k] = v
	}
	return out, nil
}

// runcOptions is the runc shim options message the runc flags ask for,
// or nil when none is set. It is stored as the container's runtime
// options, so the task gets it however it is started (run, or create then
// task start).
func runcOptions(c *cli.Context, runtime string) (*anypb.Any, error) {
	binary, root := c.String("runc-binary"), c.String("runc-root")
	systemd, noPivot := c.Bool("runc-systemd-cgroup"), c.Bool("no-pivot")
	runcFlags := binary != "" || root != "" || systemd || noPivot
	if p := c.String("runtime-config-path"); p != "" {
		// The shim reads the file (as containerd's non-runc shims do), so
		// it must be absolute; checking it here fails early and clearly.
		if runcFlags {
			return nil, errors.New("--runtime-config-path cannot be combined with --runc-binary, --runc-root, --runc-systemd-cgroup or --no-pivot")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if st, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--runtime-config-path: %w", err)
		} else if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("--runtime-config-path %s: not a regular file", abs)
		}
		return typeurl.MarshalAny(&runtimeoptions.Options{ConfigPath: abs})
	}
	if !runcFlags {
		return nil, nil
	}
	if runtime != client.DefaultRuntime && runtime != "io.containerd.berth.v2" {
		return nil, fmt.Errorf("--runc-binary, --runc-root, --runc-systemd-cgroup and --no-pivot are only supported for the %q and \"io.containerd.berth.v2\" runtimes, not %q", client.DefaultRuntime, runtime)
	}
	if systemd && c.String("cgroup") == "" {
		// runc maps "machine.slice:foo:deadbeef" to "/machine.slice/foo-deadbeef.scope".
		return nil, errors.New("option --runc-systemd-cgroup requires --cgroup to be set, e.g. \"machine.slice:foo:deadbeef\"")
	}
	return typeurl.MarshalAny(&options.Options{BinaryName: binary, Root: root, SystemdCgroup: systemd, NoPivotRoot: noPivot})
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
