package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

func newTabWriter() *tabwriter.Writer { return newTabWriterTo(os.Stdout) }

// newTabWriterTo is newTabWriter writing to out (a bufio.Writer, say: a
// tabwriter writes each cell and its padding separately).
func newTabWriterTo(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 4, 8, 4, ' ', 0)
}

// parseLabels turns "k=v" arguments into a map; "k=" and "k" give "".
func parseLabels(args []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label %q: want KEY=VALUE", a)
		}
		labels[k] = v
	}
	return labels, nil
}

// formatLabels prints labels as k=v,k2=v2 in key order, "-" for none.
func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}

func printJSON(v interface{}) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
