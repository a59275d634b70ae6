package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

var sink []byte

func TestMemReleaser(t *testing.T) {
	m := newMemReleaser()
	var n atomic.Int32
	m.release = func() { n.Add(1) }
	go m.run(context.Background())
	defer m.close()
	waitReleases := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for n.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := n.Load(); got != want {
			t.Fatalf("%d releases, want %d", got, want)
		}
	}
	// Nothing happens without calls.
	time.Sleep(2 * releaseQuiet)
	if n.Load() != 0 {
		t.Fatal("released without a call")
	}
	// A call that allocated: one release once quiet.
	for i := 0; i < 4; i++ {
		sink = make([]byte, releaseMinAlloc/2)
	}
	m.touch()
	waitReleases(1)
	// Calls keep it busy; a release comes only after they stop (unless
	// a loaded machine left a quiet gap between them).
	var maxGap time.Duration
	last := time.Now()
	for end := last.Add(3 * releaseQuiet); time.Now().Before(end); time.Sleep(releaseQuiet / 10) {
		sink = make([]byte, releaseMinAlloc)
		m.touch()
		maxGap = max(maxGap, time.Since(last))
		last = time.Now()
		if n.Load() != 1 && maxGap < releaseQuiet/2 {
			t.Fatal("released while calls kept coming")
		}
	}
	if n.Load() == 1 {
		waitReleases(2)
	}
	// A call that allocated little: no release.
	before := n.Load()
	m.touch()
	time.Sleep(3 * releaseQuiet)
	if got := n.Load(); got != before {
		t.Fatalf("%d releases after a cheap call, want %d", got, before)
	}
}
