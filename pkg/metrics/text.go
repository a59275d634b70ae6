package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Family is a metric family as rendered or parsed.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Samples []Sample
}

// Gather collects every family of the registries, sorted by name; a name
// in more than one registry is an error.
func Gather(regs ...*Registry) ([]Family, error) {
	var out []Family
	seen := map[string]bool{}
	for _, r := range regs {
		r.mu.RLock()
		fams := make([]family, 0, len(r.families))
		for _, f := range r.families {
			fams = append(fams, f)
		}
		r.mu.RUnlock()
		for _, f := range fams {
			d := f.desc()
			if seen[d.name] {
				return nil, fmt.Errorf("metric %s is registered in more than one registry", d.name)
			}
			seen[d.name] = true
			out = append(out, Family{Name: d.name, Help: d.help, Type: d.typ, Samples: f.collect(nil)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// WriteText renders the registries' families in the text format 0.0.4.
func WriteText(w io.Writer, regs ...*Registry) error {
	fams, err := Gather(regs...)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		writeFamily(bw, f)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

func writeFamily(w *bufio.Writer, f Family) {
	if f.Help != "" {
		fmt.Fprintf(w, "# HELP %s %s\n", f.Name, escapeHelp(f.Help))
	}
	fmt.Fprintf(w, "# TYPE %s %s\n", f.Name, f.Type)
	for _, s := range f.Samples {
		w.WriteString(s.Name)
		if len(s.Labels) > 0 {
			w.WriteByte('{')
			for i, l := range s.Labels {
				if i > 0 {
					w.WriteByte(',')
				}
				w.WriteString(l.Name)
				w.WriteString(`="`)
				w.WriteString(escapeLabel(l.Value))
				w.WriteByte('"')
			}
			w.WriteByte('}')
		}
		w.WriteByte(' ')
		w.WriteString(formatFloat(s.Value))
		w.WriteByte('\n')
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Handler serves the registries as text; the families are gathered at each
// request. Rendering goes to a buffer first so a failure is a clean 500.
func Handler(regs ...*Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var buf bytes.Buffer
		if err := WriteText(&buf, regs...); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		if r.Method == http.MethodGet {
			w.Write(buf.Bytes())
		}
	})
}

// Parse reads the text format 0.0.4 back into families, in input order.
// Samples are attached to the family declared by the preceding TYPE line
// when their name is the family's (or, for histograms, its _bucket, _sum
// or _count); any other sample starts an untyped family. Timestamps are
// accepted and dropped.
func Parse(r io.Reader) ([]Family, error) {
	var fams []Family
	index := map[string]int{}
	get := func(name string) *Family {
		if i, ok := index[name]; ok {
			return &fams[i]
		}
		index[name] = len(fams)
		fams = append(fams, Family{Name: name, Type: UntypedType})
		return &fams[len(fams)-1]
	}
	cur := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				continue // a plain comment
			}
			if !metricNameRe.MatchString(f[2]) {
				return nil, fmt.Errorf("line %d: invalid metric name %q", n, f[2])
			}
			fam := get(f[2])
			cur = f[2]
			if f[1] == "HELP" {
				rest := strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "#")), "HELP")
				rest = strings.TrimPrefix(strings.TrimSpace(rest), f[2])
				fam.Help = unescape(strings.TrimPrefix(rest, " "), false)
				continue
			}
			if len(f) != 4 {
				return nil, fmt.Errorf("line %d: TYPE needs a name and a type", n)
			}
			switch t := Type(f[3]); t {
			case CounterType, GaugeType, HistogramType, UntypedType, "summary":
				fam.Type = t
			default:
				return nil, fmt.Errorf("line %d: unknown type %q", n, f[3])
			}
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		owner := s.Name
		if cur != "" {
			ft := fams[index[cur]].Type
			if s.Name == cur {
				owner = cur
			} else if (ft == HistogramType || ft == "summary") && strings.HasPrefix(s.Name, cur+"_") {
				switch strings.TrimPrefix(s.Name, cur) {
				case "_bucket", "_sum", "_count":
					owner = cur
				}
			}
		}
		fam := get(owner)
		fam.Samples = append(fam.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return fams, nil
}

func parseSample(line string) (Sample, error) {
	var s Sample
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return s, fmt.Errorf("sample %q has no value", line)
	}
	s.Name = line[:i]
	if !metricNameRe.MatchString(s.Name) {
		return s, fmt.Errorf("invalid metric name %q", s.Name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				return s, fmt.Errorf("label without value in %q", line)
			}
			name := strings.TrimSpace(rest[:eq])
			if !labelNameRe.MatchString(name) {
				return s, fmt.Errorf("invalid label name %q", name)
			}
			rest = strings.TrimLeft(rest[eq+1:], " \t")
			if !strings.HasPrefix(rest, `"`) {
				return s, fmt.Errorf("label %s: value not quoted", name)
			}
			end, ok := closingQuote(rest)
			if !ok {
				return s, fmt.Errorf("label %s: unterminated value", name)
			}
			s.Labels = append(s.Labels, Label{Name: name, Value: unescape(rest[1:end], true)})
			rest = strings.TrimLeft(rest[end+1:], " \t")
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("expected , or } after label %s", name)
			}
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("sample %s: want a value and an optional timestamp, got %q", s.Name, rest)
	}
	v, err := parseFloat(f[0])
	if err != nil {
		return s, fmt.Errorf("sample %s: value %q: %w", s.Name, f[0], err)
	}
	s.Value = v
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return s, fmt.Errorf("sample %s: timestamp %q: %w", s.Name, f[1], err)
		}
	}
	return s, nil
}

// closingQuote finds the quote ending the value that s starts with.
func closingQuote(s string) (int, bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i, true
		}
	}
	return 0, false
}

func unescape(s string, quotes bool) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case '\\':
			b.WriteByte('\\')
		case '"':
			if quotes {
				b.WriteByte('"')
			} else {
				b.WriteString(`\"`)
			}
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func parseFloat(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// Find returns the family named name, or nil.
func Find(fams []Family, name string) *Family {
	for i := range fams {
		if fams[i].Name == name {
			return &fams[i]
		}
	}
	return nil
}

// Sum adds the values of the family's samples named sampleName whose
// labels include every pair in match (name, value, name, value, …).
func (f *Family) Sum(sampleName string, match ...string) float64 {
	if f == nil {
		return 0
	}
	var total float64
	for _, s := range f.Samples {
		if s.Name != sampleName || !s.matches(match) {
			continue
		}
		total += s.Value
	}
	return total
}

func (s Sample) matches(match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		if s.Get(match[i]) != match[i+1] {
			return false
		}
	}
	return true
}
