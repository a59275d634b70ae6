package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/cio"
	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/errdefs"
)

func init() {
	extraCommands = append(extraCommands, tasksCommand, runCommand)
}

var tasksCommand = &cli.Command{
	Name:    "tasks",
	Aliases: []string{"t", "task"},
	Usage:   "manage tasks",
	Subcommands: []*cli.Command{
		taskStartCommand,
		{
			Name: "list", Aliases: []string{"ls"}, Usage: "list tasks",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the task id"}},
			Action: func(c *cli.Context) error {
				cl, ctx, cancel, err := newClient(c)
				if err != nil {
					return err
				}
				defer cancel()
				ts, err := cl.Tasks(ctx)
				if err != nil {
					return err
				}
				if c.Bool("quiet") {
					for _, t := range ts {
						fmt.Println(t.ContainerId)
					}
					return nil
				}
				w := newTabWriter()
				fmt.Fprintln(w, "TASK\tPID\tSTATUS\t")
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%d\t%s\t\n", t.ContainerId, t.Pid, t.Status.String())
				}
				return w.Flush()
			},
		},
		{
			Name: "kill", Usage: "signal a container (default: SIGTERM)", ArgsUsage: "[flags] CONTAINER",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Usage: "signal to send to the container", Value: "SIGTERM"},
				&cli.StringFlag{Name: "exec-id", Usage: "process ID to kill"},
				&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "send signal to all processes inside the container"},
			},
			Action: func(c *cli.Context) error {
				id := c.Args().First()
				if id == "" {
					return errors.New("container id must be provided")
				}
				sig, err := parseSignal(c.String("signal"))
				if err != nil {
					return err
				}
				if c.Bool("all") && c.String("exec-id") != "" {
					return errors.New("specify an exec-id or all; not both")
				}
				return withTask(c, id, func(ctx context.Context, cl *client.Client, t *client.Task) error {
					var opts []func(*client.KillOpts)
					if c.Bool("all") {
						opts = append(opts, client.WithKillAll)
					}
					if e := c.String("exec-id"); e != "" {
						p, err := t.LoadProcess(ctx, e)
						if err != nil {
							return err
						}
						return p.Kill(ctx, sig)
					}
					return t.Kill(ctx, sig, opts...)
				})
			},
		},
		taskExecCommand,
		{
			Name: "ps", Usage: "list processes for container", ArgsUsage: "CONTAINER",
			Action: func(c *cli.Context) error {
				return withTask(c, c.Args().First(), func(ctx context.Context, cl *client.Client, t *client.Task) error {
					ps, err := t.Pids(ctx)
					if err != nil {
						return err
					}
					w := newTabWriter()
					fmt.Fprintln(w, "PID\tINFO")
					for _, p := range ps {
						info := "-"
						if p.Info != nil {
							info = p.Info.TypeUrl
						}
						fmt.Fprintf(w, "%d\t%s\n", p.Pid, info)
					}
					return w.Flush()
				})
			},
		},
		{
			Name: "pause", Usage: "pause an existing container", ArgsUsage: "CONTAINER",
			Action: func(c *cli.Context) error {
				return withTask(c, c.Args().First(), func(ctx context.Context, _ *client.Client, t *client.Task) error { return t.Pause(ctx) })
			},
		},
		{
			Name: "resume", Usage: "resume a paused container", ArgsUsage: "CONTAINER",
			Action: func(c *cli.Context) error {
				return withTask(c, c.Args().First(), func(ctx context.Context, _ *client.Client, t *client.Task) error { return t.Resume(ctx) })
			},
		},
		{
			Name: "delete", Aliases: []string{"del", "remove", "rm"}, Usage: "delete one or more tasks", ArgsUsage: "CONTAINER [CONTAINER, ...]",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "force delete task process"},
				&cli.StringFlag{Name: "exec-id", Usage: "process ID to kill"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() == 0 {
					return errors.New("container id must be provided")
				}
				var failed bool
				for _, id := range c.Args().Slice() {
					err := withTask(c, id, func(ctx context.Context, _ *client.Client, t *client.Task) error {
						if e := c.String("exec-id"); e != "" {
							p, err := t.LoadProcess(ctx, e)
							if err != nil {
								return err
							}
							_, err = p.Delete(ctx)
							return err
						}
						if c.Bool("force") {
							if err := forceStop(ctx, t); err != nil {
								return err
							}
						}
						st, err := t.Delete(ctx)
						if err != nil {
							return err
						}
						if st.Code != 0 {
							fmt.Printf("WARN[0000] task %s exit with non-zero exit code %d\n", id, st.Code)
						}
						return nil
					})
					if err != nil {
						failed = true
						fmt.Fprintf(c.App.ErrWriter, "ctr: %v\n", err)
					}
				}
				if failed {
					return cli.Exit("", 1)
				}
				return nil
			},
		},
		{
			Name: "attach", Usage: "attach to the IO of a running container", ArgsUsage: "CONTAINER",
			Action: func(c *cli.Context) error {
				return withContainer(c, c.Args().First(), attachTask)
			},
		},
		{
			Name: "metrics", Aliases: []string{"metric"}, Usage: "get a single data point of metrics for a task with the built-in Linux runtime",
			ArgsUsage: "CONTAINER",
			Flags:     []cli.Flag{&cli.StringFlag{Name: "format", Usage: `"table" or "json"`, Value: "table"}},
			Action: func(c *cli.Context) error {
				return withTask(c, c.Args().First(), func(ctx context.Context, _ *client.Client, t *client.Task) error {
					m, err := t.Metrics(ctx)
					if err != nil {
						return err
					}
					return printMetrics(c.String("format"), m)
				})
			},
		},
		taskUpdateCommand,
		taskCheckpointCommand,
		{
			Name: "wait", Usage: "wait for a task to exit and print its exit code", ArgsUsage: "CONTAINER",
			Action: func(c *cli.Context) error {
				return withTask(c, c.Args().First(), func(ctx context.Context, _ *client.Client, t *client.Task) error {
					ch, err := t.Wait(ctx)
					if err != nil {
						return err
					}
					code, _, err := (<-ch).Result()
					if err != nil {
						return err
					}
					fmt.Println(code)
					return nil
				})
			},
		},
	},
}

