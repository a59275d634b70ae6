package integration

import (
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/images"
)

// removedLabelRE finds the label of each "Removing label" debug line.
var removedLabelRE = regexp.MustCompile(`msg="Removing label" digest="?(sha256:[0-9a-f]{64})"? label="?([^"\s]+)"?`)

// `ctr content prune references`, as containerd 1.6's: layer references
// (gc.ref.content.l.N and the legacy numbered ones but .0) go from every
// blob of the namespace and a collection runs, so layers go while the
// image's manifest and config, and its unpacked snapshots, stay. --dry
// only logs what it would remove; --async does not wait for the
// collection.
func TestContentPruneReferences(t *testing.T) {
	d := newDaemon(t, "")
	archive := busyboxArchive(t, "oci")
	for _, ns := range []string{"default", "async"} {
		d.ctr("-n", ns, "images", "import", archive)
	}
	manifest := imageRow(t, d, "default", busyboxRef)[2]
	labels := contentLabels(t, d, "default", manifest)
	config := labels[images.LabelGCRefContent+"config"]
	var layers []string
	for k, v := range labels {
		if strings.HasPrefix(k, images.LabelGCRefContent+"l.") {
			layers = append(layers, v)
		}
	}
	if config == "" || len(layers) != 3 {
		t.Fatalf("manifest labels %v: want a config and 3 layers", labels)
	}

	// More labels on the manifest: which prune removes.
	extra := []struct {
		key     string
		removed bool
	}{
		{images.LabelGCRefContent + "1", true}, // legacy numbered layer references
		{images.LabelGCRefContent + "12", true},
		{images.LabelGCRefContent + "0", false}, // the legacy config reference
		{images.LabelGCRefContent + "m.0", false},
		{images.LabelGCRefContent + "1a", false},
		{images.LabelGCRefContent + "config.1", false},
		{"example.com/note", false},
	}
	args := []string{"content", "label", manifest}
	wantRemoved := []string{}
	for k := range labels {
		if strings.HasPrefix(k, images.LabelGCRefContent+"l.") {
			wantRemoved = append(wantRemoved, k)
		}
	}
	for _, e := range extra {
		args = append(args, e.key+"="+config)
		if e.removed {
			wantRemoved = append(wantRemoved, e.key)
		}
	}
	sort.Strings(wantRemoved)
	d.ctr(args...)
	labels = contentLabels(t, d, "default", manifest)
	blobs := blobSet(t, d, "default")

	t.Run("dry", func(t *testing.T) {
		out := d.ctr("content", "prune", "references", "--dry")
		mustContain(t, out, "dry run")
		var removed []string
		for _, m := range removedLabelRE.FindAllStringSubmatch(out, -1) {
			if m[1] != manifest {
				t.Errorf("would remove %s from %s, not the manifest", m[2], m[1])
			}
			removed = append(removed, m[2])
		}
		sort.Strings(removed)
		if strings.Join(removed, " ") != strings.Join(wantRemoved, " ") {
			t.Errorf("--dry would remove\n%v\nwant\n%v\n%s", removed, wantRemoved, out)
		}
		if got := contentLabels(t, d, "default", manifest); !equalMaps(got, labels) {
			t.Errorf("--dry changed labels:\n%v\nnow\n%v", labels, got)
		}
		if got := blobSet(t, d, "default"); !equalSets(got, blobs) {
			t.Errorf("--dry changed the blobs: %v -> %v", blobs, got)
		}
	})

	t.Run("async", func(t *testing.T) {
		out := d.ctr("-n", "async", "content", "prune", "references", "--async")
		if strings.Contains(out, "Removing label") {
			t.Errorf("debug output without --dry or --debug:\n%s", out)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			left := blobSet(t, d, "async")
			n := 0
			for _, l := range layers {
				if left[l] {
					n++
				}
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d layers still in namespace async", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The other namespace is untouched.
		if got := contentLabels(t, d, "default", manifest); !equalMaps(got, labels) {
			t.Errorf("prune in namespace async changed default's labels: %v", got)
		}
	})

	t.Run("sync", func(t *testing.T) {
		d.ctr("content", "prune", "references")
		// Collected before the command returned.
		left := blobSet(t, d, "default")
		for _, l := range layers {
			if left[l] {
				t.Errorf("layer %s not collected", l)
			}
		}
		if !left[manifest] || !left[config] || len(left) != 2 {
			t.Errorf("blobs left %v, want the manifest and config", left)
		}
		got := contentLabels(t, d, "default", manifest)
		for _, k := range wantRemoved {
			if _, ok := got[k]; ok {
				t.Errorf("label %s kept", k)
			}
		}
		for _, e := range extra {
			if _, ok := got[e.key]; !e.removed && !ok {
				t.Errorf("label %s removed", e.key)
			}
		}
		if got[images.LabelGCRefContent+"config"] != config {
			t.Errorf("config reference gone: %v", got)
		}
		// Unpacked, the image still runs.
		mustContain(t, d.ctr("run", "--rm", busyboxRef, "pruned", "echo", "after-prune"), "after-prune")
		if out := d.ctr("leases", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("leases left: %q", out)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
