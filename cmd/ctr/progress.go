package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// byteSize prints sizes the way ctr's images and snapshots commands do:
// binary units, one decimal ("2.1 MiB", "512.0 B").
type byteSize int64

func (b byteSize) String() string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(b)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// humanSize prints sizes the way ctr's content commands do: decimal
// units, four significant digits ("1.234kB", "512B").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n)
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", v, units[i])
}

// humanDuration prints an age the way ctr's content commands do.
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(math.Round(d.Hours()))
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// ctrTabWriter is the table layout of ctr's images, content and
// snapshots listings.
func ctrTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 1, 8, 1, ' ', 0)
}

// contentTabWriter is the table layout of ctr's content listings, which
// pad with tabs.
func contentTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 1, 8, 1, '\t', 0)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressReader counts what is read through it and, while running,
// redraws one status line on a terminal.
type progressReader struct {
	r     io.Reader
	n     atomic.Int64
	label string
	out   *os.File
	start time.Time
	stop  chan struct{}
	done  sync.WaitGroup
}

// newProgressReader shows progress on out only if out is a terminal;
// otherwise it just passes r through. Call Stop when done reading.
func newProgressReader(r io.Reader, label string, out *os.File) *progressReader {
	p := &progressReader{r: r, label: label, out: out, start: time.Now()}
	if !isTerminal(out) {
		return p
	}
	p.stop = make(chan struct{})
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(p.out, "\r\033[K")
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

func (p *progressReader) draw() {
	n := p.n.Load()
	elapsed := time.Since(p.start)
	rate := byteSize(0)
	if s := elapsed.Seconds(); s > 0 {
		rate = byteSize(float64(n) / s)
	}
	fmt.Fprintf(p.out, "\r\033[K%s: %s (%v/s) %.1fs", p.label, byteSize(n), rate, elapsed.Seconds())
}

// Stop clears the status line.
func (p *progressReader) Stop() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	p.stop = nil
}
