package main

import (
	"encoding/json"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/oci"
)

func init() {
	extraCommands = append(extraCommands, ociCommand)
}

// ociCommand shows the runtime spec ctr starts every container from.
var ociCommand = &cli.Command{
	Name:  "oci",
	Usage: "OCI tools",
	Subcommands: []*cli.Command{{
		Name:      "spec",
		Usage:     "see the output of the default OCI spec",
		ArgsUsage: "[ID]",
		Action: func(c *cli.Context) error {
			ctx, cancel := appContext(c)
			defer cancel()
			// The spec needs a container id (it ends the cgroups path);
			// without one, the path stops at the namespace, as in
			// containerd's ctr.
			id := c.Args().First()
			named := id != ""
			if !named {
				id = "id"
			}
			s, err := oci.GenerateSpec(ctx, &oci.ContainerInfo{ID: id})
			if err != nil {
				return err
			}
			if !named && s.Linux != nil {
				s.Linux.CgroupsPath = "/" + c.String("namespace")
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(s)
		},
	}},
}
