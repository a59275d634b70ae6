package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/errdefs"
)

func init() {
	containersCommand.Subcommands = append(containersCommand.Subcommands, containerCheckpointCommand, containerRestoreCommand)
}

// containerCheckpointCommand is containerd 1.6's `ctr containers
// checkpoint`: an image REF whose target is an index describing the
// container (spec, runtime, snapshotter, image name; with --image the
// image, with --rw the writable layer, with --task the task's checkpoint).
// A running task is paused while the checkpoint is taken.
var containerCheckpointCommand = &cli.Command{
	Name: "checkpoint", Usage: "checkpoint a container", ArgsUsage: "CONTAINER REF",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "rw", Usage: "include the rw layer in the checkpoint"},
		&cli.BoolFlag{Name: "image", Usage: "include the image in the checkpoint"},
		&cli.BoolFlag{Name: "task", Usage: "checkpoint container task"},
	},
	Action: func(c *cli.Context) error {
		id, ref, err := containerAndRef(c)
		if err != nil {
			return err
		}
		var opts []client.CheckpointOpt
		if c.Bool("image") {
			opts = append(opts, client.WithCheckpointImage)
		}
		if c.Bool("rw") {
			opts = append(opts, client.WithCheckpointRW)
		}
		if c.Bool("task") {
			opts = append(opts, client.WithCheckpointTask)
		}
		return withContainer(c, id, func(ctx context.Context, cl *client.Client, ct *client.Container) error {
			t, err := ct.Task(ctx, nil)
			if err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			if t != nil {
				st, err := t.Status(ctx)
				if err != nil {
					return err
				}
				if st.Status == client.Running {
					if err := t.Pause(ctx); err != nil {
						return fmt.Errorf("pause task %q: %w", id, err)
					}
					defer func() {
						if err := t.Resume(context.WithoutCancel(ctx)); err != nil {
							fmt.Fprintf(os.Stderr, "error resuming task: %v\n", err)
						}
					}()
				}
			}
			if _, err := ct.Checkpoint(ctx, ref, opts...); err != nil {
				if errdefs.IsNotImplemented(err) && c.Bool("task") {
					return fmt.Errorf("%w (task checkpoints need CRIU; no image was created)", err)
				}
				return err
			}
			return nil
		})
	},
}

// containerRestoreCommand is containerd 1.6's `ctr containers restore`
// without the task: it creates container CONTAINER from checkpoint image
// REF (containerd's argument order)
// (spec, runtime, a new snapshot of the image, with --rw the rw layer
// applied). --live, restoring the task, needs CRIU and is refused before
// anything is created.
var containerRestoreCommand = &cli.Command{
	Name: "restore", Usage: "restore a container from checkpoint", ArgsUsage: "CONTAINER REF",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "rw", Usage: "restore the rw layer from the checkpoint"},
		&cli.BoolFlag{Name: "live", Usage: "restore the runtime and memory data from the checkpoint"},
	},
	Action: func(c *cli.Context) error {
		id, ref, err := containerAndRef(c)
		if err != nil {
			return err
		}
		if c.Bool("live") {
			return fmt.Errorf("restore --live: restoring a task from a checkpoint needs CRIU: %w", errdefs.ErrNotImplemented)
		}
		var opts []client.RestoreOpt
		if c.Bool("rw") {
			opts = append(opts, client.WithRestoreRW)
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		img, err := cl.GetImage(ctx, ref)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return fmt.Errorf("checkpoint image %q: not found (pull or import it first): %w", ref, err)
			}
			return err
		}
		ct, err := cl.Restore(ctx, id, img, opts...)
		if err != nil {
			return err
		}
		// As containerd's ctr: the restored container's task starts
		// attached (a terminal if its spec has one), and ctr exits with
		// its code.
		spec, err := ct.Spec(ctx)
		if err != nil {
			return err
		}
		return startTask(ctx, c, ct, spec.Process != nil && spec.Process.Terminal, false, false, nil)
	},
}

// containerAndRef are the CONTAINER REF arguments both commands take.
func containerAndRef(c *cli.Context) (id, ref string, err error) {
	id, ref = c.Args().First(), c.Args().Get(1)
	if id == "" {
		return "", "", errors.New("container id must be provided")
	}
	if ref == "" {
		return "", "", errors.New("ref must be provided")
	}
	return id, ref, nil
}
