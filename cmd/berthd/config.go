package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/services/server"
)

var configCommand = &cli.Command{
	Name:  "config",
	Usage: "print berthd's configuration",
	Subcommands: []*cli.Command{
		{
			Name:  "default",
			Usage: "print the default config, with every built-in plugin's section",
			Action: func(c *cli.Context) error {
				data, err := server.DefaultTOML(c.Context)
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(data)
				return err
			},
		},
		{
			Name:  "dump",
			Usage: "print the config berthd would run with: the file, the flags and each plugin's decoded section",
			Action: func(c *cli.Context) error {
				cfg, err := loadConfig(c)
				if err != nil {
					return err
				}
				data, err := server.RenderConfig(c.Context, cfg, plugin.Registrations())
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(data)
				return err
			},
		},
	},
}
