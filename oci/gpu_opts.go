package oci

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// NvidiaCLI is NVIDIA's container tool, which sets a container up for
// its GPUs from a prestart hook.
const NvidiaCLI = "nvidia-container-cli"

// nvidiaCapabilities are the driver capabilities a container gets (all of
// them, as containerd's ctr --gpus asks).
var nvidiaCapabilities = []string{"compute", "compat32", "graphics", "utility", "video", "display"}

// WithNvidiaGPUs gives the container the GPUs numbered devices, as
// containerd's ctr --gpus does: a prestart hook runs hookBinary (berthd)
// "oci-hook", which fills in the container's pid and root file system
// and runs cli (nvidia-container-cli, an absolute path) to configure
// them. The hook runs with env, the client's environment.
func WithNvidiaGPUs(hookBinary, cli string, devices []int, env []string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		if !filepath.IsAbs(hookBinary) || !filepath.IsAbs(cli) {
			return fmt.Errorf("gpus: hook %q and %q must be absolute paths: %w", hookBinary, cli, errdefs.ErrInvalidArgument)
		}
		ids := make([]string, 0, len(devices))
		for _, d := range devices {
			if d < 0 {
				return fmt.Errorf("gpus: device %d: not a GPU index: %w", d, errdefs.ErrInvalidArgument)
			}
			ids = append(ids, strconv.Itoa(d))
		}
		args := []string{filepath.Base(hookBinary), "oci-hook", "--", cli, "--load-kmods", "configure"}
		if len(ids) > 0 {
			args = append(args, "--device="+strings.Join(ids, ","))
		}
		for _, c := range nvidiaCapabilities {
			args = append(args, "--"+c)
		}
		args = append(args, "--pid={{pid}}", "{{rootfs}}")
		if s.Hooks == nil {
			s.Hooks = &specs.Hooks{}
		}
		s.Hooks.Prestart = append(s.Hooks.Prestart, specs.Hook{Path: hookBinary, Args: args, Env: env})
		return nil
	}
}
