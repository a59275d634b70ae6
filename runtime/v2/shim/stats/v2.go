package stats

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"google.golang.org/protobuf/proto"
)

func (c *Cgroup) v2Metrics() (proto.Message, error) {
	dir := c.V2
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cgroup stats: %s: %w", dir, errdefs.ErrNotFound)
	}
	cpu := readKV(dir, "cpu.stat")
	mem := readKV(dir, "memory.stat")
	ev := readKV(dir, "memory.events")
	return &v2.Metrics{
		Pids: &v2.PidsStat{Current: readUint(dir, "pids.current"), Limit: readUint(dir, "pids.max")},
		CPU: &v2.CPUStat{
			UsageUsec:     cpu["usage_usec"],
			UserUsec:      cpu["user_usec"],
			SystemUsec:    cpu["system_usec"],
			NrPeriods:     cpu["nr_periods"],
			NrThrottled:   cpu["nr_throttled"],
			ThrottledUsec: cpu["throttled_usec"],
		},
		Memory: &v2.MemoryStat{
			Anon:                  mem["anon"],
			File:                  mem["file"],
			KernelStack:           mem["kernel_stack"],
			Slab:                  mem["slab"],
			Sock:                  mem["sock"],
			Shmem:                 mem["shmem"],
			FileMapped:            mem["file_mapped"],
			FileDirty:             mem["file_dirty"],
			FileWriteback:         mem["file_writeback"],
			AnonThp:               mem["anon_thp"],
			InactiveAnon:          mem["inactive_anon"],
			ActiveAnon:            mem["active_anon"],
			InactiveFile:          mem["inactive_file"],
			ActiveFile:            mem["active_file"],
			Unevictable:           mem["unevictable"],
			SlabReclaimable:       mem["slab_reclaimable"],
			SlabUnreclaimable:     mem["slab_unreclaimable"],
			Pgfault:               mem["pgfault"],
			Pgmajfault:            mem["pgmajfault"],
			WorkingsetRefault:     mem["workingset_refault"],
			WorkingsetActivate:    mem["workingset_activate"],
			WorkingsetNodereclaim: mem["workingset_nodereclaim"],
			Pgrefill:              mem["pgrefill"],
			Pgscan:                mem["pgscan"],
			Pgsteal:               mem["pgsteal"],
			Pgactivate:            mem["pgactivate"],
			Pgdeactivate:          mem["pgdeactivate"],
			Pglazyfree:            mem["pglazyfree"],
			Pglazyfreed:           mem["pglazyfreed"],
			ThpFaultAlloc:         mem["thp_fault_alloc"],
			ThpCollapseAlloc:      mem["thp_collapse_alloc"],
			Usage:                 readUint(dir, "memory.current"),
			UsageLimit:            readUint(dir, "memory.max"),
			SwapUsage:             readUint(dir, "memory.swap.current"),
			SwapLimit:             readUint(dir, "memory.swap.max"),
			MaxUsage:              readUint(dir, "memory.peak"),
		},
		Io: &v2.IOStat{Usage: readIOStat(dir)},
		MemoryEvents: &v2.MemoryEvents{
			Low:     ev["low"],
			High:    ev["high"],
			Max:     ev["max"],
			Oom:     ev["oom"],
			OomKill: ev["oom_kill"],
		},
	}, nil
}

// readIOStat reads io.stat: per device "MAJ:MIN rbytes=N wbytes=N rios=N
// wios=N dbytes=N dios=N" (keys the kernel does not know yet are skipped).
func readIOStat(dir string) []*v2.IOEntry {
	b, err := os.ReadFile(filepath.Join(dir, "io.stat"))
	if err != nil {
		return nil
	}
	var out []*v2.IOEntry
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		majS, minS, ok := strings.Cut(fields[0], ":")
		maj, err1 := strconv.ParseUint(majS, 10, 64)
		min, err2 := strconv.ParseUint(minS, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		e := &v2.IOEntry{Major: maj, Minor: min}
		for _, kv := range fields[1:] {
			k, vs, _ := strings.Cut(kv, "=")
			v, err := strconv.ParseUint(vs, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				e.Rbytes = v
			case "wbytes":
				e.Wbytes = v
			case "rios":
				e.Rios = v
			case "wios":
				e.Wios = v
			}
		}
		out = append(out, e)
	}
	return out
}
