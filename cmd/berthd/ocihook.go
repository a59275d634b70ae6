package main

import (
	"os"

	"github.com/berth-containers/berth/pkg/ocihook"
)

// runOCIHook is "berthd oci-hook -- COMMAND [ARG...]", run by the runtime
// as a hook: the container's state on stdin fills COMMAND's placeholders
// ({{pid}}, {{rootfs}}, {{id}}, {{bundle}}, {{annotation "KEY"}}), then
// COMMAND replaces this process. `ctr run --gpus` sets it up.
func runOCIHook(c *cliContext) error {
	d, err := ocihook.Load(os.Stdin)
	if err != nil {
		return err
	}
	return ocihook.Exec(c.args, d)
}