// withTask loads the container's task and runs fn with it.
func withTask(c *cli.Context, id string, fn func(context.Context, *client.Client, *client.Task) error) error {
	return withContainer(c, id, func(ctx context.Context, cl *client.Client, ct *client.Container) error {
		t, err := ct.Task(ctx, nil)
		if err != nil {
			return err
		}
		return fn(ctx, cl, t)
	})
}

// withContainer connects, loads container id and runs fn with it.
func withContainer(c *cli.Context, id string, fn func(context.Context, *client.Client, *client.Container) error) error {
	if id == "" {
		return errors.New("container id must be provided")
	}
	cl, ctx, cancel, err := newClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	ct, err := cl.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	return fn(ctx, cl, ct)
}

// forceStop kills a running task with SIGKILL and waits for it to stop.
func forceStop(ctx context.Context, t *client.Task) error {
	st, err := t.Status(ctx)
	if err != nil {
		return err
	}
	if st.Status == client.Stopped || st.Status == client.Created {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := t.Wait(wctx)
	if err != nil {
		return err
	}
	if st.Status == client.Paused {
		t.Resume(ctx)
	}
	if err := t.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	select {
	case <-ch:
	case <-wctx.Done():
		return fmt.Errorf("task %s did not stop after SIGKILL", t.ID())
	}
	return nil
}

var taskStartCommand = &cli.Command{
	Name:      "start",
	Usage:     "start a container that has been created",
	ArgsUsage: "CONTAINER",
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the task after it has started execution"},
		&cli.StringFlag{Name: "pid-file", Usage: "file path to write the task's pid"},
	}, ioFlags...),
	Action: func(c *cli.Context) error {
		return withContainer(c, c.Args().First(), func(ctx context.Context, _ *client.Client, ct *client.Container) error {
			spec, err := ct.Spec(ctx)
			if err != nil {
				return err
			}
			tty := spec.Process != nil && spec.Process.Terminal
			return startTask(ctx, c, ct, tty, c.Bool("detach"), false, nil)
		})
	},
}

// startTask creates and starts the container's task; detached it returns
// at once, attached it exits with the task's code.
func startTask(ctx context.Context, c *cli.Context, ct *client.Container, tty, detach, rm bool, network *cniNetwork) error {
	var stdin stdinCloser
	ioc, err := ioCreator(c, tty, detach, &stdin)
	if err != nil {
		return err
	}
	task, err := ct.NewTask(ctx, ioc)
	if err != nil {
		return err
	}
	if network != nil {
		if err := network.setup(ctx, ct, task); err != nil {
			task.Delete(context.WithoutCancel(ctx))
			return err
		}
		if !detach {
			defer func() {
				if err := network.teardown(context.WithoutCancel(ctx), ct); err != nil {
					fmt.Fprintf(c.App.ErrWriter, "ctr: %v\n", err)
				}
			}()
		}
	}
	if detach {
		if err := task.Start(ctx); err != nil {
			task.Delete(context.WithoutCancel(ctx))
			return err
		}
		return writePidFile(c.String("pid-file"), task.Pid())
	}
	code, err := runAttached(ctx, c, task, tty, &stdin)
	if rm {
		// With the task deleted, the container and its snapshot go at
		// once; otherwise the record goes first, which the daemon refuses
		// while a task is left, and the snapshot stays with it.
		del := deleteLoaded
		if err != nil {
			del = deleteRecordFirst
		}
		if derr := del(context.WithoutCancel(ctx), ct, true); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.Exit("", int(code))
	}
	return nil
}

