package service

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	apievents "github.com/berth-containers/berth/api/events"
	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/runtime/v2/shim/process"
	"github.com/berth-containers/berth/runtime/v2/shim/stats"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// container is one task: its init, its execs, and what the shim set up for
// it.
type container struct {
	id     string
	ns     string
	bundle string
	init   *process.Init
	// killAll is set when the container shares a pid namespace, so its
	// processes outlive the init and must be killed when it exits.
	killAll bool
	// rootfsMounted records that the shim mounted the rootfs and must
	// unmount it.
	rootfsMounted bool
	cgroup        *stats.Cgroup
	stopOOM       func()
	// exited closes once the init's TaskExit is published: the task's
	// TaskDelete must not overtake it (Wait answers before the exit
	// event is queued).
	exited chan struct{}

	mu    sync.Mutex
	execs map[string]*process.Exec
}

func (c *container) process(execID string) (process.Process, error) {
	if execID == "" {
		return c.init, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.execs[execID]
	if !ok {
		return nil, fmt.Errorf("process %q of task %q: %w", execID, c.id, errdefs.ErrNotFound)
	}
	return e, nil
}

func (c *container) execByPid(pid int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.execs {
		if e.Pid() == pid {
			return id, true
		}
	}
	return "", false
}

// newContainer mounts the rootfs if asked and creates the init with runc.
// The returned func ends the tracker's start bracket; Create calls it after
// publishing the create event so an early exit is published after it.
func (s *Service) newContainer(ctx context.Context, r *taskapi.CreateTaskRequest, ns string) (_ *container, _ func(process.Process), retErr error) {
	if r.Checkpoint != "" || r.ParentCheckpoint != "" {
		return nil, nil, fmt.Errorf("restore from checkpoint: %w", errdefs.ErrNotImplemented)
	}
	opts, err := DecodeOptions(r.Options)
	if err != nil {
		return nil, nil, err
	}
	if r.Options != nil {
		if err := WriteOptions(r.Bundle, opts); err != nil {
			return nil, nil, err
		}
	} else if opts, err = ReadOptions(r.Bundle); err != nil {
		return nil, nil, err
	}
	spec, err := readSpec(r.Bundle)
	if err != nil {
		return nil, nil, err
	}
	c := &container{
		id:      r.Id,
		ns:      ns,
		bundle:  r.Bundle,
		killAll: !ownPidNamespace(spec),
		execs:   map[string]*process.Exec{},
		exited:  make(chan struct{}),
	}

	if len(r.Rootfs) > 0 {
		rootfs := filepath.Join(r.Bundle, "rootfs")
		if err := os.MkdirAll(rootfs, 0o711); err != nil {
			return nil, nil, fmt.Errorf("create rootfs dir: %w", err)
		}
		mounts := make([]mount.Mount, 0, len(r.Rootfs))
		for _, m := range r.Rootfs {
			mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
		}
		tm := time.Now()
		err := mount.All(mounts, rootfs)
		log.G(ctx).WithField("took", time.Since(tm)).Debug("rootfs mounted")
		if err != nil {
			return nil, nil, fmt.Errorf("mount rootfs: %w", err)
		}
		c.rootfsMounted = true
		defer func() {
			if retErr != nil {
				c.unmountRootfs(ctx)
			}
		}()
	}

	c.init = process.NewInit(process.InitConfig{
		ID:           r.Id,
		Bundle:       r.Bundle,
		Runtime:      NewRunc(ns, r.Bundle, opts),
		Stdio:        process.Stdio{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		NoPivot:      opts.GetNoPivotRoot(),
		NoNewKeyring: opts.GetNoNewKeyring(),
		// Poststart hooks are runc start's to run (runc 1.2 and later),
		// and another binary's start may work otherwise.
		StartByFifo: opts.GetBinaryName() == "" && (spec.Hooks == nil || len(spec.Hooks.Poststart) == 0),
	})
	started := s.tracker.Starting()
	tc := time.Now()
	err = c.init.Create(ctx)
	log.G(ctx).WithField("took", time.Since(tc)).Debug("runc create")
	if err != nil {
		started(nil)
		return nil, nil, err
	}
	return c, started, nil
}

// watch finds the container's cgroup and watches it for OOM kills; both are
// best effort (a rootless or odd cgroup setup must not fail the task).
func (s *Service) watch(ctx context.Context, c *container) {
	cg, err := stats.ForPid(c.init.Pid())
	if err != nil {
		log.G(ctx).WithError(err).Warn("find container cgroup")
		return
	}
	c.cgroup = cg
	stop, err := cg.WatchOOM(func() {
		s.publish(c.ns, &apievents.TaskOOM{ContainerId: c.id})
	})
	if err != nil {
		log.G(ctx).WithError(err).Debug("watch oom")
		return
	}
	c.stopOOM = stop
}

func (c *container) unmountRootfs(ctx context.Context) {
	if !c.rootfsMounted {
		return
	}
	if err := mount.UnmountAll(filepath.Join(c.bundle, "rootfs"), 0); err != nil {
		log.G(ctx).WithError(err).Warn("unmount rootfs")
		return
	}
	c.rootfsMounted = false
}

// detachRootfs takes the rootfs out of the mount table now and returns
// the func that lets it go. An O_PATH descriptor on the rootfs holds the
// mount while a lazy unmount detaches it, so the expensive part of the
// unmount, the superblock's teardown (an overlay syncs its whole upper
// file system there), runs when release closes the descriptor instead of
// inside the detach. Without the descriptor (the rootfs is not there) it
// unmounts as unmountRootfs does.
func (c *container) detachRootfs(ctx context.Context) (release func()) {
	if !c.rootfsMounted {
		return func() {}
	}
	rootfs := filepath.Join(c.bundle, "rootfs")
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		c.unmountRootfs(ctx)
		return func() {}
	}
	if err := mount.UnmountAll(rootfs, unix.MNT_DETACH); err != nil {
		log.G(ctx).WithError(err).Warn("unmount rootfs")
		unix.Close(fd)
		return func() {}
	}
	c.rootfsMounted = false
	return func() { unix.Close(fd) }
}

// bundleSpec is the part of the bundle's config.json the shim reads.
// Decoding only this, not a whole specs.Spec, keeps encoding/json from
// building (and caching for the shim's life) field tables for the spec's
// every type: about 200 KB of heap in each shim.
type bundleSpec struct {
	Hooks *struct {
		Poststart []json.RawMessage `json:"poststart,omitempty"`
	} `json:"hooks,omitempty"`
	Linux *struct {
		Namespaces []specs.LinuxNamespace `json:"namespaces,omitempty"`
	} `json:"linux,omitempty"`
}

func readSpec(bundle string) (*bundleSpec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var s bundleSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode bundle config: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return &s, nil
}

// ownPidNamespace reports whether the container gets a new pid namespace,
// in which case the kernel kills everything in it when the init dies.
func ownPidNamespace(s *bundleSpec) bool {
	if s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return true
		}
	}
	return false
}
