package service

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/berth-containers/berth/api/runtime/runc/options"
	runtimeoptions "github.com/berth-containers/berth/api/runtime/runtimeoptions/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// maxConfigSize bounds a runtime options file: it holds a dozen keys, and
// the shim must not be made to read a device or a huge file.
const maxConfigSize = 64 << 10

// runcOptionsURL is the one type_url a runtime options file may name.
const runcOptionsURL = "containerd.runc.v1.Options"

// optionsFromConfig reads the runc options a runtimeoptions.v1.Options
// points at: its config_body, else the TOML file at config_path (what
// `ctr run --runtime-config-path` sends).
func optionsFromConfig(ro *runtimeoptions.Options) (*options.Options, error) {
	if u := strings.TrimPrefix(ro.GetTypeUrl(), "type.googleapis.com/"); u != "" && u != runcOptionsURL {
		return nil, fmt.Errorf("runtime options of type %q: only %s is understood: %w", ro.GetTypeUrl(), runcOptionsURL, errdefs.ErrInvalidArgument)
	}
	body, src := ro.GetConfigBody(), "config_body"
	if len(body) == 0 {
		p := ro.GetConfigPath()
		if p == "" {
			return &options.Options{}, nil
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("runtime config path %q: not absolute: %w", p, errdefs.ErrInvalidArgument)
		}
		var err error
		if body, err = readSmallFile(p); err != nil {
			return nil, fmt.Errorf("runtime config: %w", err)
		}
		src = p
	}
	opts, err := parseRuncOptionsTOML(body)
	if err != nil {
		return nil, fmt.Errorf("runtime config %s: %w", src, err)
	}
	return opts, nil
}

// readSmallFile reads a regular file of at most maxConfigSize bytes.
func readSmallFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: %w", p, errdefs.ErrInvalidArgument)
	}
	if st.Size() > maxConfigSize {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", p, st.Size(), maxConfigSize, errdefs.ErrInvalidArgument)
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// parseRuncOptionsTOML decodes runc options from TOML. Keys are the
// option names either as containerd's CRI config spells them
// (SystemdCgroup, BinaryName) or as its JSON/proto does (systemd_cgroup,
// binary_name); an unknown key or a wrong type is an error, not ignored.
func parseRuncOptionsTOML(b []byte) (*options.Options, error) {
	var raw map[string]interface{}
	if err := toml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	opts := &options.Options{}
	setters := map[string]func(interface{}) error{
		"nopivotroot":   boolSetter(func(v bool) { opts.NoPivotRoot = v }),
		"nonewkeyring":  boolSetter(func(v bool) { opts.NoNewKeyring = v }),
		"systemdcgroup": boolSetter(func(v bool) { opts.SystemdCgroup = v }),
		"shimcgroup":    stringSetter(func(v string) { opts.ShimCgroup = v }),
		"binaryname":    stringSetter(func(v string) { opts.BinaryName = v }),
		"root":          stringSetter(func(v string) { opts.Root = v }),
		"criupath":      stringSetter(func(v string) { opts.CriuPath = v }),
		"criuimagepath": stringSetter(func(v string) { opts.CriuImagePath = v }),
		"criuworkpath":  stringSetter(func(v string) { opts.CriuWorkPath = v }),
		"iouid":         idSetter(func(v uint32) { opts.IoUid = v }),
		"iogid":         idSetter(func(v uint32) { opts.IoGid = v }),
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set, ok := setters[strings.ToLower(strings.ReplaceAll(k, "_", ""))]
		if !ok {
			return nil, fmt.Errorf("unknown runc option %q: %w", k, errdefs.ErrInvalidArgument)
		}
		if err := set(raw[k]); err != nil {
			return nil, fmt.Errorf("runc option %q: %w: %w", k, err, errdefs.ErrInvalidArgument)
		}
	}
	if opts.Root != "" && !filepath.IsAbs(opts.Root) {
		return nil, fmt.Errorf("runc option root %q: not absolute: %w", opts.Root, errdefs.ErrInvalidArgument)
	}
	return opts, nil
}

func boolSetter(set func(bool)) func(interface{}) error     { return typedSetter(set, "a boolean") }
func stringSetter(set func(string)) func(interface{}) error { return typedSetter(set, "a string") }

// typedSetter passes a decoded TOML value of type T to set.
func typedSetter[T any](set func(T), want string) func(interface{}) error {
	return func(v interface{}) error {
		t, ok := v.(T)
		if !ok {
			return fmt.Errorf("want %s, not %T", want, v)
		}
		set(t)
		return nil
	}
}

func idSetter(set func(uint32)) func(interface{}) error {
	return func(v interface{}) error {
		n, ok := v.(int64)
		if !ok || n < 0 || n > 1<<32-1 {
			return fmt.Errorf("want an id from 0 to 4294967295, not %v", v)
		}
		set(uint32(n))
		return nil
	}
}