var taskExecCommand = &cli.Command{
	Name:            "exec",
	Usage:           "execute additional processes in an existing container",
	ArgsUsage:       "[flags] CONTAINER CMD [ARG...]",
	SkipFlagParsing: false,
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "cwd", Usage: "working directory of the new process"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a TTY for the container"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the task after it has started execution"},
		&cli.StringFlag{Name: "exec-id", Required: true, Usage: "exec specific id for the process"},
		&cli.StringFlag{Name: "user", Usage: "user id or name"},
		&cli.StringSliceFlag{Name: "env", Usage: "additional environment variables"},
	}, ioFlags...),
	Action: func(c *cli.Context) error {
		id := c.Args().First()
		args := c.Args().Tail()
		if id == "" {
			return errors.New("container id must be provided")
		}
		if len(args) == 0 {
			return errors.New("command must be provided")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		ct, err := cl.LoadContainer(ctx, id)
		if err != nil {
			return err
		}
		spec, err := ct.Spec(ctx)
		if err != nil {
			return err
		}
		t, err := ct.Task(ctx, nil)
		if err != nil {
			return err
		}
		pspec := *spec.Process
		pspec.Args = args
		pspec.Terminal = c.Bool("tty")
		if cwd := c.String("cwd"); cwd != "" {
			pspec.Cwd = cwd
		}
		pspec.Env = append(append([]string{}, pspec.Env...), c.StringSlice("env")...)
		if u := c.String("user"); u != "" {
			if pspec.User, err = ct.ResolveUser(ctx, u); err != nil {
				return err
			}
		}
		var stdin stdinCloser
		ioc, err := ioCreator(c, pspec.Terminal, c.Bool("detach"), &stdin)
		if err != nil {
			return err
		}
		p, err := t.Exec(ctx, c.String("exec-id"), &pspec, ioc)
		if err != nil {
			return err
		}
		if c.Bool("detach") {
			return p.Start(ctx)
		}
		code, err := runProcessAttached(ctx, p, pspec.Terminal, &stdin)
		if err != nil {
			return err
		}
		if code != 0 {
			return cli.Exit("", int(code))
		}
		return nil
	},
}

func runProcessAttached(ctx context.Context, p *client.Process, tty bool, stdin *stdinCloser) (uint32, error) {
	statusC, err := p.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if tty {
		con := consoleCurrent()
		if err := con.SetRaw(); err != nil {
			return 0, err
		}
		defer con.Reset()
		stdin.set(func() { p.CloseStdin(context.WithoutCancel(ctx)) })
		if err := p.Start(ctx); err != nil {
			p.Delete(context.WithoutCancel(ctx))
			return 0, err
		}
		stop := forwardResizes(ctx, con, p.Resize)
		defer stop()
	} else {
		signals := catchSignals()
		defer signals.stop()
		stdin.set(func() { p.CloseStdin(context.WithoutCancel(ctx)) })
		if err := p.Start(ctx); err != nil {
			p.Delete(context.WithoutCancel(ctx))
			return 0, err
		}
		signals.forward(ctx, func(ctx context.Context, sig syscall.Signal) error { return p.Kill(ctx, sig) })
	}
	code, _, err := (<-statusC).Result()
	if err != nil {
		return 0, err
	}
	if _, err := p.Delete(context.WithoutCancel(ctx)); err != nil {
		return code, err
	}
	return code, nil
}

func statusString(s string) string { return strings.ToUpper(s) }

// attachTask re-opens a running task's IO and stays with it like an
// attached run: forwards signals or resizes and exits with its code.
func attachTask(ctx context.Context, _ *client.Client, ct *client.Container) error {
	spec, err := ct.Spec(ctx)
	if err != nil {
		return err
	}
	tty := spec.Process != nil && spec.Process.Terminal
	opts := []cio.Opt{cio.WithStdio}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	t, err := ct.Task(ctx, cio.NewAttach(opts...))
	if err != nil {
		return err
	}
	statusC, err := t.Wait(ctx)
	if err != nil {
		return err
	}
	if tty {
		con := consoleCurrent()
		if err := con.SetRaw(); err != nil {
			return err
		}
		defer con.Reset()
		stop := forwardResizes(ctx, con, t.Resize)
		defer stop()
	} else {
		stop := forwardSignals(ctx, func(ctx context.Context, sig syscall.Signal) error { return t.Kill(ctx, sig) })
		defer stop()
	}
	st := <-statusC
	code, _, err := st.Result()
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.Exit("", int(code))
	}
	return nil
}
