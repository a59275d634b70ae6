package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCtrPprof fetches every profile `ctr pprof` offers from berthd's debug
// socket and checks each is the format its tool reads.
func TestCtrPprof(t *testing.T) {
	d, sock := newDebugDaemon(t)
	gzipMagic := "\x1f\x8b" // pprof's protobuf profiles are gzipped
	for _, tc := range []struct {
		args []string
		want func(string) bool
	}{
		{[]string{"goroutines"}, func(s string) bool { return strings.Contains(s, "goroutine ") && strings.Contains(s, "main.main") }},
		{[]string{"heap"}, func(s string) bool { return strings.HasPrefix(s, gzipMagic) }},
		{[]string{"block"}, func(s string) bool { return strings.HasPrefix(s, gzipMagic) }},
		{[]string{"threadcreate"}, func(s string) bool { return strings.HasPrefix(s, gzipMagic) }},
		{[]string{"profile", "--seconds", "1s"}, func(s string) bool { return strings.HasPrefix(s, gzipMagic) }},
		{[]string{"trace", "-s", "1s"}, func(s string) bool { return strings.HasPrefix(s, "go 1.") }},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			out := d.ctr(append([]string{"pprof", "--debug-socket", sock}, tc.args...)...)
			if !tc.want(out) {
				t.Fatalf("ctr pprof %v: unexpected output (%d bytes): %.200q", tc.args, len(out), out)
			}
		})
	}
	// containerd's own ctr reads the same socket.
	requireBinary(t, "/usr/bin/ctr")
	mustContain(t, d.dctr("pprof", "-d", sock, "goroutines"), "goroutine ", "main.main")
	out, err := d.ctrErr("pprof", "-d", filepath.Join(t.TempDir(), "none.sock"), "goroutines")
	mustFail(t, out, err, "none.sock", "[debug] address")
	out, err = d.ctrErr("pprof", "-d", sock, "profile", "-s", "10ms")
	mustFail(t, out, err, "at least 1s")
}

// TestCtrOCISpec checks `ctr oci spec` prints the default spec runc would
// be given: a parseable runtime spec with its namespaces and cgroups path.
func TestCtrOCISpec(t *testing.T) {
	d := newDaemon(t, "")
	for _, tc := range []struct {
		args   []string
		cgroup string
	}{
		{[]string{"oci", "spec"}, "/default"},
		{[]string{"-n", "ns1", "oci", "spec", "web"}, "/ns1/web"},
	} {
		var s specs.Spec
		out := d.ctr(tc.args...)
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("ctr %v: not a spec: %v\n%s", tc.args, err, out)
		}
		if s.Linux == nil || s.Linux.CgroupsPath != tc.cgroup || len(s.Linux.Namespaces) < 5 || s.Process == nil || s.Root == nil {
			t.Fatalf("ctr %v: unexpected spec: %+v", tc.args, s)
		}
	}
	out, err := d.ctrErr("oci", "spec", "bad/id")
	mustFail(t, out, err, "bad/id")
}
