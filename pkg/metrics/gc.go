package metrics

import "time"

// The garbage collector's instrumentation lives here, in the default
// registry, so the GC scheduler (services/storage) reports with one call
// and without depending on the server that serves the metrics.
var (
	gcRuns = Default.NewCounter("berth_gc_runs_total",
		"Garbage collections run, by result (ok or error).", "result")
	gcFreed = Default.NewCounter("berth_gc_freed_objects_total",
		"Objects garbage collection removed, by kind (leases, content, snapshots, content_records, snapshot_records).", "kind")
	gcDuration = Default.NewHistogram("berth_gc_duration_seconds",
		"How long each garbage collection took.", []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30})
)

// GC object kinds, the "kind" label of berth_gc_freed_objects_total.
const (
	GCLeases          = "leases"
	GCContent         = "content"
	GCSnapshots       = "snapshots"
	GCContentRecords  = "content_records"
	GCSnapshotRecords = "snapshot_records"
)

func init() {
	// Zero series exist from the start so rates work from the first scrape.
	gcRuns.With("ok")
	gcRuns.With("error")
	for _, k := range []string{GCLeases, GCContent, GCSnapshots, GCContentRecords, GCSnapshotRecords} {
		gcFreed.With(k)
	}
}

// RecordGC records one garbage collection: how long it took, whether it
// failed, and how many objects of each kind it removed.
func RecordGC(took time.Duration, err error, freed map[string]int) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	gcRuns.With(result).Inc()
	gcDuration.With().Observe(took.Seconds())
	for kind, n := range freed {
		if n > 0 {
			gcFreed.With(kind).Add(float64(n))
		}
	}
}
