package main

import (
	"os"

	"github.com/berth-containers/berth/plugin"
	"github.com/berth-containers/berth/services/server"
)

// runConfigDefault is "berthd config default".
func runConfigDefault(c *cliContext) error {
	data, err := server.DefaultTOML(c)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(data)
	return err
}

// runConfigDump is "berthd config dump".
func runConfigDump(c *cliContext) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	data, err := server.RenderConfig(c, cfg, plugin.Registrations())
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(data)
	return err
}
