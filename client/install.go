package client

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	introspectionapi "github.com/berth-containers/berth/api/services/introspection/v1"
	"github.com/berth-containers/berth/archive"
	"github.com/berth-containers/berth/archive/compression"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
)

// InstallConfig says what Install takes from an image and where it puts it.
type InstallConfig struct {
	// Libs installs the files under lib/ too, not only those under bin/.
	Libs bool
	// Replace lets installed files replace files already there.
	Replace bool
	// Path is the directory to install into (files land in Path/bin and
	// Path/lib); empty means the path the daemon's "opt" plugin exports.
	Path string
}

// InstallOpts configures Install.
type InstallOpts func(*InstallConfig)

// WithInstallLibs installs the image's lib/ files as well.
func WithInstallLibs(c *InstallConfig) { c.Libs = true }

// WithInstallReplace replaces files that are already installed.
func WithInstallReplace(c *InstallConfig) { c.Replace = true }

// WithInstallPath installs into dir instead of the opt plugin's path.
func WithInstallPath(dir string) InstallOpts {
	return func(c *InstallConfig) { c.Path = dir }
}

// Install copies the binaries of image (for the handle's platform) onto
// this host, as containerd's `ctr install` does: the files directly under
// bin/ in the image's layers go to DIR/bin, and with Libs those directly
// under lib/ to DIR/lib, where DIR is cfg.Path or, by default, the path the
// daemon's "opt" plugin exports (containerd's /opt/containerd). Nothing
// else in the layers is looked at. Without Replace a file already at a
// target name fails the install before anything is written.
//
// The layers are applied in order, filtered to those entries, by the safe
// tar reader (archive.Apply) into a private staging directory inside DIR,
// so later layers and their whiteouts override earlier ones as in the
// image's file system, and each file then moves into place with one
// rename: a reader of DIR/bin/NAME sees the old file or the new one, never
// a partial one. What cannot be installed safely is skipped with a
// warning: absolute names or ones that leave bin/ or lib/ (as containerd's
// filter skips them), device nodes and FIFOs, symlinks whose target could
// resolve outside DIR, and hardlinks to files not installed by the same
// call. A directory directly in bin/ is installed empty, as containerd's
// filter takes it but nothing in it. Modes, owners (when run as root),
// setuid/setgid bits and times are kept from the image, as containerd
// keeps them.
func (c *Client) Install(ctx context.Context, image *Image, opts ...InstallOpts) error {
	var cfg InstallConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx = c.withNamespace(ctx)
	dir, err := c.installPath(ctx, cfg)
	if err != nil {
		return err
	}
	return installImage(ctx, c.ContentStore(), image, dir, cfg)
}

// installPath is cfg.Path, else the path the daemon's opt plugin exports.
func (c *Client) installPath(ctx context.Context, cfg InstallConfig) (string, error) {
	if cfg.Path != "" {
		return cfg.Path, nil
	}
	resp, err := c.IntrospectionService().Plugins(ctx, &introspectionapi.PluginsRequest{Filters: []string{"id==opt"}})
	if err != nil {
		return "", errdefs.FromGRPC(err)
	}
	// containerd's messages, so scripts see the same text from either.
	if len(resp.Plugins) != 1 {
		return "", fmt.Errorf("opt service not enabled: %w", errdefs.ErrFailedPrecondition)
	}
	p := resp.Plugins[0].Exports["path"]
	if p == "" {
		return "", fmt.Errorf("opt path not exported: %w", errdefs.ErrFailedPrecondition)
	}
	return p, nil
}

// installDirs are the image directories Install takes files from, and so
// the directories under the install path it writes to.
func installDirs(cfg InstallConfig) []string {
	if cfg.Libs {
		return []string{"bin", "lib"}
	}
	return []string{"bin"}
}

