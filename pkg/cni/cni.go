// Package cni runs CNI plugins (the Container Network Interface, spec
// 1.0) to give a container's network namespace its interfaces, as
// containerd's ctr run --cni does: the loopback network, then the first
// network configuration of the configuration directory as eth0.
//
// A plugin is a binary run with CNI_COMMAND and the other CNI_* variables
// in its environment and its configuration, as JSON, on stdin; it answers
// with a result or an error on stdout. The plugins of a configuration list
// are chained: each gets the previous one's result as prevResult, and
// they are deleted in reverse order.
package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// Defaults, as the CNI tools and containerd have them; NETCONFPATH and
// CNI_PATH (the variables of the reference cnitool) override them.
const (
	DefaultConfDir = "/etc/cni/net.d"
	// Debian's containernetworking-plugins install to /usr/lib/cni.
	DefaultPluginPath = "/opt/cni/bin:/usr/lib/cni"
)

// maxOutput bounds what a plugin may print.
const maxOutput = 1 << 20

// Network is one network configuration list.
type Network struct {
	Name       string
	CNIVersion string
	// Plugins are the plugins' configurations, in order.
	Plugins []json.RawMessage
	// Source is the file it was read from ("" for the loopback network).
	Source string
}

// Attachment says where a network is attached: the container (for the
// plugins' bookkeeping), its network namespace and the interface's name.
type Attachment struct {
	ContainerID string
	NetNS       string
	IfName      string
}

// Plugins finds and runs plugin binaries.
type Plugins struct {
	// Path is the directories searched for plugins, in order.
	Path []string
	// Timeout bounds each plugin run (default 1 minute).
	Timeout time.Duration
}

// PluginsFromEnv is the plugin path of CNI_PATH, else DefaultPluginPath.
func PluginsFromEnv() *Plugins {
	p := os.Getenv("CNI_PATH")
	if p == "" {
		p = DefaultPluginPath
	}
	return &Plugins{Path: filepath.SplitList(p)}
}

// ConfDirFromEnv is NETCONFPATH, else DefaultConfDir.
func ConfDirFromEnv() string {
	if d := os.Getenv("NETCONFPATH"); d != "" {
		return d
	}
	return DefaultConfDir
}

// Loopback is the network that brings the namespace's lo up.
func Loopback() *Network {
	return &Network{Name: "cni-loopback", CNIVersion: "1.0.0", Plugins: []json.RawMessage{json.RawMessage(`{"type":"loopback"}`)}}
}

