package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/urfave/cli/v2"
)

func init() {
	extraCommands = append(extraCommands, pprofCommand)
}

// defaultDebugSocket is where ctr pprof looks for berthd's debug socket;
// berthd serves one only when its config sets [debug] address.
const defaultDebugSocket = "/run/berth/debug.sock"

// pprofCommand fetches Go's runtime profiles from the daemon's debug
// socket, as containerd's ctr pprof does: the text ones (goroutines) for
// reading, the binary ones for `go tool pprof` / `go tool trace`.
var pprofCommand = &cli.Command{
	Name:  "pprof",
	Usage: "provide golang pprof outputs for berthd",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "debug-socket", Aliases: []string{"d"}, Usage: "socket path for berthd's debug server", Value: defaultDebugSocket},
	},
	Subcommands: []*cli.Command{
		pprofProfile("goroutines", "dump goroutine stack dump", "/debug/pprof/goroutine", url.Values{"debug": {"2"}}, 0),
		pprofProfile("heap", "dump heap profile", "/debug/pprof/heap", nil, 0),
		pprofProfile("profile", "CPU profile", "/debug/pprof/profile", nil, 30*time.Second),
		pprofProfile("trace", "collect execution trace", "/debug/pprof/trace", nil, 5*time.Second),
		pprofProfile("block", "goroutine blocking profile", "/debug/pprof/block", nil, 0),
		pprofProfile("threadcreate", "goroutine thread creating profile", "/debug/pprof/threadcreate", nil, 0),
	},
}

// pprofProfile is a subcommand writing path's body to stdout; one with a
// collection time (seconds > 0) takes --seconds.
func pprofProfile(name, usage, path string, query url.Values, seconds time.Duration) *cli.Command {
	cmd := &cli.Command{Name: name, Usage: usage}
	if seconds > 0 {
		cmd.Flags = []cli.Flag{&cli.DurationFlag{Name: "seconds", Aliases: []string{"s"}, Usage: "duration for collection (seconds)", Value: seconds}}
	}
	cmd.Action = func(c *cli.Context) error {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if seconds > 0 {
			d := c.Duration("seconds")
			if d < time.Second {
				return fmt.Errorf("--seconds %s: must be at least 1s", d)
			}
			q.Set("seconds", fmt.Sprint(int64(d/time.Second)))
		}
		ctx, cancel := signalContext(c)
		defer cancel()
		return fetchDebug(ctx, c.String("debug-socket"), path, q, os.Stdout)
	}
	return cmd
}

// fetchDebug GETs path from the HTTP server on the unix socket sock and
// copies the body to w.
func fetchDebug(ctx context.Context, sock, path string, q url.Values, w io.Writer) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	u := url.URL{Scheme: "http", Host: "berthd", Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("debug socket %s (berthd serves one when its config sets [debug] address): %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s on %s: %s: %s", path, sock, resp.Status, b)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read %s from %s: %w", path, sock, err)
	}
	return nil
}
