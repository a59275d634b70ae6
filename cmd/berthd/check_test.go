package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("version = 2\nroot = [\n"), 0o644)
	badPlugin := filepath.Join(dir, "badplugin.toml")
	os.WriteFile(badPlugin, []byte("version = 2\n[plugins.\"io.containerd.gc.v1.scheduler\"]\nperiod = 5\n"), 0o644)
	root := filepath.Join(dir, "root")
	for _, tc := range []struct {
		name     string
		args     []string
		wantExit bool // exit 1 whatever the host: a check is sure to fail
		wants    []string
	}{
		{"text", []string{"--config", filepath.Join(dir, "none.toml"), "--root", root, "check"}, false,
			[]string{": kernel ", "overlayfs", "cgroup", "runc", "shim", "user namespaces", "seccomp", " free of ", "defaults apply", "plugins configured"}},
		{"bad config", []string{"--config", bad, "--root", root, "check"}, true,
			[]string{"fail: config " + bad + " does not load — ", ": kernel "}},
		{"bad plugin section", []string{"--config", badPlugin, "--root", root, "check"}, true,
			[]string{"fail: 1 of ", "io.containerd.gc.v1.scheduler"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSelf(t, tc.args...)
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			failed := strings.Contains(out, "\nfail: ") || strings.HasPrefix(out, "fail: ")
			var exit *exec.ExitError
			if failed != (err != nil) || (err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1)) {
				t.Errorf("exit %v with a fail line %v:\n%s", err, failed, out)
			}
			if tc.wantExit && err == nil {
				t.Errorf("no failure exit:\n%s", out)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "ok: ") && !strings.HasPrefix(line, "warn: ") && !strings.HasPrefix(line, "fail: ") {
					t.Errorf("line %q is not ok|warn|fail", line)
				}
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	dir := t.TempDir()
	out, _ := runSelf(t, "--config", filepath.Join(dir, "none.toml"), "--root", filepath.Join(dir, "r"), "check", "--json")
	var got struct {
		Config map[string]interface{} `json:"config"`
		Checks []struct {
			Name, Status, What, Why string
		} `json:"checks"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Config["root"] != filepath.Join(dir, "r") || got.Config["plugins"] == nil {
		t.Errorf("config: %v", got.Config)
	}
	names := map[string]bool{}
	failed := false
	for _, c := range got.Checks {
		names[c.Name] = true
		failed = failed || c.Status == "fail"
	}
	for _, n := range []string{"kernel", "overlayfs", "cgroups", "runc", "shim", "userns", "seccomp", "disk", "config", "plugins"} {
		if !names[n] {
			t.Errorf("no %s check in %s", n, out)
		}
	}
	if got.OK == failed {
		t.Errorf("ok = %v with failures %v", got.OK, failed)
	}
}
