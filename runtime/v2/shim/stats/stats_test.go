package stats

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/runtime/v2/shim/internal/testbundle"
	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	"github.com/berth-containers/berth/runtime/v2/shim/runc"
	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMain(m *testing.M) {
	if err := reaper.SetSubreaper(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func TestContainerMetrics(t *testing.T) {
	ctx := context.Background()
	cgPath := fmt.Sprintf("/berth-stats-test-%d", os.Getpid())
	bundle := testbundle.New(t, []string{"sh", "-c", "x=$(yes | head -c 1000000); sleep 30"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
	})
	r := &runc.Runc{Root: filepath.Join(t.TempDir(), "runc"), Log: filepath.Join(bundle, "log.json")}
	if err := r.Create(ctx, "stats", bundle, runc.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Delete(context.Background(), "stats", true) })
	if err := r.Start(ctx, "stats"); err != nil {
		t.Fatal(err)
	}
	st, err := r.State(ctx, "stats")
	if err != nil {
		t.Fatal(err)
	}

	byPid, err := ForPid(st.Pid)
	if err != nil {
		t.Fatal(err)
	}
	byPath, err := ForPath(cgPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, cg := range map[string]*Cgroup{"pid": byPid, "path": byPath} {
		m, err := cg.Metrics()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch m := m.(type) {
		case *v1.Metrics:
			if m.Memory.GetUsage().GetUsage() == 0 {
				t.Errorf("%s: memory usage 0: %v", name, m.Memory)
			}
			if m.Pids.GetCurrent() == 0 {
				t.Errorf("%s: no pids: %v", name, m.Pids)
			}
			if m.CPU.GetUsage().GetTotal() == 0 {
				t.Errorf("%s: no cpu usage", name)
			}
			if _, ok := cg.V1["blkio"]; ok && m.Blkio == nil {
				t.Errorf("%s: no blkio stats", name)
			}
		case *v2.Metrics:
			if m.Memory.GetUsage() == 0 || m.Pids.GetCurrent() == 0 {
				t.Errorf("%s: empty metrics %v", name, m)
			}
		default:
			t.Fatalf("%s: metrics type %T", name, m)
		}
	}
	if !Unified() && byPid.V1["memory"] != byPath.V1["memory"] {
		t.Errorf("memory cgroup by pid %s, by path %s", byPid.V1["memory"], byPath.V1["memory"])
	}
}

func TestForPidGone(t *testing.T) {
	if _, err := ForPid(1 << 30); err == nil {
		t.Fatal("no error for a missing pid")
	}
}

func TestWatchOOM(t *testing.T) {
	ctx := context.Background()
	limit := int64(16 << 20)
	bundle := testbundle.New(t, []string{"sh", "-c", "sleep 0.2; x=$(yes | head -c 100000000); sleep 30"}, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	})
	r := &runc.Runc{Root: filepath.Join(t.TempDir(), "runc"), Log: filepath.Join(bundle, "log.json")}
	if err := r.Create(ctx, "oom", bundle, runc.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Delete(context.Background(), "oom", true) })
	st, err := r.State(ctx, "oom")
	if err != nil {
		t.Fatal(err)
	}
	cg, err := ForPid(st.Pid)
	if err != nil {
		t.Fatal(err)
	}
	oom := make(chan struct{}, 10)
	stop, err := cg.WatchOOM(func() { oom <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := r.Start(ctx, "oom"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-oom:
	case <-time.After(10 * time.Second):
		t.Fatal("no OOM event")
	}
}

func TestV1Blkio(t *testing.T) {
	partitions := filepath.Join(t.TempDir(), "partitions")
	os.WriteFile(partitions, []byte("major minor  #blocks  name\n\n 254        0  268435456 vda\n   8       16  1000 sdb\n"), 0o644)
	entries := func(es []*v1.BlkIOEntry) string {
		var parts []string
		for _, e := range es {
			parts = append(parts, fmt.Sprintf("%d:%d %s %s %d", e.Major, e.Minor, e.Device, e.Op, e.Value))
		}
		return strings.Join(parts, "; ")
	}
	for _, tc := range []struct {
		name               string
		files              map[string]string
		wantBytes, wantOps string
		wantSectors        string
	}{
		{
			name: "blk-mq kernel: throttle counters only",
			files: map[string]string{
				"blkio.throttle.io_service_bytes_recursive": "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\nTotal 12288\n",
				"blkio.throttle.io_serviced_recursive":      "254:0 Read 1\n254:0 Write 2\nTotal 3\n",
			},
			wantBytes: "254:0 /dev/vda Read 4096; 254:0 /dev/vda Write 8192; 254:0 /dev/vda Sync 0",
			wantOps:   "254:0 /dev/vda Read 1; 254:0 /dev/vda Write 2",
		},
		{
			name: "CFQ kernel: its own counters, sectors without an op",
			files: map[string]string{
				"blkio.io_serviced_recursive":               "8:16 Read 7\nTotal 7\n",
				"blkio.io_service_bytes_recursive":          "8:16 Read 700\n9:9 Read 5\ngarbage line here too\n",
				"blkio.sectors_recursive":                   "8:16 12\n",
				"blkio.throttle.io_service_bytes_recursive": "8:16 Read 999\n",
			},
			wantBytes:   "8:16 /dev/sdb Read 700; 9:9  Read 5",
			wantOps:     "8:16 /dev/sdb Read 7",
			wantSectors: "8:16 /dev/sdb  12",
		},
		{name: "no I/O yet", files: map[string]string{"blkio.throttle.io_serviced_recursive": "Total 0\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for f, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			st := v1Blkio(dir, partitions)
			if st == nil {
				t.Fatal("no blkio stats")
			}
			if got := entries(st.IoServiceBytesRecursive); got != tc.wantBytes {
				t.Errorf("bytes %q, want %q", got, tc.wantBytes)
			}
			if got := entries(st.IoServicedRecursive); got != tc.wantOps {
				t.Errorf("ops %q, want %q", got, tc.wantOps)
			}
			if got := entries(st.SectorsRecursive); got != tc.wantSectors {
				t.Errorf("sectors %q, want %q", got, tc.wantSectors)
			}
		})
	}
}

func TestReadIOStat(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"two devices", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=0 rios=1 wios=0\n",
			"254:0 r4096 w8192 ri1 wi2; 8:16 r1 w0 ri1 wi0"},
		{"unknown keys and junk", "254:0 rbytes=5 newkey=9 wios=x\nnot a line\n", "254:0 r5 w0 ri0 wi0"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "io.stat"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, e := range readIOStat(dir) {
				parts = append(parts, fmt.Sprintf("%d:%d r%d w%d ri%d wi%d", e.Major, e.Minor, e.Rbytes, e.Wbytes, e.Rios, e.Wios))
			}
			if got := strings.Join(parts, "; "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
