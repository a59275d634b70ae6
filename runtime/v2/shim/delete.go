package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	taskapi "github.com/berth-containers/berth/api/runtime/task/v2"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/runtime/v2/shim/process"
	"github.com/berth-containers/berth/runtime/v2/shim/service"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Delete is `shim delete`, run by the daemon when a shim died: it force
// deletes the runc container, unmounts the rootfs and prints a
// DeleteResponse (the task counts as SIGKILLed: 137). Problems are
// reported on stderr but do not fail the cleanup.
func Delete(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if cfg.Namespace == "" || cfg.ID == "" {
		return errors.New("delete: -namespace and -id are required")
	}
	bundle, err := cfg.bundle()
	if err != nil {
		return err
	}
	opts, err := service.ReadOptions(bundle)
	if err != nil {
		fmt.Fprintf(stderr, "delete: %v\n", err)
	}
	r := service.NewRunc(cfg.Namespace, bundle, opts)
	if err := r.Delete(ctx, cfg.ID, true); err != nil && !errdefs.IsNotFound(err) {
		fmt.Fprintf(stderr, "delete: %v\n", err)
	}
	if err := mount.UnmountAll(filepath.Join(bundle, "rootfs"), 0); err != nil {
		fmt.Fprintf(stderr, "delete: unmount rootfs: %v\n", err)
	}
	// A shim killed outright leaves its socket behind.
	if b, err := os.ReadFile(filepath.Join(bundle, AddressFile)); err == nil && !canConnect(string(b)) {
		os.Remove(socketPath(string(b)))
	}
	var pid int
	if b, err := os.ReadFile(filepath.Join(bundle, process.InitPidFile)); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	data, err := proto.Marshal(&taskapi.DeleteResponse{
		Pid:        uint32(pid),
		ExitStatus: 128 + 9,
		ExitedAt:   timestamppb.New(time.Now()),
	})
	if err != nil {
		return fmt.Errorf("delete: encode response: %w", err)
	}
	_, err = stdout.Write(data)
	return err
}
