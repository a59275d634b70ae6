package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/oci"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/snapshots"
)

// containerFlags are shared by `containers create` and `run`.
var containerFlags = []cli.Flag{
	&cli.BoolFlag{Name: "rootfs", Usage: "use custom rootfs that is not managed by berthd snapshotter"},
	&cli.StringSliceFlag{Name: "label", Usage: "specify additional labels (e.g. foo=bar)"},
	&cli.StringSliceFlag{Name: "env", Usage: "specify additional container environment variables (e.g. FOO=bar)"},
	&cli.StringFlag{Name: "runtime", Usage: "runtime name", Value: client.DefaultRuntime},
	&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a TTY for the container"},
	&cli.StringFlag{Name: "cwd", Usage: "specify the working directory of the process"},
	&cli.StringFlag{Name: "hostname", Usage: "set the container's host name"},
}

// containerCreateCommand creates a record only; `run` and `task start`
// make it run. Without an image (--rootfs), the first argument is a
// directory to use as the root file system.
var containerCreateCommand = &cli.Command{
	Name:      "create",
	Usage:     "create container",
	ArgsUsage: "[flags] Image|RootFS CONTAINER [COMMAND] [ARG...]",
	Flags:     containerFlags,
	Action: func(c *cli.Context) error {
		ref, id := c.Args().Get(0), c.Args().Get(1)
		if ref == "" {
			return errors.New("image ref must be provided")
		}
		if id == "" {
			return errors.New("container id must be provided")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		_, err = newContainer(ctx, c, cl, ref, id, c.Args().Slice()[2:])
		return err
	},
}

// newContainer builds the container record from flags. Image-based
// creation is added by the runtime work (see run.go).
func newContainer(ctx context.Context, c *cli.Context, cl *client.Client, ref, id string, args []string) (_ *client.Container, retErr error) {
	// The lease keeps the snapshot prepared for the container from the
	// garbage collector until the container record references it. It is
	// taken, and the namespace's defaults read, while the image resolves
	// and the spec is built (which need neither): two round trips, one of
	// them a commit, off `ctr run`'s path.
	type leased struct {
		ctx  context.Context
		done func(context.Context) error
		err  error
	}
	lch := make(chan leased, 1)
	go func() {
		lctx, done, err := cl.WithLease(ctx)
		lch <- leased{lctx, done, err}
	}()
	if !c.IsSet("runtime") || !c.IsSet("snapshotter") {
		// The namespace's default runtime and snapshotter (one Get, then
		// cached) are read beside the lease's creation and the image's
		// resolution instead of after either.
		go cl.DefaultRuntimeFor(ctx)
	}
	var lease *leased
	defer func() {
		if lease == nil {
			l := <-lch
			lease = &l
		}
		if lease.err != nil {
			return
		}
		if retErr != nil {
			lease.done(context.WithoutCancel(lease.ctx))
			return
		}
		// The record references the snapshot now, so the lease has done
		// its job: delete it while the task is created rather than
		// before (a round trip and a commit off the path too).
		// newClient's cancel waits for it before ctr exits.
		background.Add(1)
		go func() {
			defer background.Done()
			lease.done(context.WithoutCancel(lease.ctx))
		}()
	}()
	labels, err := parseLabels(c.StringSlice("label"))
	if err != nil {
		return nil, err
	}
	snapLabels, err := parseKeyValues("snapshotter-label", c.StringSlice("snapshotter-label"))
	if err != nil {
		return nil, err
	}
	var specOpts []oci.SpecOpts
	var opts []client.NewContainerOpts
	// A spec file replaces the default spec; every other flag applies on top.
	if path := c.String("config"); path != "" {
		specOpts = append(specOpts, oci.WithSpecFromFile(path))
	}
	if c.Bool("rootfs") {
		if c.Bool("remap-labels") {
			return nil, errors.New("--remap-labels asks the snapshotter to map an image's ids; a --rootfs is used as it is")
		}
		specOpts = append(specOpts, oci.WithRootFSPath(ref))
		// A root file system of the caller's is used as it is: in a user
		// namespace its owners are the caller's to have shifted.
		userns, err := userNamespaceOpt(c)
		if err != nil {
			return nil, err
		}
		if userns != nil {
			specOpts = append(specOpts, userns.opt)
		}
	} else {
		o, so, err := imageContainerOpts(ctx, c, cl, ref, id)
		if err != nil {
			return nil, err
		}
		opts, specOpts = append(opts, o...), append(specOpts, so...)
	}
	more, err := extraSpecOpts(c)
	if err != nil {
		return nil, err
	}
	specOpts = append(specOpts, more...)
	if len(args) > 0 {
		specOpts = append(specOpts, oci.WithProcessArgs(args...))
	}
	if env := c.StringSlice("env"); len(env) > 0 {
		specOpts = append(specOpts, oci.WithEnv(env))
	}
	if c.Bool("tty") {
		specOpts = append(specOpts, oci.WithTTY)
	}
	if cwd := c.String("cwd"); cwd != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(cwd))
	}
	if h := c.String("hostname"); h != "" {
		specOpts = append(specOpts, oci.WithHostname(h))
	}
	runtime := c.String("runtime")
	if !c.IsSet("runtime") {
		runtime = cl.DefaultRuntimeFor(ctx)
	}
	runtimeOpts, err := runcOptions(c, runtime)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		client.WithRuntime(runtime, runtimeOpts),
		client.WithContainerLabels(labels),
		client.WithNewSpec(specOpts...),
	)
	l := <-lch
	lease = &l
	if l.err != nil {
		return nil, l.err
	}
	ct, err := cl.NewContainer(l.ctx, id, opts...)
	if err != nil || len(snapLabels) == 0 || c.Bool("rootfs") {
		return ct, err
	}
	if err := labelSnapshot(l.ctx, ct, snapLabels); err != nil {
		deleteRecordFirst(context.WithoutCancel(ctx), ct, true)
		return nil, err
	}
	return ct, nil
}

