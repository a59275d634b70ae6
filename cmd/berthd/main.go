// Command berthd is the Berth container daemon. This file is flags and
// wiring only; the daemon itself is services/server and the plugins
// imported in builtins.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/sdnotify"
	"github.com/berth-containers/berth/pkg/version"
	"github.com/berth-containers/berth/services/server"
)

// stopTimeout bounds a graceful stop; calls still running then are cut off
// so that a stuck client cannot hold up a restart.
const stopTimeout = 10 * time.Second

// defaultGCPercent is the daemon's GOGC unless the environment sets one.
// berthd's live heap is a few MiB and its garbage comes in bursts (an
// import, a burst of task starts); at Go's default of 100 the heap goal
// after one stays about twice the live heap until the next forced GC two
// minutes later. A lower percentage costs a little more GC CPU in those
// bursts and keeps the idle daemon smaller. It is a soft setting, no
// memory limit: a daemon that needs more heap still gets it.
const defaultGCPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := runCLI(os.Args[1:], os.Stdout); err != nil {
		var exit *exitError
		if errors.As(err, &exit) {
			if exit.msg != "" {
				fmt.Fprintln(os.Stderr, exit.msg)
			}
			os.Exit(exit.code)
		}
		fmt.Fprintf(os.Stderr, "berthd: %s\n", err)
		os.Exit(1)
	}
}

// loadConfig reads the config file and applies the command-line overrides.
func loadConfig(c *cliContext) (*server.Config, error) {
	ctx := c.Context
	g := c.global
	cfg := server.DefaultConfig()
	path := g.config
	if err := server.LoadConfig(ctx, path, cfg); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		log.G(ctx).WithField("config", path).Debug("no config file; using defaults")
	}
	if v := g.root; v != "" {
		cfg.Root = v
	}
	if v := g.state; v != "" {
		cfg.State = v
	}
	if v := g.address; v != "" {
		cfg.GRPC.Address = v
	}
	if v := g.logLevel; v != "" {
		cfg.Debug.Level = v
	}
	if v := g.logFormat; v != "" {
		cfg.Debug.Format = v
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func setupLogging(cfg server.DebugConfig) error {
	logrus.SetOutput(os.Stderr)
	if cfg.Level != "" {
		lvl, err := logrus.ParseLevel(cfg.Level)
		if err != nil {
			return fmt.Errorf("log level %q: %w", cfg.Level, errdefs.ErrInvalidArgument)
		}
		logrus.SetLevel(lvl)
	}
	switch cfg.Format {
	case "", "text":
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	default:
		return fmt.Errorf("log format %q: want text or json: %w", cfg.Format, errdefs.ErrInvalidArgument)
	}
	return nil
}

func run(c *cliContext) error {
	if len(c.args) > 0 {
		return fmt.Errorf("unexpected argument %q (see berthd --help)", c.args[0])
	}
	// Catch signals before anything slow starts, so a stop asked for
	// during plugin init is seen once the server exists.
	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, handledSignals...)
	defer signal.Stop(sigc)

	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if err := setupLogging(cfg.Debug); err != nil {
		return err
	}
	ctx := log.WithLogger(context.Background(), log.L)
	log.G(ctx).WithField("version", version.Version).WithField("revision", version.Revision).Info("starting berthd")

	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	// The sockets listen from New on, so clients may connect now.
	notify(ctx, sdnotify.Ready)
	log.G(ctx).WithField("address", cfg.GRPC.Address).WithField("ttrpc", cfg.TTRPCAddress()).Info("berthd is ready")

	for {
		select {
		case sig := <-sigc:
			switch sig {
			case syscall.SIGUSR1:
				dumpStacks(ctx)
			case syscall.SIGPIPE:
				// Ignored: a restarted journald closes our stderr pipe, and
				// dying of SIGPIPE there would take the daemon down with it.
			default:
				log.G(ctx).WithField("signal", sig).Info("stopping berthd")
				return stop(ctx, srv, serveErr)
			}
		case err := <-serveErr:
			log.G(ctx).WithError(err).Error("serving failed; stopping")
			serveErr <- nil // already received; stop waits for it
			if serr := stop(ctx, srv, serveErr); serr != nil {
				log.G(ctx).WithError(serr).Warn("stop")
			}
			return err
		}
	}
}

func stop(ctx context.Context, srv *server.Server, serveErr <-chan error) error {
	notify(ctx, sdnotify.Stopping)
	sctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	err := srv.Stop(sctx)
	if serr := <-serveErr; serr != nil {
		log.G(ctx).WithError(serr).Warn("serve")
	}
	if err != nil {
		// Still a clean exit for systemd: the daemon did stop.
		log.G(ctx).WithError(err).Warn("berthd stopped with errors")
		return nil
	}
	log.G(ctx).Info("berthd stopped")
	return nil
}

func notify(ctx context.Context, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.G(ctx).WithError(err).Warn("sd_notify")
	}
}
