package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/pkg/version"
)

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print the client and server versions",
	Action: func(c *cli.Context) error {
		fmt.Println("Client:")
		fmt.Printf("  Version:  %s\n", version.Version)
		fmt.Printf("  Revision: %s\n", version.Revision)
		fmt.Printf("  Go version: %s\n", runtime.Version())
		fmt.Println()
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		v, err := cl.Version(ctx)
		if err != nil {
			return err
		}
		fmt.Println("Server:")
		fmt.Printf("  Version:  %s\n", v.Version)
		fmt.Printf("  Revision: %s\n", v.Revision)
		if uuid, err := cl.ServerUUID(ctx); err == nil {
			fmt.Printf("  UUID: %s\n", uuid)
		}
		return nil
	},
}
