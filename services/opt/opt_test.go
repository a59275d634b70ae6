package opt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestSetUp(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("LD_LIBRARY_PATH", "")
	dir := filepath.Join(t.TempDir(), "opt")
	for i := 0; i < 2; i++ { // a second set-up (a plugin reload) adds nothing twice
		d, err := setUp(dir + "/")
		if err != nil {
			t.Fatal(err)
		}
		if d.Path != dir {
			t.Fatalf("path %q, want %q", d.Path, dir)
		}
	}
	for _, sub := range []string{"bin", "lib"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o711 {
			t.Fatalf("%s: %v %v", sub, fi, err)
		}
	}
	if got, want := os.Getenv("PATH"), filepath.Join(dir, "bin")+":/usr/bin:/bin"; got != want {
		t.Fatalf("PATH %q, want %q", got, want)
	}
	if got, want := os.Getenv("LD_LIBRARY_PATH"), filepath.Join(dir, "lib"); got != want {
		t.Fatalf("LD_LIBRARY_PATH %q, want %q", got, want)
	}
	if _, err := setUp("relative/opt"); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("relative path: %v", err)
	}
}
