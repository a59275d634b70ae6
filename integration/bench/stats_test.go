package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestMedianRatioFormat(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(ratio(1, 0)) || !math.IsNaN(ratio(math.NaN(), 1)) {
		t.Error("missing values must be NaN")
	}
	for _, tc := range []struct {
		u    Unit
		v    float64
		want string
	}{
		{Seconds, 0.0123, "12.3 ms"},
		{Seconds, 1.5, "1.50 s"},
		{Seconds, 12.34, "12.3 s"},
		{Bytes, 3 << 20, "3.0 MiB"},
		{Bytes, math.NaN(), "-"},
	} {
		if got := format(tc.u, tc.v); got != tc.want {
			t.Errorf("format(%v, %v) = %q, want %q", tc.u, tc.v, got, tc.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	err := WriteTable(&buf, []Row{
		{Name: "run", Unit: Seconds, Berth: []float64{0.1, 0.3, 0.2}, Containerd: []float64{0.4, 0.4, 0.4}},
		{Name: "rss", Unit: Bytes, Berth: []float64{10 << 20}, Containerd: nil, Note: "containerd failed"},
		{Name: "runc run", Unit: Seconds, Floor: []float64{0.05, 0.07}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"berth/containerd", "200.0 ms", "400.0 ms", "0.50x", "10.0 MiB", "1/0", "containerd failed", "60.0 ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"Name:\tx\nVmRSS:\t   1024 kB\n", 1 << 20, false},
		{"Name:\tx\n", 0, true},
		{"VmRSS:\t12 MB\n", 0, true},
		{"VmRSS:\tx kB\n", 0, true},
	} {
		got, err := parseVmRSS(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseVmRSS(%q) = %d, %v", tc.in, got, err)
		}
	}
}
