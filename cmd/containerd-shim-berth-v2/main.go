// Command containerd-shim-berth-v2 is Berth's runtime shim: one per
// container, driving runc and serving containerd's task v2 API over ttrpc.
// This file only parses the command line; see runtime/v2/shim.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/runtime/v2/shim"
	"github.com/berth-containers/berth/runtime/v2/shim/service"
)

func main() {
	var (
		cfg     shim.Config
		version bool
	)
	flag.BoolVar(&cfg.Debug, "debug", false, "enable debug output in logs")
	flag.BoolVar(&version, "v", false, "show the shim version and exit")
	flag.StringVar(&cfg.Namespace, "namespace", "", "namespace that owns the shim")
	flag.StringVar(&cfg.ID, "id", "", "id of the task")
	flag.StringVar(&cfg.Socket, "socket", "", "socket path to serve")
	flag.StringVar(&cfg.Bundle, "bundle", "", "path to the bundle if not workdir")
	flag.StringVar(&cfg.Address, "address", "", "grpc address back to the daemon")
	flag.StringVar(&cfg.PublishBinary, "publish-binary", "", "path to publish binary (unused: events go over ttrpc)")
	var spare bool
	flag.BoolVar(&spare, "spare", false, "start ahead of need and wait on fd 3 for a task from berthd")
	flag.Parse()

	if version {
		fmt.Printf("%s:\n  Version: %s\n", os.Args[0], service.Version)
		return
	}
	ctx := namespaces.WithNamespace(context.Background(), cfg.Namespace)
	ctx = log.WithLogger(ctx, log.G(ctx).WithField("runtime", "io.containerd.berth.v2").WithField("namespace", cfg.Namespace))

	var err error
	switch action := flag.Arg(0); {
	case spare:
		err = shim.ServeSpare(context.Background())
	case action == "start":
		err = shim.Start(ctx, cfg, os.Stdin, os.Stdout)
	case action == "delete":
		err = shim.Delete(ctx, cfg, os.Stdout, os.Stderr)
	case action == "":
		err = shim.Serve(ctx, cfg)
	default:
		err = fmt.Errorf("unknown action %q", action)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "containerd-shim-berth-v2: %v\n", err)
		os.Exit(1)
	}
}
