package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCollector(t *testing.T) {
	tests := []struct {
		name     string
		triggers int
		collects int // synchronous calls
		period   time.Duration
		wait     time.Duration
		min, max int32 // runs expected
	}{
		{name: "burst of triggers is one run", triggers: 20, wait: 200 * time.Millisecond, min: 1, max: 1},
		{name: "sync collects each run", collects: 3, wait: 10 * time.Millisecond, min: 3, max: 3},
		{name: "period runs", period: 20 * time.Millisecond, wait: 150 * time.Millisecond, min: 3, max: 10},
		{name: "nothing asked, nothing run", wait: 100 * time.Millisecond, min: 0, max: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs, running atomic.Int32
			collect := func(ctx context.Context) error {
				if running.Add(1) > 1 {
					t.Error("collections overlap")
				}
				time.Sleep(time.Millisecond)
				running.Add(-1)
				runs.Add(1)
				return nil
			}
			c := NewCollector(context.Background(), collect, 50*time.Millisecond, tt.period, time.Hour)
			defer c.Close()
			var wg sync.WaitGroup
			for i := 0; i < tt.triggers; i++ {
				c.Trigger()
			}
			for i := 0; i < tt.collects; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := c.Collect(context.Background()); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			time.Sleep(tt.wait)
			if n := runs.Load(); n < tt.min || n > tt.max {
				t.Errorf("%d runs, want %d..%d", n, tt.min, tt.max)
			}
		})
	}
}

func TestCollectorErrorsAndClose(t *testing.T) {
	boom := errors.New("boom")
	c := NewCollector(context.Background(), func(context.Context) error { return boom }, time.Millisecond, 0, time.Hour)
	if err := c.Collect(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("collect: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled collect: %v", err)
	}
	c.Trigger() // a failing background run is logged, not fatal
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { c.Close(); c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}