func installImage(ctx context.Context, cs content.Provider, image *Image, dir string, cfg InstallConfig) error {
	manifest, err := images.Manifest(ctx, cs, image.Target(), image.Platform())
	if err != nil {
		return fmt.Errorf("install %s: %w", image.Name(), err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fmt.Errorf("install %s: %w", image.Name(), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install %s: create install directory: %w", image.Name(), err)
	}
	// The staging directory is inside the target so the final renames
	// stay on one file system; it is private (0700) until removed.
	stage, err := os.MkdirTemp(dir, ".berth-install-")
	if err != nil {
		return fmt.Errorf("install %s: create staging directory: %w", image.Name(), err)
	}
	defer os.RemoveAll(stage)

	f := &installFilter{ctx: ctx, dirs: installDirs(cfg), have: map[string]int{}}
	for i, layer := range manifest.Layers {
		f.layer = i
		if err := installLayer(ctx, cs, layer, stage, f); err != nil {
			return fmt.Errorf("install %s: layer %s: %w", image.Name(), layer.Digest, err)
		}
	}
	if err := moveInstalled(stage, dir, f.dirs, cfg.Replace); err != nil {
		return fmt.Errorf("install %s: %w", image.Name(), err)
	}
	return nil
}

// installLayer applies the entries of one layer that f selects onto stage.
func installLayer(ctx context.Context, cs content.Provider, layer ocispec.Descriptor, stage string, f *installFilter) error {
	ra, err := cs.ReaderAt(ctx, layer)
	if err != nil {
		return err
	}
	defer ra.Close()
	dr, err := compression.DecompressStream(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		return err
	}
	defer dr.Close()

	// The filtered entries are re-encoded as a tar and applied by the safe
	// tar reader, which has no filter of its own.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := f.filter(tar.NewReader(dr), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	_, aerr := archive.Apply(ctx, stage, pr)
	pr.CloseWithError(errApplyEnded) // unblocks the filter if Apply stopped early
	ferr := <-done
	if ferr != nil && !errors.Is(ferr, errApplyEnded) {
		return ferr // the cause; Apply's error is then only the broken pipe
	}
	return aerr
}

var errApplyEnded = errors.New("apply ended")

// installFilter selects the entries Install takes from the layers.
type installFilter struct {
	ctx   context.Context
	dirs  []string
	layer int
	// have maps the installable names seen so far to their layer, so that
	// a hardlink can be checked to name one of them and whiteouts forget
	// what they hide.
	have map[string]int
	// dirDone holds the directories this layer's filtered tar has named.
	dirDone map[string]bool
}

// filter copies the entries of tr that Install takes to w as a tar.
func (f *installFilter) filter(tr *tar.Reader, w io.Writer) error {
	f.dirDone = map[string]bool{}
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar header: %w", err)
		}
		out, ok := f.take(hdr)
		if !ok {
			continue
		}
		if d := path.Dir(out.Name); d != "." && !f.dirDone[d] {
			// The directory first, as its own entry: archive.Apply then
			// counts it as this layer's, so an opaque whiteout of the
			// root in the same layer keeps it (and this layer's files).
			f.dirDone[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX}); err != nil {
				return fmt.Errorf("entry %q: %w", d, err)
			}
		}
		if err := tw.WriteHeader(out); err != nil {
			return fmt.Errorf("entry %q: %w", out.Name, err)
		}
		if out.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return fmt.Errorf("entry %q: %w", out.Name, err)
			}
		}
	}
	return tw.Close()
}

// take decides on one entry: whether it is installed, and the header it
// is applied with (clean name, only the fields Apply uses).
func (f *installFilter) take(hdr *tar.Header) (*tar.Header, bool) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil, false
	}
	// As containerd's filter (filepath.Dir(name) == "bin"): an absolute
	// name, or one that is not directly inside bin/ once cleaned, is
	// ignored, like everything else in the layer.
	name := path.Clean(hdr.Name)
	if path.IsAbs(hdr.Name) || name == ".." || strings.HasPrefix(name, "../") {
		return nil, false
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")

	if strings.HasPrefix(base, ".wh.") {
		return f.whiteout(dir, base, hdr)
	}
	if !f.selected(dir) || base == "." || base == ".." {
		return nil, false
	}
	out := &tar.Header{
		Name:       name,
		Mode:       hdr.Mode,
		Uid:        hdr.Uid,
		Gid:        hdr.Gid,
		ModTime:    hdr.ModTime,
		AccessTime: hdr.AccessTime,
		Format:     tar.FormatPAX,
	}
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if out.PAXRecords == nil {
				out.PAXRecords = map[string]string{}
			}
			out.PAXRecords[k] = v
		}
	}
	skip := func(why string) (*tar.Header, bool) {
		log.G(f.ctx).WithField("entry", hdr.Name).Warnf("install: skipping %s: %s", name, why)
		return nil, false
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		// The tar reader gives sparse files' full data, holes as zeros.
		out.Typeflag, out.Size = tar.TypeReg, hdr.Size
	case tar.TypeSymlink:
		if !symlinkStaysInside(hdr.Linkname) {
			return skip(fmt.Sprintf("symlink target %q could resolve outside the install directory", hdr.Linkname))
		}
		out.Typeflag, out.Linkname = tar.TypeSymlink, hdr.Linkname
	case tar.TypeLink:
		// Link names are relative to the layer's root, a leading "/" or
		// not, as Apply reads them.
		target := path.Clean(strings.TrimLeft(hdr.Linkname, "/"))
		if _, ok := f.have[target]; !ok {
			return skip(fmt.Sprintf("hardlink to %q, which is not a file this install takes", hdr.Linkname))
		}
		out.Typeflag, out.Linkname = tar.TypeLink, target
	case tar.TypeDir:
		// As containerd's: the directory, not what is in it (not directly
		// in bin/), so an empty one.
		out.Typeflag = tar.TypeDir
		return out, true // not in have: no hardlink may name it
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return skip("device nodes and FIFOs are not installed")
	default:
		return skip(fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
	}
	f.have[name] = f.layer
	return out, true
}

