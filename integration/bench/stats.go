package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Unit says how a row's samples print.
type Unit int

const (
	Seconds Unit = iota // samples are durations in seconds
	Bytes               // samples are byte counts
)

// Row is one measurement for both daemons (and optionally a floor that
// neither can beat, such as runc alone).
type Row struct {
	Name       string
	Unit       Unit
	Berth      []float64
	Containerd []float64
	// Floor is an unpaired reference (runc run alone); shown in the berth
	// column's place with no ratio when Berth and Containerd are empty.
	Floor []float64
	Note  string
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio is a/b, or NaN when either is missing or b is zero.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

func format(u Unit, v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch u {
	case Bytes:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	d := time.Duration(v * float64(time.Second))
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func formatRatio(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// WriteTable prints the rows: medians, sample counts and Berth/containerd.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tberth\tcontainerd\tberth/containerd\tn\tnote\t")
	fmt.Fprintln(tw, "---------\t-----\t----------\t----------------\t-\t----\t")
	for _, r := range rows {
		if len(r.Floor) > 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t\n", r.Name, format(r.Unit, median(r.Floor)), "", "", len(r.Floor), r.Note)
			continue
		}
		b, c := median(r.Berth), median(r.Containerd)
		n := strconv.Itoa(len(r.Berth))
		if len(r.Containerd) != len(r.Berth) {
			n = fmt.Sprintf("%d/%d", len(r.Berth), len(r.Containerd))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, format(r.Unit, b), format(r.Unit, c), formatRatio(ratio(b, c)), n, r.Note)
	}
	return tw.Flush()
}

// parseVmRSS reads the VmRSS line of /proc/PID/status, in bytes.
func parseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if !strings.HasPrefix(line, "VmRSS:") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "VmRSS:"))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q not understood", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line (kernel thread or zombie?)")
}
