package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/metrics"
)

// debugGet fetches path from the debug socket.
func debugGet(t *testing.T, socket, path string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	resp, err := client.Get("http://debug" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestMetricsEndpoint(t *testing.T) {
	c := testConfig(t)
	c.Debug.Address = filepath.Join(c.State, "debug.sock")
	start(t, c)
	conn := dial(t, c.GRPC.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range []string{"NotFound", "NotFound", "Panic", "Slow"} {
		call(ctx, conn, m)
	}

	resp, body := debugGet(t, c.Debug.Address, "/v1/metrics")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != metrics.ContentType {
		t.Fatalf("%s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	fams, err := metrics.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	handled := metrics.Find(fams, "berth_grpc_server_handled_total")
	for _, tc := range []struct {
		method, code string
		min          float64
	}{
		{"/" + testService + "/NotFound", "NotFound", 2},
		{"/" + testService + "/Panic", "Internal", 1},
		{"/" + testService + "/Slow", "OK", 1},
	} {
		if got := handled.Sum("berth_grpc_server_handled_total", "method", tc.method, "code", tc.code); got < tc.min {
			t.Errorf("%s %s: %v calls, want >= %v", tc.method, tc.code, got, tc.min)
		}
	}
	lat := metrics.Find(fams, "berth_grpc_server_handling_seconds")
	slow := "/" + testService + "/Slow"
	if lat.Sum("berth_grpc_server_handling_seconds_count", "method", slow) < 1 ||
		lat.Sum("berth_grpc_server_handling_seconds_bucket", "method", slow, "le", "0.1") != 0 {
		t.Errorf("Slow latency not in the right buckets:\n%s", body)
	}
	// Server gauges are bound through the metrics plugin.
	for _, name := range []string{"berth_tasks_running", "berth_shims", "berth_snapshots", "berth_content_bytes",
		"berth_plugins", "berth_gc_runs_total", "berth_task_operation_seconds", "process_resident_memory_bytes", "go_goroutines", "berth_build_info"} {
		if metrics.Find(fams, name) == nil {
			t.Errorf("no %s in:\n%s", name, body)
		}
	}
	if got := metrics.Find(fams, "berth_plugins").Sum("berth_plugins", "status", "error"); got < 1 {
		t.Errorf("the broken test plugin is not counted: %v", got)
	}
	if resp, _ := debugGet(t, c.Debug.Address, "/debug/pprof/goroutine?debug=1"); resp.StatusCode != 200 {
		t.Errorf("pprof: %s", resp.Status)
	}
}

func TestIsShimFor(t *testing.T) {
	const addr = "/run/berth/berth.sock"
	for _, tc := range []struct {
		name string
		argv []string
		want bool
	}{
		{"running shim", []string{"/usr/bin/containerd-shim-berth-v2", "-namespace", "default", "-id", "x", "-address", addr}, true},
		{"runc shim", []string{"containerd-shim-runc-v2", "-namespace", "k8s", "-address", addr, "-publish-binary", "/b"}, true},
		{"start invocation", []string{"containerd-shim-berth-v2", "-address", addr, "-id", "x", "start"}, false},
		{"delete invocation", []string{"containerd-shim-berth-v2", "-address", addr, "-id", "x", "delete"}, false},
		{"other daemon", []string{"containerd-shim-runc-v2", "-address", "/run/containerd/containerd.sock"}, false},
		{"not a shim", []string{"/bin/sleep", "-address", addr}, false},
		{"address flag last", []string{"containerd-shim-x-v1", "-address"}, false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isShimFor(tc.argv, addr); got != tc.want {
				t.Fatalf("isShimFor(%q) = %v", tc.argv, got)
			}
		})
	}
}
