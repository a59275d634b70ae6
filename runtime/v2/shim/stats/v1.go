package stats

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/pkg/errdefs"
	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	"google.golang.org/protobuf/proto"
)

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

func (c *Cgroup) v1Metrics() (proto.Message, error) {
	m := &v1.Metrics{}
	found := false
	if dir, ok := c.dir("memory"); ok {
		found = true
		m.Memory = v1Memory(dir)
		m.MemoryOomControl = &v1.MemoryOomControl{}
		oc := readKV(dir, "memory.oom_control")
		m.MemoryOomControl.OomKillDisable = oc["oom_kill_disable"]
		m.MemoryOomControl.UnderOom = oc["under_oom"]
		m.MemoryOomControl.OomKill = oc["oom_kill"]
	}
	if dir, ok := c.dir("cpuacct"); ok {
		found = true
		st := readKV(dir, "cpuacct.stat")
		m.CPU = &v1.CPUStat{Usage: &v1.CPUUsage{
			Total:  readUint(dir, "cpuacct.usage"),
			PerCPU: readUints(dir, "cpuacct.usage_percpu"),
			User:   st["user"] * (1e9 / userHZ),
			Kernel: st["system"] * (1e9 / userHZ),
		}}
	}
	if dir, ok := c.dir("cpu"); ok {
		if m.CPU == nil {
			m.CPU = &v1.CPUStat{}
		}
		st := readKV(dir, "cpu.stat")
		m.CPU.Throttling = &v1.Throttle{
			Periods:          st["nr_periods"],
			ThrottledPeriods: st["nr_throttled"],
			ThrottledTime:    st["throttled_time"],
		}
	}
	if dir, ok := c.dir("pids"); ok {
		found = true
		m.Pids = &v1.PidsStat{Current: readUint(dir, "pids.current"), Limit: readUint(dir, "pids.max")}
	}
	if dir, ok := c.dir("blkio"); ok {
		m.Blkio = v1Blkio(dir, "/proc/partitions")
	}
	if !found {
		return nil, fmt.Errorf("cgroup stats: no memory, cpuacct or pids cgroup: %w", errdefs.ErrNotFound)
	}
	return m, nil
}

// dir returns the controller's directory if it exists (it goes when the
// container is deleted).
func (c *Cgroup) dir(controller string) (string, bool) {
	d, ok := c.V1[controller]
	if !ok {
		return "", false
	}
	if _, err := os.Stat(d); err != nil {
		return "", false
	}
	return d, true
}

func v1Memory(dir string) *v1.MemoryStat {
	st := readKV(dir, "memory.stat")
	entry := func(prefix string) *v1.MemoryEntry {
		return &v1.MemoryEntry{
			Usage:   readUint(dir, prefix+".usage_in_bytes"),
			Limit:   readUint(dir, prefix+".limit_in_bytes"),
			Max:     readUint(dir, prefix+".max_usage_in_bytes"),
			Failcnt: readUint(dir, prefix+".failcnt"),
		}
	}
	return &v1.MemoryStat{
		Cache:                   st["cache"],
		RSS:                     st["rss"],
		RSSHuge:                 st["rss_huge"],
		MappedFile:              st["mapped_file"],
		Dirty:                   st["dirty"],
		Writeback:               st["writeback"],
		PgPgIn:                  st["pgpgin"],
		PgPgOut:                 st["pgpgout"],
		PgFault:                 st["pgfault"],
		PgMajFault:              st["pgmajfault"],
		InactiveAnon:            st["inactive_anon"],
		ActiveAnon:              st["active_anon"],
		InactiveFile:            st["inactive_file"],
		ActiveFile:              st["active_file"],
		Unevictable:             st["unevictable"],
		HierarchicalMemoryLimit: st["hierarchical_memory_limit"],
		HierarchicalSwapLimit:   st["hierarchical_memsw_limit"],
		TotalCache:              st["total_cache"],
		TotalRSS:                st["total_rss"],
		TotalRSSHuge:            st["total_rss_huge"],
		TotalMappedFile:         st["total_mapped_file"],
		TotalDirty:              st["total_dirty"],
		TotalWriteback:          st["total_writeback"],
		TotalPgPgIn:             st["total_pgpgin"],
		TotalPgPgOut:            st["total_pgpgout"],
		TotalPgFault:            st["total_pgfault"],
		TotalPgMajFault:         st["total_pgmajfault"],
		TotalInactiveAnon:       st["total_inactive_anon"],
		TotalActiveAnon:         st["total_active_anon"],
		TotalInactiveFile:       st["total_inactive_file"],
		TotalActiveFile:         st["total_active_file"],
		TotalUnevictable:        st["total_unevictable"],
		Usage:                   entry("memory"),
		Swap:                    entry("memory.memsw"),
		Kernel:                  entry("memory.kmem"),
		KernelTCP:               entry("memory.kmem.tcp"),
	}
}

// v1Blkio reads the blkio controller's recursive counters as containerd
// reports them: the CFQ scheduler's files where the kernel has them, else
// the throttling layer's bytes and operations (all that blk-mq kernels
// keep). Each entry names its device from partitions ("/dev/vda"). The
// message is there, empty, for a container that did no I/O.
func v1Blkio(dir, partitions string) *v1.BlkIOStat {
	st := &v1.BlkIOStat{}
	type counters struct {
		file  string
		entry *[]*v1.BlkIOEntry
	}
	files := []counters{
		{"blkio.sectors_recursive", &st.SectorsRecursive},
		{"blkio.io_service_bytes_recursive", &st.IoServiceBytesRecursive},
		{"blkio.io_serviced_recursive", &st.IoServicedRecursive},
		{"blkio.io_queued_recursive", &st.IoQueuedRecursive},
		{"blkio.io_service_time_recursive", &st.IoServiceTimeRecursive},
		{"blkio.io_wait_time_recursive", &st.IoWaitTimeRecursive},
		{"blkio.io_merged_recursive", &st.IoMergedRecursive},
		{"blkio.time_recursive", &st.IoTimeRecursive},
	}
	if _, err := os.Lstat(filepath.Join(dir, "blkio.io_serviced_recursive")); err != nil {
		files = []counters{
			{"blkio.throttle.io_serviced_recursive", &st.IoServicedRecursive},
			{"blkio.throttle.io_service_bytes_recursive", &st.IoServiceBytesRecursive},
		}
	}
	devices := readPartitions(partitions)
	for _, f := range files {
		*f.entry = readBlkioEntries(dir, f.file, devices)
	}
	return st
}
