package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statusField is a field of /proc/<pid>/status as printed by cat.
func statusField(t *testing.T, status, field string) string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in:\n%s", field, status)
	return ""
}

// taskPid is the PID column of `ctr t ls` for id.
func taskPid(t *testing.T, d *daemon, id string) int {
	t.Helper()
	for _, line := range strings.Split(d.ctr("t", "ls"), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no task %q", id)
	return 0
}

// TestRunFlags runs containers with containerd ctr's less common flags
// and checks each takes effect in the container, its spec or its cgroup.
func TestRunFlags(t *testing.T) {
	d := newDaemon(t, "")
	rootfs := busyboxRootfs(t)

	t.Run("caps", func(t *testing.T) {
		out := d.ctr("run", "--rm", "--rootfs", "--cap-drop", "ALL", "--cap-add", "CAP_NET_RAW", rootfs, "caps", "cat", "/proc/self/status")
		// CAP_NET_RAW is bit 13.
		for _, f := range []string{"CapBnd", "CapEff", "CapPrm"} {
			if v := statusField(t, out, f); v != "0000000000002000" {
				t.Errorf("%s %s, want only CAP_NET_RAW", f, v)
			}
		}
		out = d.ctr("run", "--rm", "--rootfs", "--cap-drop", "CAP_CHOWN", "--cap-add", "CAP_SYS_ADMIN", rootfs, "caps", "cat", "/proc/self/status")
		bnd, err := strconv.ParseUint(statusField(t, out, "CapBnd"), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if bnd&1 != 0 || bnd&(1<<21) == 0 || bnd&(1<<13) == 0 {
			t.Errorf("CapBnd %x: want CHOWN (0) dropped, SYS_ADMIN (21) added, NET_RAW (13) kept", bnd)
		}
		if v := statusField(t, out, "NoNewPrivs"); v != "1" {
			t.Errorf("NoNewPrivs %s by default, want 1", v)
		}
		out = d.ctr("run", "--rm", "--rootfs", "--allow-new-privs", rootfs, "caps", "cat", "/proc/self/status")
		if v := statusField(t, out, "NoNewPrivs"); v != "0" {
			t.Errorf("NoNewPrivs %s with --allow-new-privs, want 0", v)
		}
	})

	t.Run("annotations and spec", func(t *testing.T) {
		d.ctr("c", "create", "--rootfs", "--annotation", "berth.test/a=b", "--annotation", "eq=x=y",
			"--cpu-quota", "50000", "--cpu-period", "200000", "--rootfs-propagation", "rslave",
			"--no-pivot", "--pid-file", filepath.Join(t.TempDir(), "ignored"), rootfs, "ann", "true")
		info := d.ctr("c", "info", "ann")
		mustContain(t, info, `"berth.test/a": "b"`, `"eq": "x=y"`, `"quota": 50000`, `"period": 200000`,
			`"rootfsPropagation": "rslave"`, `"no_pivot_root": true`)
		// The task started later gets the runtime options: runc runs
		// with --no-pivot and the container works.
		mustContain(t, d.ctr("t", "start", "ann"), "")
		d.ctr("c", "rm", "ann")
	})

	t.Run("apparmor and rdt", func(t *testing.T) {
		d.ctr("c", "create", "--rootfs", "--apparmor-profile", "berth-test", "--rdt-class", "gold", rootfs, "sec", "true")
		defer d.ctr("c", "rm", "sec")
		mustContain(t, d.ctr("c", "info", "sec"), `"apparmorProfile": "berth-test"`, `"closID": "gold"`)
		// runc applies the profile; with no AppArmor here (and no
		// profile of that name anywhere) the task fails clearly and
		// nothing of it is left.
		out, err := d.ctrErr("t", "start", "sec")
		mustFail(t, out, err, "apparmor")
		if out := d.ctr("t", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("tasks left: %q", out)
		}
	})

	t.Run("cpu cgroup", func(t *testing.T) {
		cg := "/berth-runflags-" + strconv.Itoa(os.Getpid())
		d.ctr("run", "-d", "--rootfs", "--cgroup", cg, "--cpu-quota", "30000", "--cpu-period", "150000", rootfs, "cpu", "sleep", "1000")
		defer func() {
			d.ctr("t", "rm", "-f", "cpu")
			d.ctr("c", "rm", "cpu")
		}()
		pid := taskPid(t, d, "cpu")
		dir := "/sys/fs/cgroup/cpu" + cg
		if _, err := os.Stat("/sys/fs/cgroup/cpu.max"); err == nil {
			dir = "/sys/fs/cgroup" + cg // cgroup v2
			b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
			if err != nil || strings.TrimSpace(string(b)) != "30000 150000" {
				t.Errorf("cpu.max %q %v", b, err)
			}
		} else {
			for f, want := range map[string]string{"cpu.cfs_quota_us": "30000", "cpu.cfs_period_us": "150000"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || strings.TrimSpace(string(b)) != want {
					t.Errorf("%s %q %v, want %s", f, b, err, want)
				}
			}
		}
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || !strings.Contains("\n"+string(procs), "\n"+strconv.Itoa(pid)+"\n") {
			t.Errorf("task %d not in %s: %q %v", pid, dir, procs, err)
		}
	})

	t.Run("with-ns", func(t *testing.T) {
		d.ctr("run", "-d", "--rootfs", rootfs, "netowner", "sleep", "1000")
		defer func() {
			d.ctr("t", "rm", "-f", "netowner")
			d.ctr("c", "rm", "netowner")
		}()
		nsPath := fmt.Sprintf("/proc/%d/ns/net", taskPid(t, d, "netowner"))
		want, err := os.Readlink(nsPath)
		if err != nil {
			t.Fatal(err)
		}
		out := d.ctr("run", "--rm", "--rootfs", "--with-ns", "network:"+nsPath, rootfs, "joiner", "busybox", "readlink", "/proc/self/ns/net")
		if strings.TrimSpace(out) != want {
			t.Errorf("joined netns %q, want %q", out, want)
		}
		out = d.ctr("run", "--rm", "--rootfs", rootfs, "own", "busybox", "readlink", "/proc/self/ns/net")
		if strings.TrimSpace(out) == want {
			t.Errorf("a container without --with-ns shares netns %q", want)
		}
	})

	t.Run("runc-binary", func(t *testing.T) {
		dir := t.TempDir()
		// Runs before the folder's removal, also when the test fails
		// early: runc's delete must be done with its root there first.
		t.Cleanup(func() { waitFor(t, func() bool { return shimPid("wrapped") == 0 }) })
		wrapper, log := runcWrapper(t, dir)
		runcRoot := filepath.Join(dir, "runc-root")
		out := d.ctr("run", "--rm", "--rootfs", "--runc-binary", wrapper, "--runc-root", runcRoot, "--no-pivot", rootfs, "wrapped", "echo", "via wrapper")
		mustContain(t, out, "via wrapper")
		// runc delete runs after the delete's reply; the shim exits once
		// it is done.
		waitFor(t, func() bool { return shimPid("wrapped") == 0 })
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("wrapper never ran: %v", err)
		}
		mustContain(t, string(b), "create", "--no-pivot", "start", "delete", "--root "+runcRoot)
	})

	t.Run("runtime-config-path", func(t *testing.T) {
		dir := t.TempDir()
		t.Cleanup(func() {
			waitFor(t, func() bool { return shimPid("cfgours") == 0 && shimPid("cfgtheirs") == 0 })
		})
		wrapper, log := runcWrapper(t, dir)
		runcRoot := filepath.Join(dir, "runc-root")
		cfg := filepath.Join(dir, "runc.toml")
		// containerd's CRI spelling of the keys and its JSON spelling both work.
		body := fmt.Sprintf("BinaryName = %q\nroot = %q\n", wrapper, runcRoot)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// Stored on the container: create, then task start, honours it.
		d.ctr("c", "create", "--rootfs", "--runtime-config-path", cfg, rootfs, "cfgours", "busybox", "echo", "via config")
		mustContain(t, d.ctr("t", "start", "cfgours"), "via config")
		d.ctr("c", "rm", "cfgours")
		waitFor(t, func() bool { return shimPid("cfgours") == 0 })
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatalf("wrapper never ran: %v", err)
		}
		mustContain(t, string(b), "--root "+runcRoot, "create", "start", "delete")
		os.Remove(log)

		// Debian's ctr sends the same message for a runtime other than
		// io.containerd.runc.v2.
		requireBinary(t, "/usr/bin/ctr")
		out := d.dctr("run", "--rm", "--runtime", "io.containerd.berth.v2", "--runtime-config-path", cfg, "--rootfs", rootfs, "cfgtheirs", "/bin/busybox", "echo", "debian ctr")
		mustContain(t, out, "debian ctr")
		waitFor(t, func() bool { return shimPid("cfgtheirs") == 0 })
		b, _ = os.ReadFile(log)
		mustContain(t, string(b), "--root "+runcRoot, "create")

		// A bad file fails the task's creation with the shim's reason and
		// leaves no task behind.
		if err := os.WriteFile(cfg, []byte("SystemdCgroups = true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err = d.ctrErr("run", "--rm", "--rootfs", "--runtime-config-path", cfg, rootfs, "cfgbad", "true")
		if err == nil || !strings.Contains(out, `unknown runc option "SystemdCgroups"`) {
			t.Fatalf("bad runtime config: err %v:\n%s", err, out)
		}
		if out := d.ctr("t", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("tasks left: %q", out)
		}
	})

	t.Run("device", func(t *testing.T) {
		// /dev/kmsg is in no default spec; reading it needs the device, its
		// cgroup rule and (dmesg_restrict) CAP_SYSLOG.
		if _, err := os.Stat("/dev/kmsg"); err != nil {
			t.Skip("no /dev/kmsg")
		}
		out, err := d.ctrErr("run", "--rm", "--rootfs", rootfs, "nodev", "ls", "/dev/kmsg")
		if err == nil {
			t.Fatalf("/dev/kmsg present without --device: %s", out)
		}
		out = d.ctr("run", "--rm", "--rootfs", "--device", "/dev/kmsg", "--cap-add", "CAP_SYSLOG", rootfs, "dev",
			"sh", "-c", "ls -l /dev/kmsg && busybox dd if=/dev/kmsg of=/dev/null bs=8192 count=1 && echo read-ok")
		mustContain(t, out, "crw", "read-ok")
	})

	t.Run("seccomp-profile", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "profile.json")
		os.WriteFile(p, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`), 0o644)
		// Read-only, mkdir would fail with EROFS; the profile makes it EPERM.
		out, err := d.ctrErr("run", "--rm", "--rootfs", "--read-only", "--seccomp", "--seccomp-profile", p, rootfs, "sc", "busybox", "mkdir", "/blocked")
		if err == nil || !strings.Contains(out, "Operation not permitted") {
			t.Fatalf("mkdir under the profile: %v %s", err, out)
		}
	})

	t.Run("snapshotter-label", func(t *testing.T) {
		d.ctr("images", "import", busyboxArchive(t, "oci"))
		d.ctr("c", "create", "--snapshotter-label", "berth.test/snap=yes", busyboxRef, "snaplabel", "true")
		mustContain(t, d.ctr("snapshots", "info", "snaplabel"), `"berth.test/snap": "yes"`)
		d.ctr("c", "rm", "snaplabel")
	})

	t.Run("bad input", func(t *testing.T) {
		prof := filepath.Join(t.TempDir(), "p.json")
		os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--cap-add", "NET_RAW"}, "'CAP_' prefix"},
			{[]string{"--cap-drop", "CAP_BOGUS"}, "unknown capability"},
			{[]string{"--annotation", "novalue"}, "want KEY=VALUE"},
			{[]string{"--annotation", "=v"}, "want KEY=VALUE"},
			{[]string{"--snapshotter-label", "x"}, "want KEY=VALUE"},
			{[]string{"--with-ns", "net:/proc/1/ns/net"}, "is not valid"},
			{[]string{"--with-ns", "network"}, "nstype:path"},
			{[]string{"--with-ns", "network:proc/1/ns/net"}, "must be absolute"},
			{[]string{"--device", "/dev/berth-no-such-device"}, "no such file"},
			{[]string{"--device", "/etc/hostname"}, "not a device"},
			{[]string{"--cpu-quota", "abc"}, "invalid value"},
			{[]string{"--cpu-quota", "10"}, "invalid --cpu-quota"},
			{[]string{"--cpu-period", "10"}, "invalid --cpu-period"},
			{[]string{"--cpus", "1", "--cpu-quota", "50000"}, "used separately"},
			{[]string{"--seccomp-profile", prof}, "seccomp must be set"},
			{[]string{"--rootfs-propagation", "sideways"}, "rootfs propagation"},
			{[]string{"--rdt-class", "../x"}, "rdt class"},
			{[]string{"--apparmor-profile", ""}, "apparmor profile"},
			{[]string{"--runc-systemd-cgroup"}, "requires --cgroup"},
			{[]string{"--runtime", "io.containerd.other.v1", "--runc-binary", "/bin/true"}, "only supported"},
			{[]string{"--runtime-config-path", "/berth-no-such.toml"}, "no such file"},
			{[]string{"--runtime-config-path", "/etc"}, "not a regular file"},
			{[]string{"--runtime-config-path", "/etc/hostname", "--runc-root", "/tmp/x"}, "cannot be combined"},
		} {
			args := append(append([]string{"run", "--rm", "--rootfs"}, tc.args...), rootfs, "bad", "true")
			out, err := d.ctrErr(args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("ctr %s: err %v, want %q in:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
			}
		}
		// create takes the container flags but not run's own.
		if out, err := d.ctrErr("c", "create", "--rootfs", "--runc-binary", "/bin/true", rootfs, "bad", "true"); err == nil {
			t.Errorf("create accepted --runc-binary: %s", out)
		}
		if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers left: %q", out)
		}
	})
}

// runcWrapper writes an executable in dir that logs its arguments to the
// returned log file and then runs runc with them.
func runcWrapper(t *testing.T, dir string) (wrapper, log string) {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "calls.log")
	wrapper = filepath.Join(dir, "runc-wrapper")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\nexec %s \"$@\"\n", log, runc)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, log
}

// TestUserNamespace: --uidmap/--gidmap run the container in a user
// namespace over a copy of the image owned by the mapped ids, shared by
// the containers of one mapping and collected after the last; Debian's
// ctr gets the same from our daemon.
func TestUserNamespace(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	d.ctr("images", "import", busyboxArchive(t, "oci"))
	maps := []string{"--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"}
	script := `cat /proc/self/uid_map; stat -c "owner %u:%g" /bin/busybox; touch /tmp/x && echo wrote`
	for _, ctr := range []func(...string) string{d.ctr, d.dctr} {
		out := ctr(append(append([]string{"run", "--rm"}, maps...), busyboxRef, "userns", "sh", "-c", script)...)
		mustContain(t, out, "owner 0:0", "wrote")
		if f := strings.Fields(strings.SplitN(out, "\n", 2)[0]); strings.Join(f, " ") != "0 100000 65536" {
			t.Errorf("uid_map %q", f)
		}
	}
	// Two containers of the same mapping share the shifted copy; from
	// the host its files belong to the mapped ids.
	for _, id := range []string{"un1", "un2"} {
		d.ctr(append(append([]string{"run", "-d"}, maps...), busyboxRef, id, "sleep", "1000")...)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/root/bin/busybox", taskPid(t, d, "un1")), &st); err != nil || st.Uid != 100000 || st.Gid != 100000 {
		t.Errorf("host sees the image's busybox as %d:%d (%v), want 100000:100000", st.Uid, st.Gid, err)
	}
	copies := 0
	for _, row := range tableRows(d.ctr("snapshots", "ls")) {
		if strings.HasSuffix(row[0], "-100000-100000") {
			copies++
		}
	}
	if copies != 1 {
		t.Errorf("%d shifted copies listed, want 1:\n%s", copies, d.ctr("snapshots", "ls"))
	}
	for _, id := range []string{"un1", "un2"} {
		d.ctr("t", "rm", "-f", id)
		d.ctr("c", "rm", id)
	}
	waitFor(t, func() bool { return !strings.Contains(d.ctr("snapshots", "ls"), "-100000-100000") })

	// A --rootfs of the caller's is used as it is, owners already shifted.
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	for _, dir := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		os.MkdirAll(filepath.Join(rootfs, dir), 0o755)
	}
	data, _ := os.ReadFile("/bin/busybox")
	os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755)
	os.Symlink("busybox", filepath.Join(rootfs, "bin", "sh"))
	for dir := rootfs; dir != filepath.Clean(os.TempDir()) && dir != "/"; dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755) // the mapped root must reach it
	}
	filepath.Walk(rootfs, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 100000, 100000) })
	out := d.ctr(append(append([]string{"run", "--rm", "--rootfs"}, maps...), rootfs, "unroot", "sh", "-c", script)...)
	mustContain(t, out, "owner 0:0", "wrote")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--uidmap", "0:100000:65536"}, "must be given together"},
		{[]string{"--uidmap", "0:100000", "--gidmap", "0:100000:65536"}, "container-id:host-id:size"},
		{[]string{"--uidmap", "0:100000:0", "--gidmap", "0:100000:65536"}, "size must be at least 1"},
		{[]string{"--uidmap", "10:1:5", "--gidmap", "10:1:5"}, "not supported"},
	} {
		out, err := d.ctrErr(append(append([]string{"run", "--rm"}, tc.args...), busyboxRef, "badns", "true")...)
		mustFail(t, out, err, tc.want)
	}
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
}

// TestRemapLabels: with --remap-labels the snapshotter maps the ids
// (containerd's snapshot labels; ours mount the image idmapped) instead of
// a chowned copy: the container's root owns its files, writes land in the
// upper dir as the mapped ids, and no copy of the image is made. Debian's
// ctr gets the same on native (containerd 1.6's client cannot mount an
// idmapped overlay description itself, which its ctr does to read
// /etc/passwd).
func TestRemapLabels(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	d := newDaemon(t, "")
	d.ctr("images", "import", busyboxArchive(t, "oci"))
	maps := []string{"--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", "--remap-labels"}
	script := `cat /proc/self/uid_map; stat -c "owner %u:%g" /bin/busybox /; touch /x && echo wrote`
	for _, tc := range []struct {
		name string
		ctr  func(...string) string
		sn   string
	}{
		{"ours overlay", d.ctr, "overlayfs"},
		{"ours native", d.ctr, "native"},
		{"debian native", d.dctr, "native"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "rl-" + strings.ReplaceAll(tc.name, " ", "-")
			args := append(append([]string{"run", "-d", "--snapshotter", tc.sn}, maps...), busyboxRef, id, "sleep", "1000")
			tc.ctr(args...)
			out := d.ctr("t", "exec", "--exec-id", "check", id, "sh", "-c", script)
			mustContain(t, out, "owner 0:0\nowner 0:0", "wrote")
			if f := strings.Fields(strings.SplitN(out, "\n", 2)[0]); strings.Join(f, " ") != "0 100000 65536" {
				t.Errorf("uid_map %q", f)
			}
			mustContain(t, d.ctr("snapshots", "--snapshotter", tc.sn, "info", id),
				`"containerd.io/snapshot/uidmapping": "0:100000:65536"`, `"containerd.io/snapshot/gidmapping": "0:200000:65536"`)
			var st syscall.Stat_t
			if err := syscall.Stat(fmt.Sprintf("/proc/%d/root/bin/busybox", taskPid(t, d, id)), &st); err != nil || st.Uid != 100000 || st.Gid != 200000 {
				t.Errorf("host sees busybox as %d:%d (%v), want 100000:200000", st.Uid, st.Gid, err)
			}
			if strings.Contains(d.ctr("snapshots", "--snapshotter", tc.sn, "ls"), "-100000-200000") {
				t.Error("a shifted copy of the image was made")
			}
			// Other labels still change; the mapping is fixed.
			d.ctr("snapshots", "--snapshotter", tc.sn, "label", id, "berth.test/x=1")
			out, err := d.ctrErr("snapshots", "--snapshotter", tc.sn, "label", id, "containerd.io/snapshot/uidmapping=0:1:1")
			mustFail(t, out, err, "cannot change")
			d.ctr("t", "rm", "-f", id)
			d.ctr("c", "rm", id)
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--remap-labels"}, "needs --uidmap and --gidmap"},
		{[]string{"--uidmap", "1:100000:10", "--gidmap", "1:100000:10", "--remap-labels"}, "only mappings of container id 0"},
	} {
		out, err := d.ctrErr(append(append([]string{"run", "--rm"}, tc.args...), busyboxRef, "badrl", "true")...)
		mustFail(t, out, err, tc.want)
	}
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
}

// TestGPUsHook: --gpus sets up containerd's hook chain — runc runs
// `berthd oci-hook`, which fills in the container's pid and root file
// system and runs nvidia-container-cli. A stand-in CLI records what it got
// (no GPU here); without the CLI on PATH the run fails before anything is
// made.
func TestGPUsHook(t *testing.T) {
	d := newDaemon(t, "")
	d.ctr("images", "import", busyboxArchive(t, "oci"))
	dir := t.TempDir()
	log := filepath.Join(dir, "cli.log")
	cli := filepath.Join(dir, "nvidia-container-cli")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s\nfor a; do case $a in --pid=*) kill -0 ${a#--pid=} && echo alive >> %s;; esac; done\n", log, log)
	if err := os.WriteFile(cli, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(path string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir, "ctr"), append([]string{"--address", d.Address}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	path := dir + ":" + binDir + ":" + os.Getenv("PATH")
	if out, err := run(path, "run", "--rm", "--gpus", "0", "--gpus", "2", busyboxRef, "gpu", "echo", "ran"); err != nil || !strings.Contains(out, "ran") {
		t.Fatalf("run --gpus: %v\n%s", err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("the CLI never ran: %v", err)
	}
	bundle := filepath.Join(d.State, "io.containerd.runtime.v2.task", "default", "gpu")
	mustContain(t, string(b), "--load-kmods configure --device=0,2 --compute --compat32 --graphics --utility --video --display --pid=",
		" "+filepath.Join(bundle, "rootfs")+"\n", "alive")

	out, err := run(binDir+":"+os.Getenv("PATH"), "run", "--rm", "--gpus", "0", busyboxRef, "nogpu", "true")
	mustFail(t, out, err, "nvidia-container-cli")
	if out := d.ctr("c", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left: %q", out)
	}
}

// TestRunCNI: ctr run --cni attaches lo and the configured network (Debian's
// CNI plugins: bridge, host-local) before the task starts; an attached run
// releases its address when it ends, a detached one keeps it.
func TestRunCNI(t *testing.T) {
	requireBinary(t, "/usr/lib/cni/bridge")
	d := newDaemon(t, "")
	d.ctr("images", "import", busyboxArchive(t, "oci"))
	dir := t.TempDir()
	bridge := fmt.Sprintf("bcni%d", os.Getpid()%100000)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"berthtest","plugins":[{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.201.0.0/24"}]]}}]}`, bridge, filepath.Join(dir, "ipam"))
	os.MkdirAll(filepath.Join(dir, "net.d"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "net.d", "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// A minute each: a run that hangs (a never-started task's delete once
	// did) fails the test instead of stalling the suite.
	ctrEnv := func(env []string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "ctr"), append([]string{"--address", d.Address}, args...)...)
		cmd.Env = append(append(os.Environ(), "NETCONFPATH="+filepath.Join(dir, "net.d"), "CNI_PATH=/usr/lib/cni"), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ctr := func(args ...string) (string, error) { return ctrEnv(nil, args...) }
	leases := func() []string {
		ents, _ := os.ReadDir(filepath.Join(dir, "ipam", "berthtest"))
		var ips []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "10.201.") {
				ips = append(ips, e.Name())
			}
		}
		return ips
	}

	out, err := ctr("run", "--rm", "--cni", busyboxRef, "cni1", "busybox", "ip", "addr")
	if err != nil {
		t.Fatalf("run --cni: %v\n%s", err, out)
	}
	mustContain(t, out, "inet 127.0.0.1/8", "eth0", "inet 10.201.0.")
	if ips := leases(); len(ips) != 0 {
		t.Errorf("addresses still held after an attached run: %v", ips)
	}

	if out, err := ctr("run", "-d", "--cni", busyboxRef, "cni2", "sleep", "1000"); err != nil {
		t.Fatalf("run -d --cni: %v\n%s", err, out)
	}
	defer func() {
		d.ctr("t", "rm", "-f", "cni2")
		d.ctr("c", "rm", "cni2")
	}()
	if ips := leases(); len(ips) != 1 {
		t.Fatalf("detached run holds %v, want one address", ips)
	}
	// The bridge is the gateway: the container reaches it.
	mustContain(t, d.ctr("t", "exec", "--exec-id", "ping", "cni2", "busybox", "ping", "-c", "1", "-W", "5", "10.201.0.1"), "1 packets received")

	// Bad configurations fail before anything is made.
	for _, tc := range []struct {
		env, want string
	}{
		{"NETCONFPATH=" + filepath.Join(dir, "nothing-here"), "cni configuration directory"},
		{"CNI_PATH=" + dir, "not found"},
	} {
		out, err := ctrEnv([]string{tc.env}, "run", "--rm", "--cni", busyboxRef, "cnibad", "true")
		mustFail(t, out, err, tc.want)
	}
	if out := d.ctr("c", "ls", "-q"); strings.Contains(out, "cnibad") {
		t.Fatalf("container left after a failed --cni run: %q", out)
	}
}
