// Package metrics is a small metrics registry: counters, gauges (set or
// computed at scrape time) and histograms, each with optional labels,
// rendered in the Prometheus text exposition format 0.0.4.
//
// Registration errors (a bad or duplicate name, a reserved label) are
// programming errors and panic, so they show at start-up; observations
// never fail and are safe for concurrent use.
package metrics

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Type is a metric family's Prometheus type.
type Type string

// The types this package renders.
const (
	CounterType   Type = "counter"
	GaugeType     Type = "gauge"
	HistogramType Type = "histogram"
	UntypedType   Type = "untyped"
)

var (
	metricNameRe = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRe  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// DefBuckets are latency buckets in seconds, from 1 ms to 10 s.
var DefBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds metric families by name.
type Registry struct {
	mu       sync.RWMutex
	families map[string]family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]family{}} }

// Default is the process-wide registry: instrumentation in libraries
// (the GC hook, the gRPC interceptors) registers here.
var Default = NewRegistry()

// family is one metric name with its help, type and samples.
type family interface {
	desc() *desc
	// collect appends the family's samples, unsorted.
	collect(out []Sample) []Sample
}

type desc struct {
	name       string
	help       string
	typ        Type
	labelNames []string
}

// Sample is one line of the exposition: a name (the family name, or for
// histograms the family name plus _bucket, _sum or _count), labels and a
// value.
type Sample struct {
	Name   string
	Labels []Label
	Value  float64
}

// Label is one label pair; a sample's labels keep the order they were
// declared in.
type Label struct {
	Name, Value string
}

// Get returns the value of the label named name, or "".
func (s Sample) Get(name string) string {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func (r *Registry) register(d *desc, f family) {
	if !metricNameRe.MatchString(d.name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", d.name))
	}
	seen := map[string]bool{}
	for _, l := range d.labelNames {
		if !labelNameRe.MatchString(l) || strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", d.name, l))
		}
		if d.typ == HistogramType && l == "le" {
			panic(fmt.Sprintf("metrics: %s: label \"le\" is reserved for histogram buckets", d.name))
		}
		if seen[l] {
			panic(fmt.Sprintf("metrics: %s: duplicate label %q", d.name, l))
		}
		seen[l] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.families[d.name]; ok {
		panic(fmt.Sprintf("metrics: %s registered twice", d.name))
	}
	r.families[d.name] = f
}

// Unregister removes the family named name; it reports whether it was
// there. Servers that register per-instance gauge funcs remove them on stop.
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.families[name]
	delete(r.families, name)
	return ok
}

// vec holds one child per distinct label-value tuple.
type vec[T any] struct {
	desc
	mu       sync.RWMutex
	children map[string]*child[T]
	newChild func() *T
}

type child[T any] struct {
	values []string
	m      *T
}

// labelKey joins values with a byte that cannot be confused across values.
func labelKey(values []string) string { return strings.Join(values, "\xff") }

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.labelNames) {
		panic(fmt.Sprintf("metrics: %s: %d label values for %d labels %v", v.name, len(values), len(v.labelNames), v.labelNames))
	}
	k := labelKey(values)
	v.mu.RLock()
	c, ok := v.children[k]
	v.mu.RUnlock()
	if ok {
		return c.m
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c, ok := v.children[k]; ok {
		return c.m
	}
	c = &child[T]{values: append([]string(nil), values...), m: v.newChild()}
	v.children[k] = c
	return c.m
}

func (v *vec[T]) each(fn func(values []string, m *T)) {
	v.mu.RLock()
	cs := make([]*child[T], 0, len(v.children))
	for _, c := range v.children {
		cs = append(cs, c)
	}
	v.mu.RUnlock()
	// Stable output: children in label-value order.
	sort.Slice(cs, func(i, j int) bool { return labelKey(cs[i].values) < labelKey(cs[j].values) })
	for _, c := range cs {
		fn(c.values, c.m)
	}
}

func (d *desc) labels(values []string, extra ...Label) []Label {
	out := make([]Label, 0, len(values)+len(extra))
	for i, v := range values {
		out = append(out, Label{Name: d.labelNames[i], Value: v})
	}
	return append(out, extra...)
}