func (f *installFilter) selected(dir string) bool {
	for _, d := range f.dirs {
		if dir == d {
			return true
		}
	}
	return false
}

// whiteout passes on the whiteouts that hide installable files from lower
// layers (a name in bin/, bin/ made opaque, bin/ itself, or the whole root
// made opaque): applied to the staging directory, they remove only what
// earlier layers staged there, never an installed file.
func (f *installFilter) whiteout(dir, base string, hdr *tar.Header) (*tar.Header, bool) {
	hidden := strings.TrimPrefix(base, ".wh.")
	forget := func(match func(name string) bool) {
		for n, l := range f.have {
			if l < f.layer && match(n) {
				delete(f.have, n)
			}
		}
	}
	switch {
	case base == ".wh..wh..opq" && (dir == "" || f.selected(dir)):
		forget(func(n string) bool { return dir == "" || path.Dir(n) == dir })
	case strings.HasPrefix(base, ".wh..wh."):
		return nil, false // AUFS bookkeeping
	case dir == "" && f.selected(hidden):
		forget(func(n string) bool { return path.Dir(n) == hidden })
	case f.selected(dir) && hidden != "" && hidden != "." && hidden != "..":
		delete(f.have, path.Join(dir, hidden))
	default:
		return nil, false
	}
	return &tar.Header{Name: path.Join(dir, base), Typeflag: tar.TypeReg, Mode: 0o600,
		ModTime: hdr.ModTime, Format: tar.FormatPAX}, true
}

// symlinkStaysInside reports whether a symlink placed in DIR/bin or
// DIR/lib with this target resolves inside DIR, whatever the other
// symlinks Install writes say: the target must be relative, climb at most
// one level (to DIR) and only at its start, then only descend. Each such
// link lands inside DIR, so chains of them do too; a lexical check alone
// would not do ("s/.." where s is a link to "..").
func symlinkStaysInside(target string) bool {
	if target == "" || path.IsAbs(target) || strings.IndexByte(target, 0) >= 0 {
		return false
	}
	up, descending := 0, false
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if descending {
				return false
			}
			up++
		default:
			descending = true
		}
	}
	return up <= 1
}

// moveInstalled renames what was staged under stage/<d> for each of dirs
// into dir/<d>. Without replace, every target name is checked first, so a
// conflict installs nothing, and each rename refuses to replace (a file
// that appears meanwhile is not overwritten).
func moveInstalled(stage, dir string, dirs []string, replace bool) error {
	type move struct{ rel, from, to string }
	var moves []move
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(stage, d))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range entries {
			rel := d + "/" + e.Name()
			m := move{rel, filepath.Join(stage, d, e.Name()), filepath.Join(dir, d, e.Name())}
			if e.IsDir() && replace {
				// An empty directory: one already there is kept, with
				// what it holds.
				if fi, err := os.Lstat(m.to); err == nil && fi.IsDir() {
					continue
				}
			}
			moves = append(moves, m)
		}
	}
	sort.Slice(moves, func(i, j int) bool { return moves[i].rel < moves[j].rel })
	if !replace {
		for _, m := range moves {
			if _, err := os.Lstat(m.to); err == nil {
				return fmt.Errorf("cannot replace %s in %s: %w", m.rel, dir, errdefs.ErrAlreadyExists)
			}
		}
	}
	made := map[string]bool{}
	for _, m := range moves {
		if td := filepath.Dir(m.to); !made[td] {
			if err := os.MkdirAll(td, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", td, err)
			}
			made[td] = true
		}
		if err := renameInto(m.from, m.to, replace); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("cannot replace %s in %s: %w", m.rel, dir, errdefs.ErrAlreadyExists)
			}
			return fmt.Errorf("install %s: %w", m.rel, err)
		}
	}
	return nil
}

// renameInto renames from to to; without replace it fails with EEXIST
// when to exists (RENAME_NOREPLACE, else a check just before).
func renameInto(from, to string, replace bool) error {
	if replace {
		return os.Rename(from, to)
	}
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE.
		if _, serr := os.Lstat(to); serr == nil {
			return unix.EEXIST
		}
		return os.Rename(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
