package testimage

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultBusybox is where Debian's busybox-static installs a statically
// linked busybox, which runs in an image with no libraries.
const DefaultBusybox = "/bin/busybox"

// BusyboxApplets are linked to busybox in /bin.
var BusyboxApplets = []string{
	"[", "basename", "cat", "chmod", "chown", "cp", "date", "dd", "df", "dirname",
	"du", "echo", "env", "false", "find", "grep", "head", "hostname", "id",
	"kill", "ln", "ls", "mkdir", "mount", "mv", "nproc", "printenv", "printf",
	"ps", "pwd", "readlink", "rm", "rmdir", "sed", "sh", "sleep", "stat",
	"sync", "tail", "tee", "test", "top", "touch", "tr", "true", "umount",
	"uname", "wc", "whoami", "yes",
}

// BusyboxConfig is the config of the busybox images: a shell by default.
var BusyboxConfig = ocispec.ImageConfig{
	Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	Cmd: []string{"sh"},
}

// BusyboxLayer is the base layer: /bin/busybox copied from the host file
// busybox, applet symlinks, users and groups, and the directories a
// runtime mounts onto.
func BusyboxLayer(busybox string) (Layer, error) {
	if busybox == "" {
		busybox = DefaultBusybox
	}
	st, err := os.Stat(busybox)
	if err != nil {
		return Layer{}, fmt.Errorf("busybox binary: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Layer{}, fmt.Errorf("busybox binary %s is not a regular file: %w", busybox, errdefs.ErrInvalidArgument)
	}
	files := []File{
		Dir("bin", 0o755),
		{Path: "bin/busybox", Source: busybox, Mode: 0o755},
	}
	for _, a := range BusyboxApplets {
		files = append(files, Symlink("bin/"+a, "busybox"))
	}
	files = append(files,
		Dir("dev", 0o755),
		Dir("etc", 0o755),
		Regular("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
		Regular("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
		Regular("etc/hostname", "busybox\n", 0o644),
		Dir("proc", 0o555),
		Dir("root", 0o700),
		Dir("sys", 0o555),
		Dir("tmp", fs.ModeSticky|0o777),
		Dir("usr", 0o755),
		Dir("usr/bin", 0o755),
		Dir("var", 0o755),
	)
	return Layer{Files: files}, nil
}

// Busybox returns options for a busybox image of n layers (n >= 1): the
// base layer; a second that adds /usr/share/berth/{hello,remove-me}.txt;
// a third that deletes remove-me.txt with a whiteout and adds layer3.txt;
// further ones add layerN.txt.
func Busybox(busybox string, n int) (Options, error) {
	if n < 1 {
		return Options{}, fmt.Errorf("busybox image needs at least one layer, not %d: %w", n, errdefs.ErrInvalidArgument)
	}
	base, err := BusyboxLayer(busybox)
	if err != nil {
		return Options{}, err
	}
	opts := Options{Name: DefaultName, Layers: []Layer{base}, Config: BusyboxConfig}
	for i := 2; i <= n; i++ {
		var l Layer
		switch i {
		case 2:
			l.Files = []File{
				Dir("usr/share", 0o755),
				Dir("usr/share/berth", 0o755),
				Regular("usr/share/berth/hello.txt", "hello from layer 2\n", 0o644),
				Regular("usr/share/berth/remove-me.txt", "deleted by layer 3\n", 0o644),
			}
		case 3:
			l.Files = []File{
				Whiteout("usr/share/berth/remove-me.txt"),
				Regular("usr/share/berth/layer3.txt", "hello from layer 3\n", 0o644),
			}
		default:
			l.Files = []File{Regular(fmt.Sprintf("usr/share/berth/layer%d.txt", i), fmt.Sprintf("hello from layer %d\n", i), 0o644)}
		}
		opts.Layers = append(opts.Layers, l)
	}
	return opts, nil
}

// RandomLayers returns n layers holding totalBytes of random data between
// them, for benchmarks of pulls, imports and unpacks.
func RandomLayers(totalBytes int64, n int, seed uint64) []Layer {
	if n < 1 {
		n = 1
	}
	out := make([]Layer, n)
	per := totalBytes / int64(n)
	for i := range out {
		size := per
		if i == n-1 {
			size = totalBytes - per*int64(n-1)
		}
		out[i] = Layer{Files: []File{
			Dir("data", 0o755),
			RandomFile(fmt.Sprintf("data/random-%d.bin", i), size, seed+uint64(i)),
		}}
	}
	return out
}
