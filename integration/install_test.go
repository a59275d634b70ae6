package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/images/testimage"
)

// installImageArchive writes an image archive (two gzip layers) whose
// bin/hello prints "hello", with a library, a file under bin/ in a
// subdirectory and files elsewhere that `ctr install` must leave alone.
func installImageArchive(t *testing.T, ref string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = testimage.Build(context.Background(), f, testimage.Options{
		Name:    ref,
		TempDir: t.TempDir(),
		Layers: []testimage.Layer{
			{Files: []testimage.File{
				testimage.Dir("bin", 0o755),
				testimage.Regular("bin/hello", "#!/bin/sh\necho old hello\n", 0o755),
				testimage.Regular("bin/gone", "removed by the next layer", 0o755),
				testimage.Dir("etc", 0o755),
				testimage.Regular("etc/hello.conf", "not installed", 0o644),
			}},
			{Files: []testimage.File{
				testimage.Regular("bin/hello", "#!/bin/sh\necho hello\n", 0o750),
				testimage.Whiteout("bin/gone"),
				testimage.Dir("bin/sub", 0o755),
				testimage.Regular("bin/sub/deep", "not directly in bin/", 0o755),
				testimage.Dir("lib", 0o755),
				testimage.Regular("lib/libhello.so.1", "library", 0o644),
				testimage.Symlink("lib/libhello.so", "libhello.so.1"),
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// installedFiles lists dir as "path mode content" (symlinks as
// "path -> target"), sorted by walk order.
func installedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.IsDir():
			out = append(out, rel+"/")
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		default:
			data, _ := os.ReadFile(p)
			out = append(out, rel+" "+fi.Mode().String()+" "+string(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInstall(t *testing.T) {
	d := newDaemon(t, "")
	const ref = "example.com/tools/hello:1"
	d.ctr("images", "import", "--no-unpack", installImageArchive(t, ref))

	dir := filepath.Join(t.TempDir(), "opt")
	d.ctr("install", "--path", dir, ref)
	// bin/sub is installed empty, as containerd's ctr installs it.
	want := []string{"bin/", "bin/hello -rwxr-x--- #!/bin/sh\necho hello\n", "bin/sub/"}
	if got := installedFiles(t, dir); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("installed:\n got %q\nwant %q", got, want)
	}
	if out, err := exec.Command(filepath.Join(dir, "bin", "hello")).CombinedOutput(); err != nil || string(out) != "hello\n" {
		t.Errorf("bin/hello: %q, %v", out, err)
	}

	// Again without --replace: refused, nothing changed.
	os.Remove(filepath.Join(dir, "bin", "hello"))
	if err := os.WriteFile(filepath.Join(dir, "bin", "hello"), []byte("mine"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "bin", "sub")); err != nil {
		t.Fatal(err)
	}
	out, err := d.ctrErr("install", "--libs", "--path", dir, ref)
	if err == nil || !strings.Contains(out, "cannot replace bin/hello in "+dir) {
		t.Fatalf("install over an existing file: %v\n%s", err, out)
	}
	if got, want := installedFiles(t, dir), []string{"bin/", "bin/hello -rwx------ mine"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after the refused install:\n got %q\nwant %q", got, want)
	}

	// With --replace (and --libs, short forms): replaced, libs too.
	d.ctr("install", "-r", "-l", "--path", dir, ref)
	want = []string{"bin/", "bin/hello -rwxr-x--- #!/bin/sh\necho hello\n", "bin/sub/",
		"lib/", "lib/libhello.so -> libhello.so.1", "lib/libhello.so.1 -rw-r--r-- library"}
	if got := installedFiles(t, dir); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after --replace --libs:\n got %q\nwant %q", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("beside the install dir: %v", entries)
	}

	// Without --path the daemon's opt plugin names the directory: its
	// folder under --root, whose bin/ is first on berthd's PATH.
	optDir := filepath.Join(d.Root, "io.containerd.internal.v1.opt")
	mustContain(t, d.ctr("plugins", "ls", "-d", "id==opt"), "path", optDir)
	d.ctr("install", ref)
	if b, err := os.ReadFile(filepath.Join(optDir, "bin", "hello")); err != nil || !strings.Contains(string(b), "hello") {
		t.Errorf("install without --path: %v %q", err, b)
	}
	if out, err := d.ctrErr("install", "--path", dir, "example.com/missing:1"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("install of a missing image: %v\n%s", err, out)
	}
	if out, err := d.ctrErr("install", "--path", dir); err == nil {
		t.Errorf("install without a reference succeeded:\n%s", out)
	}
}

// TestInstallBothCtrs installs the same image with Debian's containerd ctr
// (against berthd) and ours: the same files, modes and errors.
func TestInstallBothCtrs(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	const ref = "example.com/tools/hello:1"
	d.ctr("images", "import", "--no-unpack", installImageArchive(t, ref))

	// containerd's ctr needs the directory to exist (ours creates it).
	ours, theirs := t.TempDir(), t.TempDir()
	// --replace for containerd's: it checks each entry against what its
	// earlier layers installed, so bin/hello, in both layers, would stop it.
	d.ctr("install", "--libs", "--path", ours, ref)
	d.dctr("install", "--replace", "--libs", "--path", theirs, ref)
	got, want := installedFiles(t, ours), installedFiles(t, theirs)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("installed by our ctr:\n %q\nby containerd's:\n %q", got, want)
	}
	for name, dir := range map[string]string{"ours": ours, "theirs": theirs} {
		out, err := d.ctrErr("install", "--path", dir, ref)
		if err == nil || !strings.Contains(out, "cannot replace bin/hello in "+dir) {
			t.Errorf("our ctr over %s: %v\n%s", name, err, out)
		}
		out, err = d.dctrErr("install", "--path", dir, ref)
		if err == nil || !strings.Contains(out, "cannot replace bin/hello in "+dir) {
			t.Errorf("containerd's ctr over %s: %v\n%s", name, err, out)
		}
	}
	// Without --path, containerd's ctr finds berthd's opt plugin too
	// (--replace: see above).
	d.dctr("install", "--replace", ref)
	if _, err := os.Stat(filepath.Join(d.Root, "io.containerd.internal.v1.opt", "bin", "hello")); err != nil {
		t.Errorf("containerd's ctr without --path: %v", err)
	}
}
