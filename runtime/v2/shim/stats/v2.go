package stats

import (
	"fmt"
	"os"

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
		MemoryEvents: &v2.MemoryEvents{
			Low:     ev["low"],
			High:    ev["high"],
			Max:     ev["max"],
			Oom:     ev["oom"],
			OomKill: ev["oom_kill"],
		},
	}, nil
}
