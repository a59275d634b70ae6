package metrics

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func render(t *testing.T, regs ...*Registry) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteText(&buf, regs...); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(r *Registry)
		want  string
	}{
		{
			name: "counter with labels",
			build: func(r *Registry) {
				c := r.NewCounter("calls_total", "Calls made.", "method", "code")
				c.With("/a", "OK").Add(2)
				c.With("/a", "NotFound").Inc()
				c.With("/b", "OK").Add(-5) // ignored
			},
			want: `# HELP calls_total Calls made.
# TYPE calls_total counter
calls_total{method="/a",code="NotFound"} 1
calls_total{method="/a",code="OK"} 2
calls_total{method="/b",code="OK"} 0
`,
		},
		{
			name: "gauge and escaping",
			build: func(r *Registry) {
				g := r.NewGauge("temp", "Line one\nback\\slash.", "path")
				g.With("a\"b\\c\nd").Set(1.5)
				g.With("plain").Set(-2)
				g.With("plain").Dec()
			},
			want: `# HELP temp Line one\nback\\slash.
# TYPE temp gauge
temp{path="a\"b\\c\nd"} 1.5
temp{path="plain"} -3
`,
		},
		{
			name: "gauge funcs in name order",
			build: func(r *Registry) {
				r.NewGaugeFunc("zeta", "", func() float64 { return 1e6 })
				r.NewFunc("alpha", "Per kind.", GaugeType, []string{"kind"}, func(emit EmitFunc) {
					emit(1, "x")
					emit(math.Inf(1), "y")
					emit(3) // wrong label count: dropped
				})
			},
			want: `# HELP alpha Per kind.
# TYPE alpha gauge
alpha{kind="x"} 1
alpha{kind="y"} +Inf
# TYPE zeta gauge
zeta 1e+06
`,
		},
		{
			name: "histogram",
			build: func(r *Registry) {
				h := r.NewHistogram("lat_seconds", "Latency.", []float64{1, 0.1, 0.5}, "op")
				for _, v := range []float64{0.05, 0.1, 0.3, 2} {
					h.With("get").Observe(v)
				}
			},
			want: `# HELP lat_seconds Latency.
# TYPE lat_seconds histogram
lat_seconds_bucket{op="get",le="0.1"} 2
lat_seconds_bucket{op="get",le="0.5"} 3
lat_seconds_bucket{op="get",le="1"} 3
lat_seconds_bucket{op="get",le="+Inf"} 4
lat_seconds_sum{op="get"} 2.45
lat_seconds_count{op="get"} 4
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			tc.build(r)
			if got := render(t, r); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("rpc_total", "RPCs, by \"method\".\nSecond line.", "method", "code")
	c.With(`/x.Y/Z`, "OK").Add(7)
	c.With("we{ird},\"=\\\n", "Unknown").Inc()
	h := r.NewHistogram("rpc_seconds", "Latency.", nil, "method")
	h.With("/x.Y/Z").Observe(0.003)
	h.With("/x.Y/Z").Observe(42)
	r.NewGaugeFunc("up", "", func() float64 { return 1 })
	r2 := NewRegistry()
	r2.NewGauge("other", "From a second registry.").With().Set(math.NaN())

	text := render(t, r, r2)
	fams, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	want, err := Gather(r, r2)
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != len(want) {
		t.Fatalf("parsed %d families, rendered %d:\n%s", len(fams), len(want), text)
	}
	for i, w := range want {
		g := fams[i]
		if g.Name != w.Name || g.Help != w.Help || g.Type != w.Type || len(g.Samples) != len(w.Samples) {
			t.Fatalf("family %d: got %+v want %+v", i, g, w)
		}
		for j, ws := range w.Samples {
			gs := g.Samples[j]
			same := gs.Value == ws.Value || (math.IsNaN(gs.Value) && math.IsNaN(ws.Value))
			if gs.Name != ws.Name || !same || len(gs.Labels) != len(ws.Labels) {
				t.Fatalf("%s sample %d: got %+v want %+v", w.Name, j, gs, ws)
			}
			for k := range ws.Labels {
				if gs.Labels[k] != ws.Labels[k] {
					t.Fatalf("%s sample %d label %d: got %q want %q", w.Name, j, k, gs.Labels[k], ws.Labels[k])
				}
			}
		}
	}
	rpc := Find(fams, "rpc_total")
	if got := rpc.Sum("rpc_total", "code", "OK"); got != 7 {
		t.Fatalf("sum = %v", got)
	}
	if got := Find(fams, "rpc_seconds").Sum("rpc_seconds_count"); got != 2 {
		t.Fatalf("count = %v", got)
	}
	if Find(fams, "nosuch") != nil || Find(fams, "nosuch").Sum("x") != 0 {
		t.Fatal("Find of a missing family")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"no value", "foo\n"},
		{"bad value", "foo abc\n"},
		{"bad name", "1foo 1\n"},
		{"unquoted label", "foo{a=b} 1\n"},
		{"unterminated label", `foo{a="b} 1` + "\n"},
		{"missing comma", `foo{a="b" c="d"} 1` + "\n"},
		{"bad label name", `foo{1a="b"} 1` + "\n"},
		{"bad type", "# TYPE foo bar\n"},
		{"bad timestamp", "foo 1 x\n"},
		{"extra field", "foo 1 2 3\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(strings.NewReader(tc.in)); err == nil {
				t.Fatalf("no error for %q", tc.in)
			}
		})
	}
	fams, err := Parse(strings.NewReader("# a comment\nfoo{} 1 1700000000000\nbar -Inf\n"))
	if err != nil || len(fams) != 2 || fams[0].Type != UntypedType || !math.IsInf(fams[1].Samples[0].Value, -1) {
		t.Fatalf("%+v %v", fams, err)
	}
}

func TestRegisterPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(r *Registry)
	}{
		{"bad metric name", func(r *Registry) { r.NewCounter("a-b", "") }},
		{"bad label name", func(r *Registry) { r.NewCounter("a", "", "x-y") }},
		{"reserved label", func(r *Registry) { r.NewGauge("a", "", "__x") }},
		{"le on histogram", func(r *Registry) { r.NewHistogram("a", "", nil, "le") }},
		{"duplicate label", func(r *Registry) { r.NewGauge("a", "", "x", "x") }},
		{"duplicate name", func(r *Registry) { r.NewGauge("a", ""); r.NewCounter("a", "") }},
		{"duplicate bucket", func(r *Registry) { r.NewHistogram("a", "", []float64{1, 1}) }},
		{"histogram func", func(r *Registry) { r.NewFunc("a", "", HistogramType, nil, func(EmitFunc) {}) }},
		{"wrong label count", func(r *Registry) { r.NewCounter("a", "", "x").With() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.fn(NewRegistry())
		})
	}
}

func TestUnregisterAndConflicts(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	a.NewGauge("x", "")
	b.NewGauge("x", "")
	if _, err := Gather(a, b); err == nil {
		t.Fatal("duplicate across registries not reported")
	}
	if !b.Unregister("x") || b.Unregister("x") {
		t.Fatal("unregister")
	}
	if _, err := Gather(a, b); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("c_total", "", "k")
	h := r.NewHistogram("h", "", []float64{1})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				c.With("a").Inc()
				h.With().Observe(0.5)
				if j%100 == 0 {
					render(t, r)
				}
			}
		}()
	}
	wg.Wait()
	if v := c.With("a").Value(); v != 8000 {
		t.Fatalf("counter = %v", v)
	}
	fams, _ := Parse(strings.NewReader(render(t, r)))
	if got := Find(fams, "h").Sum("h_bucket", "le", "1"); got != 8000 {
		t.Fatalf("bucket = %v", got)
	}
}

func TestHandler(t *testing.T) {
	r := NewRegistry()
	r.NewGaugeFunc("up", "Up.", func() float64 { return 1 })
	srv := httptest.NewServer(Handler(r))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	fams, err := Parse(resp.Body)
	if err != nil || Find(fams, "up").Sum("up") != 1 {
		t.Fatalf("%+v %v", fams, err)
	}
	resp2, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp2.Status)
	}
}

func TestRecordGC(t *testing.T) {
	before, _ := Gather(Default)
	RecordGC(20*time.Millisecond, nil, map[string]int{GCContent: 3, GCSnapshots: 0})
	RecordGC(time.Millisecond, errors.New("boom"), nil)
	after, _ := Gather(Default)
	delta := func(name, sample string, match ...string) float64 {
		a := after[indexOf(after, name)]
		b := before[indexOf(before, name)]
		return a.Sum(sample, match...) - b.Sum(sample, match...)
	}
	for _, tc := range []struct {
		what string
		got  float64
		want float64
	}{
		{"ok runs", delta("berth_gc_runs_total", "berth_gc_runs_total", "result", "ok"), 1},
		{"error runs", delta("berth_gc_runs_total", "berth_gc_runs_total", "result", "error"), 1},
		{"content freed", delta("berth_gc_freed_objects_total", "berth_gc_freed_objects_total", "kind", GCContent), 3},
		{"snapshots freed", delta("berth_gc_freed_objects_total", "berth_gc_freed_objects_total", "kind", GCSnapshots), 0},
		{"durations", delta("berth_gc_duration_seconds", "berth_gc_duration_seconds_count"), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}

func indexOf(fams []Family, name string) int {
	for i := range fams {
		if fams[i].Name == name {
			return i
		}
	}
	panic("no family " + name)
}
