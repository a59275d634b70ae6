package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/version"
	"github.com/berth-containers/berth/remotes/docker"
)

// registryFlags are the flags of every command that talks to a registry
// (images pull/fetch/push, content fetch/fetch-object/push-object):
// containerd 1.6 ctr's list.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user[:password] Registry user and password (prompted for when omitted)"},
		&cli.StringFlag{Name: "refresh", Usage: "refresh token for authorization server (used when --user is not given)"},
		&cli.BoolFlag{Name: "plain-http", Usage: "allow connections using plain HTTP"},
		&cli.BoolFlag{Name: "skip-verify", Aliases: []string{"k"}, Usage: "skip SSL certificate validation"},
		&cli.StringFlag{Name: "hosts-dir", Usage: "Custom hosts configuration directory (<dir>/<registry>/hosts.toml)"},
		&cli.StringFlag{Name: "tlscacert", Usage: "path to TLS root CA (trusted besides the system's)"},
		&cli.StringFlag{Name: "tlscert", Usage: "path to TLS client certificate (with --tlskey)"},
		&cli.StringFlag{Name: "tlskey", Usage: "path to TLS client key (with --tlscert)"},
		&cli.BoolFlag{Name: "http-dump", Usage: "dump all HTTP request/responses (start lines and headers) when interacting with container registry, to standard error"},
		&cli.BoolFlag{Name: "http-trace", Usage: "enable HTTP tracing for registry interactions (connection events, to standard error)"},
		&cli.StringSliceFlag{Name: "platform", Usage: "Pull content from a specific platform"},
	}
}

// remoteOpts turns the registry flags into client options.
func remoteOpts(c *cli.Context) ([]client.RemoteOpt, error) {
	// Files first: a typo in a path should not cost a password prompt.
	tlsCfg, err := docker.TLSFiles{
		CAFile:     c.String("tlscacert"),
		CertFile:   c.String("tlscert"),
		KeyFile:    c.String("tlskey"),
		SkipVerify: c.Bool("skip-verify"),
	}.TLSConfig()
	if err != nil {
		return nil, err
	}
	creds, err := credentials(c)
	if err != nil {
		return nil, err
	}
	hostOpts := docker.HostOptions{PlainHTTP: c.Bool("plain-http"), HostDir: c.String("hosts-dir"), TLS: tlsCfg}
	dump, trace := c.Bool("http-dump"), c.Bool("http-trace")
	if dump || trace {
		hostOpts.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			if trace {
				rt = docker.TraceTransport(rt, os.Stderr)
			}
			if dump {
				rt = docker.DumpTransport(rt, os.Stderr)
			}
			return rt
		}
	}
	resolver := docker.NewResolver(docker.Options{
		Hosts:       docker.ConfigureHosts(hostOpts),
		Credentials: creds,
		Header:      http.Header{"User-Agent": {"berth-ctr/" + version.Version}},
	})
	opts := []client.RemoteOpt{client.WithResolver(resolver)}
	if ps := c.StringSlice("platform"); len(ps) > 0 {
		opts = append(opts, client.WithPlatforms(ps...))
	}
	return opts, nil
}

// credentials reads --user, or else --refresh; a missing password is
// prompted for on a terminal, else read as one line from standard input.
func credentials(c *cli.Context) (docker.CredentialsFunc, error) {
	user := c.String("user")
	if user == "" {
		if rt := c.String("refresh"); rt != "" {
			// No user and a secret: a refresh token, as containerd's ctr passes it.
			return func(string) (string, string, error) { return "", rt, nil }, nil
		}
		return nil, nil
	}
	name, secret, hasSecret := strings.Cut(user, ":")
	if name == "" {
		return nil, fmt.Errorf("--user %q: user name is empty: %w", user, errdefs.ErrInvalidArgument)
	}
	if !hasSecret {
		var err error
		if secret, err = readPassword(os.Stdin, os.Stderr); err != nil {
			return nil, err
		}
	}
	return func(string) (string, string, error) { return name, secret, nil }, nil
}
