package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	runcoptions "github.com/berth-containers/berth/api/runtime/runc/options"
	tasksapi "github.com/berth-containers/berth/api/services/tasks/v1"
	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/typeurl"
)

// taskCheckpointCommand asks the daemon to checkpoint a task with the
// flags containerd's ctr has. berthd answers NotImplemented (CRIU does not
// run on the kernels we test on), which ctr reports; a daemon that does
// checkpoint answers with the checkpoint's blobs, which are listed.
var taskCheckpointCommand = &cli.Command{
	Name: "checkpoint", Usage: "checkpoint a container", ArgsUsage: "[flags] CONTAINER",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "exit", Usage: "stop the container after the checkpoint"},
		&cli.StringFlag{Name: "image-path", Usage: "path to criu image files"},
		&cli.StringFlag{Name: "work-path", Usage: "path to criu work files and logs"},
	},
	Action: func(c *cli.Context) error {
		return withTask(c, c.Args().First(), func(ctx context.Context, cl *client.Client, t *client.Task) error {
			opts, err := typeurl.MarshalAny(&runcoptions.CheckpointOptions{
				Exit:      c.Bool("exit"),
				ImagePath: c.String("image-path"),
				WorkPath:  c.String("work-path"),
			})
			if err != nil {
				return err
			}
			r, err := cl.TaskService().Checkpoint(ctx, &tasksapi.CheckpointTaskRequest{ContainerId: t.ID(), Options: opts})
			if err != nil {
				return fmt.Errorf("checkpoint %s: %w", t.ID(), err)
			}
			for _, d := range r.Descriptors {
				fmt.Printf("%s\t%s\t%d\n", d.Digest, d.MediaType, d.Size)
			}
			return nil
		})
	},
}