// atomicFloat is a float64 updated without locks.
type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) add(d float64) {
	for {
		old := a.bits.Load()
		if a.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

func (a *atomicFloat) set(v float64) { a.bits.Store(math.Float64bits(v)) }
func (a *atomicFloat) get() float64  { return math.Float64frombits(a.bits.Load()) }

// Counter only goes up.
type Counter struct{ v atomicFloat }

// Inc adds one.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d; negative values are ignored, as a counter never decreases.
func (c *Counter) Add(d float64) {
	if d > 0 {
		c.v.add(d)
	}
}

// Value is the current count.
func (c *Counter) Value() float64 { return c.v.get() }

// CounterVec is a counter family with labels.
type CounterVec struct{ v *vec[Counter] }

// NewCounter registers a counter family. By convention its name ends in
// _total.
func (r *Registry) NewCounter(name, help string, labelNames ...string) *CounterVec {
	v := &vec[Counter]{desc: desc{name: name, help: help, typ: CounterType, labelNames: labelNames},
		children: map[string]*child[Counter]{}, newChild: func() *Counter { return &Counter{} }}
	r.register(&v.desc, counterFamily{v})
	return &CounterVec{v: v}
}

// With returns the counter for these label values, in declaration order.
func (c *CounterVec) With(values ...string) *Counter { return c.v.with(values) }

type counterFamily struct{ v *vec[Counter] }

func (f counterFamily) desc() *desc { return &f.v.desc }
func (f counterFamily) collect(out []Sample) []Sample {
	f.v.each(func(values []string, c *Counter) {
		out = append(out, Sample{Name: f.v.name, Labels: f.v.labels(values), Value: c.Value()})
	})
	return out
}

// Gauge goes up and down.
type Gauge struct{ v atomicFloat }

// Set sets the value.
func (g *Gauge) Set(v float64) { g.v.set(v) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) { g.v.add(d) }

// Inc adds one.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.add(-1) }

// Value is the current value.
func (g *Gauge) Value() float64 { return g.v.get() }

// GaugeVec is a gauge family with labels.
type GaugeVec struct{ v *vec[Gauge] }

// NewGauge registers a gauge family.
func (r *Registry) NewGauge(name, help string, labelNames ...string) *GaugeVec {
	v := &vec[Gauge]{desc: desc{name: name, help: help, typ: GaugeType, labelNames: labelNames},
		children: map[string]*child[Gauge]{}, newChild: func() *Gauge { return &Gauge{} }}
	r.register(&v.desc, gaugeFamily{v})
	return &GaugeVec{v: v}
}

// With returns the gauge for these label values.
func (g *GaugeVec) With(values ...string) *Gauge { return g.v.with(values) }

type gaugeFamily struct{ v *vec[Gauge] }

func (f gaugeFamily) desc() *desc { return &f.v.desc }
func (f gaugeFamily) collect(out []Sample) []Sample {
	f.v.each(func(values []string, g *Gauge) {
		out = append(out, Sample{Name: f.v.name, Labels: f.v.labels(values), Value: g.Value()})
	})
	return out
}

// EmitFunc reports one value of a func-backed family with its label values.
type EmitFunc func(value float64, labelValues ...string)

// funcFamily computes its samples at scrape time.
type funcFamily struct {
	d  desc
	fn func(emit EmitFunc)
}

func (f *funcFamily) desc() *desc { return &f.d }
func (f *funcFamily) collect(out []Sample) []Sample {
	f.fn(func(value float64, values ...string) {
		if len(values) != len(f.d.labelNames) {
			// A wrong count would render a broken line; drop it instead.
			return
		}
		out = append(out, Sample{Name: f.d.name, Labels: f.d.labels(values), Value: value})
	})
	return out
}

// NewGaugeFunc registers an unlabelled gauge whose value fn computes at
// each scrape. fn must be quick and safe for concurrent use.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) {
	r.NewFunc(name, help, GaugeType, nil, func(emit EmitFunc) { emit(fn()) })
}

// NewFunc registers a family of type typ (counter or gauge) whose samples
// fn emits at each scrape, one call of emit per label-value tuple.
func (r *Registry) NewFunc(name, help string, typ Type, labelNames []string, fn func(emit EmitFunc)) {
	if typ == HistogramType {
		panic(fmt.Sprintf("metrics: %s: func families cannot be histograms", name))
	}
	f := &funcFamily{d: desc{name: name, help: help, typ: typ, labelNames: labelNames}, fn: fn}
	r.register(&f.d, f)
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	upper  []float64 // sorted upper bounds, without +Inf
	mu     sync.Mutex
	counts []uint64 // per bucket (not cumulative); last is +Inf
	sum    float64
	count  uint64
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.upper, v) // first bound >= v: v <= le
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

// snapshot returns cumulative bucket counts, the sum and the count.
func (h *Histogram) snapshot() ([]uint64, float64, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cum := make([]uint64, len(h.counts))
	var n uint64
	for i, c := range h.counts {
		n += c
		cum[i] = n
	}
	return cum, h.sum, h.count
}

// HistogramVec is a histogram family with labels.
type HistogramVec struct{ v *vec[Histogram] }

// NewHistogram registers a histogram family with the given upper bounds
// (nil: DefBuckets). +Inf is implied.
func (r *Registry) NewHistogram(name, help string, buckets []float64, labelNames ...string) *HistogramVec {
	if buckets == nil {
		buckets = DefBuckets
	}
	upper := append([]float64(nil), buckets...)
	sort.Float64s(upper)
	if n := len(upper); n > 0 && math.IsInf(upper[n-1], 1) {
		upper = upper[:n-1]
	}
	for i := 1; i < len(upper); i++ {
		if upper[i] == upper[i-1] {
			panic(fmt.Sprintf("metrics: %s: duplicate bucket %v", name, upper[i]))
		}
	}
	v := &vec[Histogram]{desc: desc{name: name, help: help, typ: HistogramType, labelNames: labelNames},
		children: map[string]*child[Histogram]{},
		newChild: func() *Histogram { return &Histogram{upper: upper, counts: make([]uint64, len(upper)+1)} }}
	r.register(&v.desc, histogramFamily{v})
	return &HistogramVec{v: v}
}

// With returns the histogram for these label values.
func (h *HistogramVec) With(values ...string) *Histogram { return h.v.with(values) }

type histogramFamily struct{ v *vec[Histogram] }

func (f histogramFamily) desc() *desc { return &f.v.desc }
func (f histogramFamily) collect(out []Sample) []Sample {
	f.v.each(func(values []string, h *Histogram) {
		cum, sum, count := h.snapshot()
		for i, c := range cum {
			le := "+Inf"
			if i < len(h.upper) {
				le = formatFloat(h.upper[i])
			}
			out = append(out, Sample{Name: f.v.name + "_bucket", Labels: f.v.labels(values, Label{"le", le}), Value: float64(c)})
		}
		out = append(out,
			Sample{Name: f.v.name + "_sum", Labels: f.v.labels(values), Value: sum},
			Sample{Name: f.v.name + "_count", Labels: f.v.labels(values), Value: float64(count)})
	})
	return out
}
