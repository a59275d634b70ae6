package client

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"

	_ "github.com/berth-containers/berth/services/containers"
)

// snapshotFile reads name from the root of snapshot key (mounted briefly).
func snapshotFile(t *testing.T, ctx context.Context, c *Client, key, name string) (string, error) {
	t.Helper()
	ms, err := c.SnapshotService("native").Mounts(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	err = mount.WithTempMount(ctx, ms, func(root string) error {
		var err error
		data, err = os.ReadFile(filepath.Join(root, name))
		return err
	})
	return string(data), err
}

// TestCheckpointRestore: a checkpoint index holds what containerd's does
// (annotations, spec, runtime options, image, gzip rw layer) and Restore
// makes a container with the same spec, runtime and image and the rw
// layer applied; a refused task checkpoint leaves no image.
func TestCheckpointRestore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts snapshots")
	}
	c, _ := newTestDaemon(t)
	ctx := namespaces.WithNamespace(context.Background(), "test")
	data, _ := buildArchive(t, smallImage("docker.io/library/sample:1", 2))
	if _, err := c.Import(ctx, bytes.NewReader(data), WithImportSnapshotter("native")); err != nil {
		t.Fatal(err)
	}
	img, err := c.ResolveImage(ctx, "docker.io/library/sample:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	runtimeOpts := &anypb.Any{TypeUrl: "containerd.runc.v1.Options", Value: []byte{0x0a, 0x01, 'x'}}
	spec := &specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}, Hostname: "ckpt"}
	ct, err := c.NewContainer(ctx, "c1", WithSnapshotter("native"), WithNewSnapshot("c1", img),
		WithSpec(spec), WithRuntime("io.containerd.runc.v2", runtimeOpts))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.SnapshotService("native").Mounts(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.WithTempMount(ctx, ms, func(root string) error {
		return os.WriteFile(filepath.Join(root, "rw.txt"), []byte("written"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}

	// A task checkpoint is refused (no tasks service here): no image.
	if _, err := ct.Checkpoint(ctx, "example.com/ck:task", WithCheckpointTask); !errdefs.IsNotImplemented(err) {
		t.Fatalf("task checkpoint: %v, want NotImplemented", err)
	}
	if _, err := c.ImageService().Get(ctx, "example.com/ck:task"); !errdefs.IsNotFound(err) {
		t.Fatalf("refused task checkpoint left an image: %v", err)
	}

	ck, err := ct.Checkpoint(ctx, "example.com/ck:1", WithCheckpointImage, WithCheckpointRW)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := c.ReadCheckpoint(ctx, ck)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Image != "docker.io/library/sample:1" || cp.Runtime != "io.containerd.runc.v2" || cp.Snapshotter != "native" {
		t.Errorf("checkpoint annotations: %+v", cp)
	}
	var got []string
	for _, m := range cp.Index.Manifests {
		got = append(got, m.MediaType)
	}
	want := []string{MediaTypeCheckpointRuntimeOptions, img.Target.MediaType, ocispec.MediaTypeImageLayerGzip, MediaTypeCheckpointConfig}
	if len(got) != len(want) {
		t.Fatalf("index entries %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("index entries %v, want %v", got, want)
		}
	}
	if cp.Index.Manifests[1].Digest != img.Target.Digest {
		t.Errorf("image entry %v, want %v", cp.Index.Manifests[1], img.Target)
	}
	info, err := c.ContentStore().Info(ctx, ck.Target().Digest)
	if err != nil || len(info.Labels) != len(want) {
		t.Errorf("index GC labels %v: %v", info.Labels, err)
	}

	// Without --rw in the checkpoint, a --rw restore is refused.
	ckNoRW, err := ct.Checkpoint(ctx, "example.com/ck:norw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Restore(ctx, "c2", ckNoRW, WithRestoreRW); !errdefs.IsNotFound(err) {
		t.Fatalf("rw restore of a checkpoint without rw: %v", err)
	}
	if _, err := c.SnapshotService("native").Stat(ctx, "c2"); !errdefs.IsNotFound(err) {
		t.Fatalf("refused restore left snapshot c2: %v", err)
	}
	// The image itself is not a checkpoint.
	sample, err := c.GetImage(ctx, "docker.io/library/sample:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Restore(ctx, "c2", sample); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("restore of a plain image: %v", err)
	}

	restored, err := c.Restore(ctx, "c2", ck, WithRestoreRW)
	if err != nil {
		t.Fatal(err)
	}
	rinfo, err := restored.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rinfo.Image != "docker.io/library/sample:1" || rinfo.Snapshotter != "native" || rinfo.SnapshotKey != "c2" ||
		rinfo.Runtime.Name != "io.containerd.runc.v2" || !proto.Equal(rinfo.Runtime.Options, runtimeOpts) {
		t.Errorf("restored record %+v", rinfo)
	}
	rspec, err := restored.Spec(ctx)
	if err != nil || rspec.Hostname != "ckpt" {
		t.Errorf("restored spec %+v: %v", rspec, err)
	}
	if s, err := snapshotFile(t, ctx, c, "c2", "rw.txt"); err != nil || s != "written" {
		t.Errorf("restored rw layer: %q %v", s, err)
	}
	// Without WithRestoreRW: the image only.
	if _, err := c.Restore(ctx, "c3", ck); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshotFile(t, ctx, c, "c3", "rw.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("restore without rw has the rw layer: %v", err)
	}
}
