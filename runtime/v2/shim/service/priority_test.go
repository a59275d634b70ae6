package service

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// niceOf reads the nice value (field 19) from a /proc stat line.
func niceOf(t *testing.T, stat string) int {
	t.Helper()
	// The command name (field 2) may hold spaces; fields count from its ')'.
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatalf("nice from %q: %v", stat, err)
	}
	return n
}

func TestLowPriorityThread(t *testing.T) {
	type result struct {
		child, thread int
		err           error
	}
	ch := make(chan result)
	go func() {
		lowPriorityThread()
		out, err := exec.Command("cat", "/proc/self/stat").Output()
		self, _ := os.ReadFile("/proc/thread-self/stat")
		if err != nil {
			ch <- result{err: err}
			return
		}
		ch <- result{child: niceOf(t, string(out)), thread: niceOf(t, string(self))}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.child != teardownNice || r.thread != teardownNice {
		t.Fatalf("nice: child %d, thread %d; want %d", r.child, r.thread, teardownNice)
	}
	// The rest of the process keeps its priority: the lowered thread
	// ended with its goroutine.
	for i := 0; i < 20; i++ {
		self, err := os.ReadFile("/proc/thread-self/stat")
		if err != nil {
			t.Fatal(err)
		}
		if n := niceOf(t, string(self)); n == teardownNice {
			t.Fatalf("a goroutine ran on the lowered thread (nice %d)", n)
		}
	}
}
