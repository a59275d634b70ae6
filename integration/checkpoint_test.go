package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ckptScript prints /ckpt.txt if the container's rootfs has it, else
// writes it: the first run writes, a run on a restored rw layer prints.
const ckptScript = "cat /ckpt.txt 2>/dev/null || echo checkpointed-data > /ckpt.txt"

// TestContainerCheckpointRestore: `ctr c checkpoint` writes containerd's
// checkpoint index (spec, runtime, image, rw layer) as an image and
// `ctr c restore` makes a container from it whose rootfs has what the
// first one wrote; --task and --live are NotImplemented and leave nothing.
func TestContainerCheckpointRestore(t *testing.T) {
	archive := busyboxArchive(t, "oci")
	d := newDaemon(t, "")
	d.ctr("images", "import", archive)
	if out := d.ctr("run", busyboxRef, "web", "sh", "-c", ckptScript); strings.Contains(out, "checkpointed-data") {
		t.Fatalf("first run printed the file it should write:\n%s", out)
	}

	const ref = "example.com/ckpt:1"
	d.ctr("c", "checkpoint", "--rw", "--image", "web", ref)
	ls := d.ctr("images", "ls")
	mustContain(t, ls, ref)
	var idx ocispec.Index
	if err := json.Unmarshal([]byte(d.ctr("content", "get", imageDigest(t, ls, ref))), &idx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ls, ocispec.MediaTypeImageIndex) {
		t.Errorf("images ls does not show the index type:\n%s", ls)
	}
	if idx.Annotations["org.opencontainers.image.ref.name"] != busyboxRef ||
		idx.Annotations["io.containerd.checkpoint.runtime"] == "" ||
		idx.Annotations["io.containerd.checkpoint.snapshotter"] == "" {
		t.Errorf("index annotations: %v", idx.Annotations)
	}
	types := map[string]bool{}
	for _, m := range idx.Manifests {
		types[m.MediaType] = true
	}
	for _, want := range []string{
		"application/vnd.containerd.container.checkpoint.config.v1+proto",
		ocispec.MediaTypeImageLayerGzip,
	} {
		if !types[want] {
			t.Errorf("index has no %s: %v", want, types)
		}
	}
	if len(idx.Manifests) < 3 {
		t.Errorf("index has no image entry: %+v", idx.Manifests)
	}

	// Restore with the rw layer: the file is there.
	// The restored container's task runs attached, as with containerd's
	// ctr; it prints the file.
	mustContain(t, d.ctr("c", "restore", "--rw", "web2", ref), "checkpointed-data")
	mustContain(t, d.ctr("c", "info", "web2"), busyboxRef)
	mustContain(t, d.ctr("t", "start", "web2"), "checkpointed-data")
	// Without it: a fresh rootfs.
	if out := d.ctr("c", "restore", "web3", ref); strings.Contains(out, "checkpointed-data") {
		t.Errorf("restore without --rw has the rw layer:\n%s", out)
	}

	// --task and --live: NotImplemented, nothing made.
	out, err := d.ctrErr("c", "checkpoint", "--task", "web", "example.com/ckpt:task")
	if err == nil || !strings.Contains(out, "not implemented") {
		t.Fatalf("checkpoint --task: %v\n%s", err, out)
	}
	out, err = d.ctrErr("c", "restore", "--live", "web4", ref)
	if err == nil || !strings.Contains(out, "not implemented") {
		t.Fatalf("restore --live: %v\n%s", err, out)
	}
	if ls := d.ctr("images", "ls"); strings.Contains(ls, "ckpt:task") {
		t.Errorf("checkpoint --task left an image:\n%s", ls)
	}
	if out := d.ctr("c", "ls"); strings.Contains(out, "web4") {
		t.Errorf("restore --live left a container:\n%s", out)
	}
	if out := d.ctr("snapshots", "ls"); strings.Contains(out, "web4") {
		t.Errorf("restore --live left a snapshot:\n%s", out)
	}

	// Bad references.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"c", "checkpoint", "web"}, "ref must be provided"},
		{[]string{"c", "checkpoint", "nosuch", "example.com/x:1"}, "not found"},
		{[]string{"c", "checkpoint", "web", ref}, "already exists"},
		{[]string{"c", "restore", "web5", "example.com/nosuch:1"}, "not found"},
		{[]string{"c", "restore", "web5", busyboxRef}, "not a checkpoint"},
		{[]string{"c", "restore", "web2", ref}, "already exists"},
		{[]string{"c", "restore", "web5"}, "ref must be provided"},
		{[]string{"c", "restore"}, "container id must be provided"},
	} {
		out, err := d.ctrErr(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("ctr %s: want an error with %q, got %v\n%s", strings.Join(tc.args, " "), tc.want, err, out)
		}
	}
	if out := d.ctr("c", "ls"); strings.Contains(out, "web5") {
		t.Errorf("a failed restore left a container:\n%s", out)
	}
	if out := d.ctr("snapshots", "ls"); strings.Contains(out, "web5") {
		t.Errorf("a failed restore left a snapshot:\n%s", out)
	}

	// A checkpoint taken while the task runs pauses it and resumes it.
	d.ctr("run", "-d", busyboxRef, "live", "sleep", "1000")
	d.ctr("c", "checkpoint", "live", "example.com/ckpt:live")
	mustContain(t, d.ctr("t", "ls"), "RUNNING")

	// Debian's ctr restores our checkpoint image (and starts its task).
	d.dctr("c", "restore", "--rw", "deb", ref)
	waitStopped(t, d, "deb")
	d.ctr("t", "rm", "deb")
	mustContain(t, d.ctr("t", "start", "deb"), "checkpointed-data")

	// Debian's ctr checkpoints through our daemon; without --task its
	// index has no spec (containerd writes it with the task's), which our
	// restore names, as containerd's own restore fails on it.
	d.dctr("c", "checkpoint", "--rw", "--image", "web", "example.com/ckpt:deb")
	out, err = d.ctrErr("c", "restore", "--rw", "web6", "example.com/ckpt:deb")
	if err == nil || !strings.Contains(out, "no container spec") {
		t.Errorf("restore of a checkpoint without a spec: %v\n%s", err, out)
	}
}

// waitStopped waits for container id's task to stop.
func waitStopped(t *testing.T, d *daemon, id string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		for _, row := range tableRows(d.ctr("t", "ls")) {
			if row[0] == id && row[len(row)-1] == "STOPPED" {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("task %s did not stop:\n%s", id, d.ctr("t", "ls"))
}
