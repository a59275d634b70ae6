package shim

import (
	"os"
	"strings"
	"unsafe"
)

// A spare shim is started as `containerd-shim-berth-v2 -spare -address A`
// followed by blank padding, and once it takes a task its command line
// (what ps and /proc/PID/cmdline show) is rewritten to that of a shim
// started for the task: `-namespace NS -id ID -address A`. Operators and
// tools find a container's shim by its -id; without this every shim that
// began as a spare looked like an idle spare.

// titlePadding is the blank argument a spare starts with: room for a
// namespace and an id of the longest allowed names (76 bytes each).
var titlePadding = strings.Repeat(" ", 168)

// setCmdline overwrites the process's argument area with args, if they
// fit and the area is where os.Args says (one contiguous block, as the
// kernel lays it out); otherwise it leaves it alone. os.Args is pointed
// at copies first: Go's strings for it share that memory.
func setCmdline(args []string) bool {
	if len(os.Args) == 0 || len(os.Args[0]) == 0 {
		return false
	}
	base := unsafe.StringData(os.Args[0])
	size := 0
	for _, a := range os.Args {
		if len(a) > 0 && unsafe.StringData(a) != (*byte)(unsafe.Add(unsafe.Pointer(base), size)) {
			return false
		}
		size += len(a) + 1
	}
	want := strings.Join(args, "\x00") + "\x00"
	if len(want) > size {
		return false
	}
	for i := range os.Args {
		os.Args[i] = strings.Clone(os.Args[i])
	}
	area := unsafe.Slice(base, size)
	n := copy(area, want)
	clear(area[n:])
	return true
}
