package storage

import (
	"context"
	"fmt"
	"github.com/berth-containers/berth/pkg/metrics"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/plugin"
)

// GCConfig is the [plugins."io.containerd.gc.v1.scheduler"] section.
type GCConfig struct {
	// ScheduleDelay is how long after a delete the collection starts, so
	// that a burst of deletes (ctr images rm a b c) costs one collection.
	ScheduleDelay string `toml:"schedule_delay"`
	// Period is the interval of the background collection that catches
	// expired leases and anything a missed trigger left behind.
	Period string `toml:"period"`
	// StartupDelay is when the first collection after start runs.
	StartupDelay string `toml:"startup_delay"`
}

func init() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.GCPlugin,
		ID:       "scheduler",
		Requires: []plugin.Type{plugin.ServicePlugin},
		Config:   &GCConfig{ScheduleDelay: "100ms", Period: "5m", StartupDelay: "1s"},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			cfg, _ := ic.Config.(*GCConfig)
			if cfg == nil {
				cfg = &GCConfig{ScheduleDelay: "100ms", Period: "5m", StartupDelay: "1s"}
			}
			var durs [3]time.Duration
			for i, s := range []struct{ name, v string }{
				{"schedule_delay", cfg.ScheduleDelay}, {"period", cfg.Period}, {"startup_delay", cfg.StartupDelay},
			} {
				d, err := time.ParseDuration(s.v)
				if err != nil || d < 0 {
					return nil, fmt.Errorf("gc scheduler: %s %q: not a duration", s.name, s.v)
				}
				durs[i] = d
			}
			s, err := GetStores(ic)
			if err != nil {
				return nil, err
			}
			collect := func(ctx context.Context) error {
				st, err := s.DB.GarbageCollect(ctx)
				metrics.RecordGC(st.Duration, err, map[string]int{
					metrics.GCLeases: st.LeasesExpired, metrics.GCContent: st.ContentDeleted,
					metrics.GCSnapshots: st.SnapshotsDeleted, metrics.GCContentRecords: st.ContentRecords,
					metrics.GCSnapshotRecords: st.SnapshotRecords,
				})
				return err
			}
			return NewCollector(log.WithLogger(context.Background(), log.G(ic.Context)), collect, durs[0], durs[1], durs[2]), nil
		},
	})
}

// Collector runs garbage collections one at a time: on demand and waited
// for (Collect, for sync deletes), soon after a delete (Trigger, debounced)
// and periodically. It is the GC plugin's instance.
type Collector struct {
	collect func(context.Context) error
	delay   time.Duration

	mu      sync.Mutex // serializes collections
	trigger chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewCollector starts the background loop: the first collection after
// startup, then one every period (0: never) and one delay after each
// Trigger. Close stops it.
func NewCollector(ctx context.Context, collect func(context.Context) error, delay, period, startup time.Duration) *Collector {
	c := &Collector{
		collect: collect,
		delay:   delay,
		trigger: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.run(ctx, period, startup)
	return c
}

// Trigger asks for a collection soon; it never blocks.
func (c *Collector) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default: // one is already pending
	}
}

// Collect runs a collection now and returns when it is done.
func (c *Collector) Collect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	err := c.collect(ctx)
	log.G(ctx).WithField("duration", time.Since(start)).WithError(err).Debug("garbage collected")
	if err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	return nil
}

// Close stops the background loop, waiting for a collection in progress.
func (c *Collector) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return nil
}

func (c *Collector) run(ctx context.Context, period, startup time.Duration) {
	defer close(c.done)
	first := time.NewTimer(startup)
	defer first.Stop()
	var tick <-chan time.Time
	if period > 0 {
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
	}
	var pending <-chan time.Time // the debounce timer after a trigger
	for {
		select {
		case <-c.stop:
			return
		case <-c.trigger:
			if pending == nil {
				pending = time.After(c.delay)
			}
			continue
		case <-first.C:
		case <-tick:
		case <-pending:
		}
		pending = nil
		if err := c.Collect(ctx); err != nil {
			log.G(ctx).WithError(err).Warn("scheduled garbage collection failed")
		}
	}
}

// GetCollector returns the GC plugin's collector, or nil when it is not
// loaded; the caller must require plugin.GCPlugin to find it.
func GetCollector(ic *plugin.InitContext) *Collector {
	inst, err := ic.GetByID(plugin.GCPlugin, "scheduler")
	if err != nil {
		return nil
	}
	c, _ := inst.(*Collector)
	return c
}
