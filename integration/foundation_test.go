package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/platforms"
)

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("output does not contain %q:\n%s", w, out)
		}
	}
}

func mustFail(t *testing.T, out string, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected failure, got success:\n%s", out)
	}
	mustContain(t, out, wants...)
}

func TestVersionAndPlugins(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	mustContain(t, d.ctr("version"), "Server:", "UUID:")
	mustContain(t, d.dctr("version"), "Server:", "UUID:")
	for _, out := range []string{d.ctr("plugins", "ls"), d.dctr("plugins", "ls")} {
		mustContain(t, out, "io.containerd.grpc.v1", "containers", "io.containerd.metadata.v1", "bolt", "ok")
	}
	out := d.ctr("plugins", "ls", "type==io.containerd.metadata.v1")
	if strings.Contains(out, "io.containerd.grpc.v1") {
		t.Fatalf("filter not applied:\n%s", out)
	}
	// The instance UUID survives a restart.
	uuid := d.ctr("version")
	d.Stop()
	d.Start()
	if got := d.ctr("version"); got != uuid {
		t.Fatalf("uuid changed across restart:\n%s\n%s", uuid, got)
	}
}

// The snapshotters, the differ and the task runtime report the host's
// platform through introspection (`ctr plugins ls`, and clients asking
// which platforms a snapshotter unpacks for), as containerd's do; the
// services report none.
func TestPluginPlatforms(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	host := platforms.DefaultString()
	for _, id := range []string{"overlayfs", "native", "walking", "task"} {
		out := d.dctr("plugins", "ls", "id=="+id)
		mustContain(t, out, id, host)
		mustContain(t, d.dctr("plugins", "ls", "-d", "id=="+id), "Platforms:", host)
	}
	out := d.dctr("plugins", "ls", "id==containers")
	if strings.Contains(out, host) {
		t.Fatalf("grpc services report no platform, as containerd's:\n%s", out)
	}
}

func TestNamespacesBothClients(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	d.ctr("ns", "create", "ours", "team=a")
	d.dctr("namespaces", "create", "theirs")
	d.dctr("namespaces", "label", "theirs", "x=y")
	for _, out := range []string{d.ctr("ns", "ls"), d.dctr("namespaces", "ls")} {
		mustContain(t, out, "ours", "team=a", "theirs", "x=y")
	}
	// A namespace that still holds a container cannot be removed.
	rootfs := t.TempDir()
	d.ctr("-n", "ours", "c", "create", "--rootfs", rootfs, "web", "sh")
	out, err := d.ctrErr("ns", "rm", "ours")
	mustFail(t, out, err, "ours", "must be empty")
	d.ctr("-n", "ours", "c", "rm", "web")
	d.ctr("ns", "rm", "ours")
	d.dctr("namespaces", "rm", "theirs")
	out = d.ctr("ns", "ls", "-q")
	if strings.Contains(out, "ours") || strings.Contains(out, "theirs") {
		t.Fatalf("namespaces not removed:\n%s", out)
	}
	out, err = d.ctrErr("ns", "rm", "nosuch")
	mustFail(t, out, err, "nosuch", "not found")
	// Labelling a namespace that does not exist creates it, and the labels
	// of one nothing has made yet read as none, as in containerd (its
	// clients read a namespace's default runtime and snapshotter first).
	d.ctr("ns", "label", "fresh1", "a=b")
	d.dctr("namespaces", "label", "fresh2", "c=d")
	for _, out := range []string{d.ctr("ns", "ls"), d.dctr("namespaces", "ls")} {
		mustContain(t, out, "fresh1", "a=b", "fresh2", "c=d")
	}
	cl, err := client.New(d.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if labels, err := cl.Namespaces().Labels(context.Background(), "never-made"); err != nil || len(labels) != 0 {
		t.Fatalf("labels of a namespace never made: %v %v", labels, err)
	}
	if out := d.ctr("ns", "ls", "-q"); strings.Contains(out, "never-made") {
		t.Fatalf("reading its labels made the namespace:\n%s", out)
	}
}

func TestContainerRecordsBothClients(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	rootfs := t.TempDir()
	d.ctr("c", "create", "--rootfs", "--label", "app=web", rootfs, "web", "sh", "-c", "true")
	d.dctr("container", "create", "--rootfs", rootfs, "db", "sh")
	for _, out := range []string{d.ctr("c", "ls"), d.dctr("containers", "ls")} {
		mustContain(t, out, "web", "db", "io.containerd.runc.v2")
	}
	out := d.ctr("c", "ls", "-q", `labels."app"==web`)
	if strings.TrimSpace(out) != "web" {
		t.Fatalf("label filter: %q", out)
	}
	out = d.ctr("c", "ls", "-q", "id==db", "id==web")
	if strings.Count(out, "\n") != 2 {
		t.Fatalf("or filter: %q", out)
	}
	mustContain(t, d.dctr("containers", "info", "db"), `"ID": "db"`, `"ociVersion"`, rootfs)
	mustContain(t, d.ctr("c", "info", "web"), `"ID": "web"`, `"app": "web"`, rootfs)
	d.ctr("c", "label", "web", "tier=front", "app=")
	info := d.ctr("c", "info", "web")
	mustContain(t, info, `"tier": "front"`)
	if strings.Contains(info, `"app"`) {
		t.Fatalf("label not cleared:\n%s", info)
	}
	d.dctr("containers", "rm", "db")
	d.ctr("c", "rm", "web")
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
}

func TestBadInputKeepsServing(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"c", "create", "--rootfs", rootfs, "../evil", "sh"}, "invalid argument"},
		{[]string{"c", "create", "--rootfs", rootfs, strings.Repeat("a", 80), "sh"}, "maximum length"},
		{[]string{"c", "create", "--rootfs", "--label", "k=" + strings.Repeat("v", 5000), rootfs, "big", "sh"}, "label"},
		{[]string{"c", "ls", "labels.x==\"unterminated"}, "invalid argument"},
		{[]string{"c", "ls", "id=="}, "invalid argument"},
		{[]string{"c", "info", "nosuch"}, "not found"},
		{[]string{"c", "rm", "nosuch"}, "not found"},
		{[]string{"-n", "bad/ns", "c", "ls"}, "invalid argument"},
		{[]string{"ns", "create", "Bad..Name"}, "invalid argument"},
	} {
		out, err := d.ctrErr(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("ctr %v: err=%v, want %q in:\n%s", tc.args, err, tc.want, out)
		}
	}
	mustContain(t, d.ctr("version"), "Server:")
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("bad input left containers: %q", out)
	}
}

