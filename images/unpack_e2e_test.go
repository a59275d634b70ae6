package images_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berth-containers/berth/content/local"
	"github.com/berth-containers/berth/diff/walking"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/images/archive"
	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/snapshots/native"
)

// TestUnpackBusyboxNative imports the three-layer busybox test image into
// the real content store and unpacks it, twice at once, with the native
// snapshotter and the walking applier.
func TestUnpackBusyboxNative(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for bind mounts")
	}
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	ctx := context.Background()
	root := t.TempDir()
	store, err := local.NewStore(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := native.New(filepath.Join(root, "native"))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()

	opts, err := testimage.Busybox("", 3)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	built, err := testimage.Build(ctx, &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := archive.Import(ctx, store, &buf)
	if err != nil {
		t.Fatal(err)
	}

	applier := walking.NewApplier(store)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			chain, err := images.Unpack(ctx, store, recs[0].Target, sn, applier, platforms.DefaultMatcher(), images.WithSnapshotterName("native"))
			if err == nil && chain != built.ChainID {
				t.Errorf("chain %s want %s", chain, built.ChainID)
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// (Labels are kept by metadata's store, not content/local; the unit
	// tests check them.)

	// A view of the top snapshot shows the merged file system.
	mounts, err := sn.View(ctx, "view", built.ChainID.String())
	if err != nil {
		t.Fatal(err)
	}
	err = mount.WithTempMount(ctx, mounts, func(dir string) error {
		for p, want := range map[string]bool{
			"bin/busybox":                   true,
			"bin/sh":                        true,
			"etc/passwd":                    true,
			"usr/share/berth/hello.txt":     true,
			"usr/share/berth/layer3.txt":    true,
			"usr/share/berth/remove-me.txt": false,
		} {
			_, err := os.Lstat(filepath.Join(dir, p))
			if (err == nil) != want {
				t.Errorf("%s: exists=%v, want %v", p, err == nil, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
