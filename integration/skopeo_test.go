package integration

import (
	"path/filepath"
	"testing"
)

// TestExportReadBySkopeo: skopeo reads berth's OCI export, and what skopeo
// writes back out imports and runs on berth again.
func TestExportReadBySkopeo(t *testing.T) {
	requireBinary(t, "skopeo")
	archive := busyboxArchive(t, "oci")
	d := newDaemon(t, "")
	d.ctr("images", "import", archive)
	dir := t.TempDir()
	exported := filepath.Join(dir, "export.tar")
	d.ctr("images", "export", exported, busyboxRef)
	out, err := runCmd("skopeo", "inspect", "oci-archive:"+exported)
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	mustContain(t, out, `"Architecture"`, `"Layers"`)
	copied := filepath.Join(dir, "skopeo.tar")
	if out, err := runCmd("skopeo", "copy", "oci-archive:"+exported, "oci-archive:"+copied+":docker.io/library/busybox:skopeo"); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	d.ctr("images", "rm", "--sync", busyboxRef)
	d.ctr("images", "import", "--base-name", "docker.io/library/busybox", copied)
	mustContain(t, d.ctr("images", "ls", "-q"), "busybox")
	ref := firstImage(t, d)
	mustContain(t, d.ctr("run", "--rm", ref, "sk", "echo", "via skopeo"), "via skopeo")
}

func firstImage(t *testing.T, d *daemon) string {
	t.Helper()
	rows := tableRows(d.ctr("images", "ls"))
	if len(rows) == 0 {
		t.Fatal("no images")
	}
	return rows[0][0]
}
