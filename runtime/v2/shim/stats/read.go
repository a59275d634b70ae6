package stats

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
)

// readUint reads a file holding one number; "max" (no limit) and missing
// files read as 0, as in containerd's metrics.
func readUint(dir, name string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// readKV reads a "key value" per line file (memory.stat, cpu.stat).
func readKV(dir, name string) map[string]uint64 {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	defer f.Close()
	kv := map[string]uint64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv
}

// readUints reads a space separated list (cpuacct.usage_percpu).
func readUints(dir, name string) []uint64 {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	var out []uint64
	for _, f := range strings.Fields(string(b)) {
		if v, err := strconv.ParseUint(f, 10, 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// readBlkioEntries reads a blkio counters file: "MAJ:MIN Op value" per
// line ("MAJ:MIN value" for the files without an operation), ending with
// a "Total n" line that is not an entry.
func readBlkioEntries(dir, name string, devices map[string]string) []*v1.BlkIOEntry {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []*v1.BlkIOEntry
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 || len(fields) > 3 {
			continue
		}
		majS, minS, ok := strings.Cut(fields[0], ":")
		if !ok {
			continue // "Total n"
		}
		maj, err1 := strconv.ParseUint(majS, 10, 64)
		min, err2 := strconv.ParseUint(minS, 10, 64)
		v, err3 := strconv.ParseUint(fields[len(fields)-1], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		e := &v1.BlkIOEntry{Major: maj, Minor: min, Value: v, Device: devices[fields[0]]}
		if len(fields) == 3 {
			e.Op = fields[1]
		}
		out = append(out, e)
	}
	return out
}

// readPartitions maps "major:minor" to "/dev/NAME" from /proc/partitions.
func readPartitions(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	devices := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		// major minor #blocks name
		fields := strings.Fields(s.Text())
		if len(fields) != 4 {
			continue
		}
		if _, err := strconv.ParseUint(fields[0], 10, 64); err != nil {
			continue // the header
		}
		devices[fields[0]+":"+fields[1]] = filepath.Join("/dev", fields[3])
	}
	return devices
}
