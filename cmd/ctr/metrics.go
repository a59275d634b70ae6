package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	apitypes "github.com/berth-containers/berth/api/types"
	"github.com/berth-containers/berth/pkg/typeurl"

	// runc shims (ours and containerd's) report cgroup stats as these types.
	_ "github.com/containerd/cgroups/v3/cgroup1/stats"
	_ "github.com/containerd/cgroups/v3/cgroup2/stats"
)

// printMetrics prints a task's metric sample. The payload is whatever the
// runtime sends (our shim: cgroup stats); shown as a flat table of its
// fields, or JSON.
func printMetrics(format string, m *apitypes.Metric) error {
	var data map[string]interface{}
	if m.Data != nil {
		v, err := typeurl.UnmarshalAny(m.Data)
		if err != nil {
			return fmt.Errorf("decode metrics %s: %w", m.Data.TypeUrl, err)
		}
		var b []byte
		if pm, ok := v.(proto.Message); ok {
			b, err = protojson.Marshal(pm)
		} else {
			b, err = json.Marshal(v)
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &data); err != nil {
			return err
		}
	}
	if format == "json" {
		return printJSON(data)
	}
	w := newTabWriter()
	fmt.Fprintln(w, "ID\tTIMESTAMP\t")
	fmt.Fprintf(w, "%s\t%s\t\n\n", m.Id, m.Timestamp.AsTime())
	fmt.Fprintln(w, "METRIC\tVALUE\t")
	flatten(w, "", data)
	return w.Flush()
}

func flatten(w interface{ Write([]byte) (int, error) }, prefix string, v interface{}) {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, vv := range t {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flatten(w, name, vv)
		}
	default:
		fmt.Fprintf(w, "%s\t%v\t\n", strings.TrimPrefix(prefix, "."), t)
	}
}