// LoadDefault reads the first network configuration of dir, by file name:
// a list (.conflist), or a single plugin's configuration (.conf, .json).
// Files that do not parse are skipped, as libcni does; none at all is a
// NotFound error.
func LoadDefault(dir string) (*Network, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cni configuration directory: %w", err)
	}
	var names []string
	for _, e := range ents {
		switch filepath.Ext(e.Name()) {
		case ".conf", ".conflist", ".json":
			if e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		path := filepath.Join(dir, name)
		n, err := loadFile(path)
		if err == nil {
			return n, nil
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("no usable cni network in %s: %w: %w", dir, errors.Join(errs...), errdefs.ErrNotFound)
	}
	return nil, fmt.Errorf("no cni network configuration in %s: %w", dir, errdefs.ErrNotFound)
}

func loadFile(path string) (*Network, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxOutput {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxOutput)
	}
	var conf struct {
		Name       string            `json:"name"`
		CNIVersion string            `json:"cniVersion"`
		Plugins    []json.RawMessage `json:"plugins"`
		Type       string            `json:"type"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n := &Network{Name: conf.Name, CNIVersion: conf.CNIVersion, Plugins: conf.Plugins, Source: path}
	if filepath.Ext(path) != ".conflist" {
		// One plugin's configuration: a list of one.
		n.Plugins = []json.RawMessage{b}
	}
	if n.Name == "" {
		return nil, fmt.Errorf("%s: no network name", path)
	}
	if len(n.Plugins) == 0 {
		return nil, fmt.Errorf("%s: no plugins", path)
	}
	return n, nil
}

// pluginType is a plugin configuration's "type": the binary's name.
func pluginType(conf json.RawMessage) (string, error) {
	var c struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(conf, &c); err != nil {
		return "", err
	}
	if c.Type == "" || strings.ContainsAny(c.Type, "/\x00") || c.Type == "." || c.Type == ".." {
		return "", fmt.Errorf("plugin type %q is not a plugin name: %w", c.Type, errdefs.ErrInvalidArgument)
	}
	return c.Type, nil
}

// Add attaches the network: each plugin's ADD in order, the previous
// result handed on. It returns the last plugin's result. If a plugin
// fails, the ones before it are deleted again.
func (p *Plugins) Add(ctx context.Context, n *Network, a Attachment) (json.RawMessage, error) {
	var prev json.RawMessage
	for i, conf := range n.Plugins {
		res, err := p.run(ctx, "ADD", n, conf, a, prev)
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				p.run(context.WithoutCancel(ctx), "DEL", n, n.Plugins[j], a, nil)
			}
			return nil, fmt.Errorf("cni network %q: add: %w", n.Name, err)
		}
		if len(res) > 0 {
			prev = res
		}
	}
	return prev, nil
}

// Del detaches the network: each plugin's DEL in reverse order. A DEL is
// attempted for every plugin even if one fails.
func (p *Plugins) Del(ctx context.Context, n *Network, a Attachment) error {
	var errs []error
	for i := len(n.Plugins) - 1; i >= 0; i-- {
		if _, err := p.run(ctx, "DEL", n, n.Plugins[i], a, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cni network %q: del: %w", n.Name, err)
	}
	return nil
}

// pluginError is what a plugin prints when it fails.
type pluginError struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details"`
}

func (p *Plugins) run(ctx context.Context, command string, n *Network, conf json.RawMessage, a Attachment, prev json.RawMessage) (json.RawMessage, error) {
	typ, err := pluginType(conf)
	if err != nil {
		return nil, err
	}
	bin, err := p.find(typ)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(conf, &fields); err != nil {
		return nil, fmt.Errorf("plugin %s: configuration: %w", typ, err)
	}
	// What libcni injects: the list's name and version, the chain's
	// previous result.
	fields["name"], _ = json.Marshal(n.Name)
	fields["cniVersion"], _ = json.Marshal(n.CNIVersion)
	delete(fields, "prevResult")
	if len(prev) > 0 {
		fields["prevResult"] = prev
	}
	stdin, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+a.ContainerID,
		"CNI_NETNS="+a.NetNS,
		"CNI_IFNAME="+a.IfName,
		"CNI_PATH="+strings.Join(p.Path, string(os.PathListSeparator)),
	)
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	out := bytes.TrimSpace(stdout.Bytes())
	if runErr != nil {
		var pe pluginError
		if json.Unmarshal(out, &pe) == nil && pe.Msg != "" {
			msg := pe.Msg
			if pe.Details != "" {
				msg += ": " + pe.Details
			}
			return nil, fmt.Errorf("plugin %s %s: %s (code %d)", typ, command, msg, pe.Code)
		}
		return nil, fmt.Errorf("plugin %s %s: %w: %s", typ, command, runErr, bytes.TrimSpace(append(out, stderr.Bytes()...)))
	}
	if command != "ADD" || len(out) == 0 {
		return nil, nil
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("plugin %s %s: result is not JSON: %q", typ, command, out)
	}
	return json.RawMessage(out), nil
}

func (p *Plugins) find(typ string) (string, error) {
	for _, dir := range p.Path {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, typ)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("cni plugin %q not found in %s: %w", typ, strings.Join(p.Path, ":"), errdefs.ErrNotFound)
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}
