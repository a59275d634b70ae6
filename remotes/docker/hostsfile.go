package docker

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// A hosts.toml, as containerd reads it from certs.d/<domain>/:
//
//	server = "https://registry.example.com"   # the upstream; default: the domain
//	ca = "/etc/ssl/registry-ca.pem"            # or a list; relative to this folder
//	skip_verify = false
//	client = [["client.cert", "client.key"]]  # or "both.pem", or a list of them
//	[header]
//	  x-custom = "value"                      # or a list of values
//
//	[host."https://mirror.example.com"]       # tried first, in file order
//	  capabilities = ["pull", "resolve"]      # default for a mirror: pull, resolve
//	  ca = "mirror-ca.pem"
//	  skip_verify = true
//	  override_path = false                   # true: the URL path is the API root
//	  [host."https://mirror.example.com".header]
//	    authorization = "…"
//
// The top-level keys configure the server; each host table a mirror.

// hostConfig is one host from a hosts file; scheme is "" for the server
// when the file does not name it.
type hostConfig struct {
	scheme, host, path string
	capabilities       HostCapabilities
	caCerts            []string
	clientPairs        [][2]string
	skipVerify         *bool
	header             http.Header
	server             bool
}

type hostFileEntry struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
}

type hostFile struct {
	Server       string                   `toml:"server"`
	Capabilities []string                 `toml:"capabilities"`
	CA           any                      `toml:"ca"`
	Client       any                      `toml:"client"`
	SkipVerify   *bool                    `toml:"skip_verify"`
	Header       map[string]any           `toml:"header"`
	OverridePath bool                     `toml:"override_path"`
	Host         map[string]hostFileEntry `toml:"host"`
}

// parseHostsFile parses a hosts.toml in dir: the mirrors in file order,
// then the server.
func parseHostsFile(dir string, b []byte) ([]hostConfig, error) {
	var f hostFile
	dec := toml.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			var keys []string
			for _, e := range strict.Errors {
				row, _ := e.Position()
				keys = append(keys, fmt.Sprintf("%q (line %d)", strings.Join(e.Key(), "."), row))
			}
			return nil, fmt.Errorf("unknown keys %s: %w", strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("parse: line %d column %d: %v: %w", row, col, de, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("parse: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	order, err := hostOrder(b)
	if err != nil {
		return nil, err
	}
	for _, key := range sortedKeys(f.Host) {
		if !slices.Contains(order, key) {
			order = append(order, key)
		}
	}
	var out []hostConfig
	for _, key := range order {
		e, ok := f.Host[key]
		if !ok {
			continue
		}
		hc, err := entryConfig(dir, key, e)
		if err != nil {
			return nil, err
		}
		out = append(out, hc)
	}
	server := hostFileEntry{Capabilities: f.Capabilities, CA: f.CA, Client: f.Client, SkipVerify: f.SkipVerify, Header: f.Header, OverridePath: f.OverridePath}
	hc, err := entryConfig(dir, f.Server, server)
	if err != nil {
		return nil, err
	}
	hc.server = true
	return append(out, hc), nil
}

func entryConfig(dir, key string, e hostFileEntry) (hostConfig, error) {
	var hc hostConfig
	where := "server"
	if key != "" {
		where = fmt.Sprintf("host %q", key)
		var err error
		hc.scheme, hc.host, hc.path, err = parseHostURL(key, e.OverridePath)
		if err != nil {
			return hc, err
		}
	}
	for _, c := range e.Capabilities {
		switch c {
		case "pull":
			hc.capabilities |= CapabilityPull
		case "resolve":
			hc.capabilities |= CapabilityResolve
		case "push":
			hc.capabilities |= CapabilityPush
		default:
			return hc, fmt.Errorf("%s: unknown capability %q (want pull, resolve or push): %w", where, c, errdefs.ErrInvalidArgument)
		}
	}
	if e.Capabilities != nil && hc.capabilities == 0 {
		return hc, fmt.Errorf("%s: capabilities is empty: %w", where, errdefs.ErrInvalidArgument)
	}
	cas, err := stringList(e.CA)
	if err != nil {
		return hc, fmt.Errorf("%s: ca: %w", where, err)
	}
	for _, c := range cas {
		hc.caCerts = append(hc.caCerts, resolvePath(dir, c))
	}
	pairs, err := clientPairs(e.Client)
	if err != nil {
		return hc, fmt.Errorf("%s: client: %w", where, err)
	}
	for _, p := range pairs {
		hc.clientPairs = append(hc.clientPairs, [2]string{resolvePath(dir, p[0]), resolvePath(dir, p[1])})
	}
	hc.skipVerify = e.SkipVerify
	if len(e.Header) > 0 {
		hc.header = http.Header{}
		for k, v := range e.Header {
			vals, err := stringList(v)
			if err != nil {
				return hc, fmt.Errorf("%s: header %q: %w", where, k, err)
			}
			for _, s := range vals {
				hc.header.Add(k, s)
			}
		}
	}
	return hc, nil
}

func sortedKeys(m map[string]hostFileEntry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// stringList reads a value that is a string or a list of strings.
func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a string or a list of strings, got a list holding %T: %w", e, errdefs.ErrInvalidArgument)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %T: %w", v, errdefs.ErrInvalidArgument)
}

// clientPairs reads "both.pem", ["a.pem", "b.pem"] (each holding
// certificate and key), or [["a.cert", "a.key"], …].
func clientPairs(v any) ([][2]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return [][2]string{{v, v}}, nil
	case []any:
		var out [][2]string
		for _, e := range v {
			switch e := e.(type) {
			case string:
				out = append(out, [2]string{e, e})
			case []any:
				l, err := stringList(e)
				if err != nil {
					return nil, err
				}
				switch len(l) {
				case 1:
					out = append(out, [2]string{l[0], l[0]})
				case 2:
					out = append(out, [2]string{l[0], l[1]})
				default:
					return nil, fmt.Errorf("want [certificate, key], got %d entries: %w", len(l), errdefs.ErrInvalidArgument)
				}
			default:
				return nil, fmt.Errorf("unexpected %T: %w", e, errdefs.ErrInvalidArgument)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a path or a list, got %T: %w", v, errdefs.ErrInvalidArgument)
}

// hostOrder lists the keys of the host table in the order the file first
// mentions them; a decoded map has lost it.
func hostOrder(b []byte) ([]string, error) {
	var (
		p       unstable.Parser
		order   []string
		seen    = map[string]bool{}
		inTable bool
	)
	p.Reset(b)
	for p.NextExpression() {
		e := p.Expression()
		var keys []string
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable, unstable.KeyValue:
			it := e.Key()
			for it.Next() {
				keys = append(keys, string(it.Node().Data))
			}
		default:
			continue
		}
		if e.Kind == unstable.KeyValue {
			// Only a dotted key at top level names a host
			// (host."https://m".capabilities = …); keys inside tables are
			// relative to them.
			if inTable {
				continue
			}
		} else {
			inTable = true
		}
		if len(keys) >= 2 && keys[0] == "host" && !seen[keys[1]] {
			seen[keys[1]] = true
			order = append(order, keys[1])
		}
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("parse: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return order, nil
}
