package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/snapshots"
)

// GetInfo returns the id, info and recorded usage of key. Usage is only
// recorded for committed snapshots; actives are measured live.
func (t *Tx) GetInfo(ctx context.Context, key string) (uint64, snapshots.Info, snapshots.Usage, error) {
	if err := ValidateKey(key); err != nil {
		return 0, snapshots.Info{}, snapshots.Usage{}, err
	}
	r, err := t.readRecord(key)
	if err != nil {
		return 0, snapshots.Info{}, snapshots.Usage{}, err
	}
	return r.id, r.info(key), r.usage, nil
}

// UpdateInfo changes the labels of info.Name. fieldpaths may be "labels"
// (replace all) or "labels.KEY" (set or, with no value in info, delete one);
// none means all mutable fields, which are the labels.
func (t *Tx) UpdateInfo(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	if err := t.writable("update snapshot"); err != nil {
		return snapshots.Info{}, err
	}
	key := info.Name
	if err := ValidateKey(key); err != nil {
		return snapshots.Info{}, err
	}
	r, err := t.readRecord(key)
	if err != nil {
		return snapshots.Info{}, err
	}
	labels := make(map[string]string, len(r.labels))
	for k, v := range r.labels {
		labels[k] = v
	}
	if len(fieldpaths) == 0 {
		fieldpaths = []string{"labels"}
	}
	for _, p := range fieldpaths {
		switch {
		case p == "labels":
			labels = map[string]string{}
			for k, v := range info.Labels {
				labels[k] = v
			}
		case strings.HasPrefix(p, "labels.") && len(p) > len("labels."):
			k := strings.TrimPrefix(p, "labels.")
			if v, ok := info.Labels[k]; ok {
				labels[k] = v
			} else {
				delete(labels, k)
			}
		default:
			return snapshots.Info{}, fmt.Errorf("update snapshot %q: cannot update field %q: %w", key, p, errdefs.ErrInvalidArgument)
		}
	}
	if err := ValidateLabels(labels); err != nil {
		return snapshots.Info{}, fmt.Errorf("update snapshot %q: %w", key, err)
	}
	if err := snapshots.CheckFixedLabels(r.labels, labels); err != nil {
		return snapshots.Info{}, fmt.Errorf("update snapshot %q: %w", key, err)
	}
	r.labels = labels
	if len(r.labels) == 0 {
		r.labels = nil
	}
	r.updated = time.Now().UTC()
	bkt := t.snapshots().Bucket([]byte(key))
	updated, err := r.updated.MarshalBinary()
	if err != nil {
		return snapshots.Info{}, err
	}
	if err := bkt.Put(keyUpdated, updated); err != nil {
		return snapshots.Info{}, fmt.Errorf("update snapshot %q: %w", key, err)
	}
	if err := writeLabels(bkt, r.labels); err != nil {
		return snapshots.Info{}, fmt.Errorf("update snapshot %q: labels: %w", key, err)
	}
	return r.info(key), nil
}

// WalkInfo calls fn for each snapshot matching the filters, which may test
// "name", "parent", "kind" (active, view, committed) and "labels.KEY".
func (t *Tx) WalkInfo(ctx context.Context, fn snapshots.WalkFunc, exprs ...string) error {
	filter, err := filters.ParseAll(exprs...)
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	return t.snapshots().ForEach(func(k, v []byte) error {
		if v != nil {
			return nil // a plain value, not a snapshot bucket
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := t.readRecord(string(k))
		if err != nil {
			return fmt.Errorf("walk snapshots: %w", err)
		}
		info := r.info(string(k))
		if !filter.Match(infoAdaptor(info)) {
			return nil
		}
		return fn(ctx, info)
	})
}

// KindName is the lowercase kind name filters compare against.
func KindName(k snapshots.Kind) string {
	return strings.ToLower(k.String())
}

func infoAdaptor(info snapshots.Info) filters.Adaptor {
	return filters.AdapterFunc(func(fieldpath []string) (string, bool) {
		if len(fieldpath) == 0 {
			return "", false
		}
		switch fieldpath[0] {
		case "name":
			return info.Name, len(fieldpath) == 1
		case "parent":
			return info.Parent, len(fieldpath) == 1 && info.Parent != ""
		case "kind":
			return KindName(info.Kind), len(fieldpath) == 1
		case "labels":
			if len(fieldpath) < 2 {
				return "", len(info.Labels) > 0
			}
			v, ok := info.Labels[strings.Join(fieldpath[1:], ".")]
			return v, ok
		}
		return "", false
	})
}

// IDMap returns every snapshot's id (as its directory name) and key, for
// a snapshotter to find directories no record points to.
func (t *Tx) IDMap(ctx context.Context) (map[string]string, error) {
	m := map[string]string{}
	err := t.snapshots().ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		r, err := t.readRecord(string(k))
		if err != nil {
			return err
		}
		m[IDString(r.id)] = string(k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot id map: %w", err)
	}
	return m, nil
}