func TestEventsStream(t *testing.T) {
	d := newDaemon(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "ctr"), "-a", d.Address, "events")
	var buf lockedBuffer
	cmd.Stdout = &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	d.ctr("ns", "create", "evns")
	d.ctr("-n", "evns", "c", "create", "--rootfs", t.TempDir(), "evc", "sh")
	d.ctr("-n", "evns", "c", "rm", "evc")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(buf.String(), "/containers/delete") {
		time.Sleep(50 * time.Millisecond)
	}
	mustContain(t, buf.String(), "/namespaces/create", "evns /containers/create", `"id":"evc"`, "/containers/delete")
}

func TestSigtermAndKill9(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := t.TempDir()
	for _, id := range []string{"a1", "a2", "a3"} {
		d.ctr("c", "create", "--rootfs", rootfs, id, "sh")
	}
	took := d.Stop()
	if took > 2*time.Second {
		t.Fatalf("SIGTERM took %v", took)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	for _, p := range []string{d.Address, d.Address + ".ttrpc"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("socket %s left behind: %v", p, err)
		}
	}
	d.Start()
	d.ctr("c", "create", "--rootfs", rootfs, "a4", "sh")
	d.Kill9()
	// The killed daemon left its socket; the next one replaces it.
	d.Start()
	out := d.ctr("c", "ls", "-q")
	for _, id := range []string{"a1", "a2", "a3", "a4"} {
		mustContain(t, out, id)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	d := newDaemon(t, "")
	cmd := exec.Command(filepath.Join(binDir, "berthd"), "--config", d.Config, "--root", d.Root,
		"--state", t.TempDir(), "--address", filepath.Join(d.State, "other.sock"))
	out, err := runWithTimeout(cmd, 10*time.Second)
	mustFail(t, out, err, "another berthd")
	cmd = exec.Command(filepath.Join(binDir, "berthd"), "--config", d.Config, "--root", t.TempDir(),
		"--state", t.TempDir(), "--address", d.Address)
	out, err = runWithTimeout(cmd, 10*time.Second)
	mustFail(t, out, err, "in use")
	mustContain(t, d.ctr("version"), "Server:")
}

func runWithTimeout(cmd *exec.Cmd, d time.Duration) (string, error) {
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(d):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return buf.String(), context.DeadlineExceeded
	}
}