// labelSnapshot adds --snapshotter-label's labels to the container's new
// snapshot.
func labelSnapshot(ctx context.Context, ct *client.Container, labels map[string]string) error {
	info, err := ct.Info(ctx)
	if err != nil {
		return err
	}
	if info.SnapshotKey == "" {
		return nil
	}
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	_, err = ct.Client().SnapshotService(info.Snapshotter).Update(ctx,
		snapshots.Info{Name: info.SnapshotKey, Labels: labels}, paths...)
	if err != nil {
		return fmt.Errorf("label snapshot %q: %w", info.SnapshotKey, err)
	}
	return nil
}

// imageContainerOpts is replaced by the image-aware version once images
// can be unpacked; until then only --rootfs works.
var imageContainerOpts = func(ctx context.Context, c *cli.Context, cl *client.Client, ref, id string) ([]client.NewContainerOpts, []oci.SpecOpts, error) {
	return nil, nil, errors.New("creating a container from an image is not implemented yet; use --rootfs DIR")
}

// deleteContainer deletes a container (and its snapshot unless kept), as
// containerd's ctr does: a task that is stopped or only created is deleted
// first; a running or paused one makes it an error, and nothing is touched.
func deleteContainer(ctx context.Context, cl *client.Client, id string, withSnapshot bool) error {
	ct, err := cl.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	task, err := ct.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return err
	default:
		st, err := task.Status(ctx)
		if err != nil {
			return err
		}
		if st.Status != client.Stopped && st.Status != client.Created {
			return fmt.Errorf("cannot delete a non stopped container: task is %s", st.Status)
		}
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return deleteRecordFirst(ctx, ct, withSnapshot)
}

// deleteLoaded deletes the container ctr just ran and whose task it has
// deleted (or never made), with no round trip to load it again; the
// record and the snapshot go in two requests at once.
func deleteLoaded(ctx context.Context, ct *client.Container, withSnapshot bool) error {
	return ct.DeleteTaskless(ctx, snapshotCleanup(withSnapshot)...)
}

// deleteRecordFirst deletes the container of a handle ctr holds whose
// task may be left: the record first, then the snapshot (see Delete).
func deleteRecordFirst(ctx context.Context, ct *client.Container, withSnapshot bool) error {
	return ct.Delete(ctx, snapshotCleanup(withSnapshot)...)
}

func snapshotCleanup(withSnapshot bool) []client.DeleteOpts {
	if withSnapshot && deleteSnapshotOpt != nil {
		return []client.DeleteOpts{deleteSnapshotOpt}
	}
	return nil
}

// deleteSnapshotOpt removes the container's snapshot; set by the images work.
var deleteSnapshotOpt client.DeleteOpts
