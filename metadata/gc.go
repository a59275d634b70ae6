package metadata

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/snapshots"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Labels the collector follows, containerd's names so clients that set
// them (unpack, pull, import) keep what they mean to keep.
const (
	// GCRootLabel on a blob or snapshot makes it a root.
	GCRootLabel = "containerd.io/gc.root"
	// GCRefContentPrefix labels ("…content" or "…content.<anything>") hold
	// a digest the labelled object keeps alive.
	GCRefContentPrefix = "containerd.io/gc.ref.content"
	// GCRefSnapshotPrefix labels ("…snapshot.<snapshotter>[/<anything>]")
	// hold a snapshot key, in that snapshotter, the object keeps alive.
	GCRefSnapshotPrefix = "containerd.io/gc.ref.snapshot."
)

// GCStats reports what one collection removed.
type GCStats struct {
	LeasesExpired    int // expired leases deleted
	ContentRecords   int // namespace blob records dropped
	SnapshotRecords  int // namespace snapshot records dropped
	ContentDeleted   int // blobs deleted from the backend store
	SnapshotsDeleted int // snapshots removed from backend snapshotters
	Duration         time.Duration
}

// errUnchanged ends a collection's transaction that changed nothing.
var errUnchanged = errors.New("nothing to commit")

// gcNode is a blob (snapshotter empty) or a snapshot in a namespace.
type gcNode struct {
	ns, snapshotter, key string
}

// GarbageCollect deletes expired leases, then marks everything reachable
// from the roots (images and their targets, containers' snapshots,
// unexpired leases' resources, objects labelled gc.root) through gc.ref
// labels and snapshot parents, drops every unreached blob and snapshot
// record, and removes from the backends what no namespace records any more.
// Writers that create backend objects wait while it runs.
func (db *DB) GarbageCollect(ctx context.Context) (GCStats, error) {
	start := time.Now()
	var stats GCStats
	// Removals already answered finish first: a collection (a sync
	// delete waits for one) then leaves the disk as the records say.
	db.removals.Wait()
	db.wlock.Lock()
	defer db.wlock.Unlock()

	var keepBlobs map[digest.Digest]bool
	var keepSnaps map[string]map[string]bool // snapshotter -> backend keys
	err := db.update(ctx, func(tx *bolt.Tx) error {
		stats = GCStats{}
		if err := expireLeases(tx, time.Now(), &stats); err != nil {
			return err
		}
		marked := mark(tx)
		if err := sweepRecords(tx, marked, &stats); err != nil {
			return err
		}
		keepBlobs, keepSnaps = remaining(tx)
		if stats.LeasesExpired+stats.ContentRecords+stats.SnapshotRecords == 0 {
			// Nothing changed: roll back rather than commit, which would
			// cost two fdatasyncs and hold bbolt's writer for them. Most
			// collections (one after each lease delete) find nothing.
			return errUnchanged
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	if err != nil {
		return stats, fmt.Errorf("garbage collection: %w", err)
	}

	db.mu.Lock()
	cs := db.content
	sns := make(map[string]*snapshotter, len(db.snapshotters))
	for name, s := range db.snapshotters {
		sns[name] = s
	}
	db.mu.Unlock()

	var errs []error
	if cs != nil {
		n, err := sweepContent(ctx, cs.backend, keepBlobs)
		stats.ContentDeleted += n
		errs = append(errs, err)
	}
	names := make([]string, 0, len(sns))
	for name := range sns {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n, err := sweepSnapshots(ctx, sns[name].backend, keepSnaps[name])
		stats.SnapshotsDeleted += n
		if err != nil {
			errs = append(errs, fmt.Errorf("snapshotter %q: %w", name, err))
		}
	}
	stats.Duration = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return stats, fmt.Errorf("garbage collection: %w", err)
	}
	log.G(ctx).WithField("stats", fmt.Sprintf("%+v", stats)).Debug("garbage collected")
	return stats, nil
}

// forEachNS calls fn with each namespace's name and bucket.
func forEachNS(tx *bolt.Tx, fn func(ns string, b *bolt.Bucket) error) error {
	v1 := tx.Bucket(bucketV1)
	return v1.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return fn(string(k), v1.Bucket(k))
	})
}

// forEachBucket calls fn for each nested bucket of b (nil b: nothing).
func forEachBucket(b *bolt.Bucket, fn func(k []byte, b *bolt.Bucket) error) error {
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		return fn(k, b.Bucket(k))
	})
}

func expireLeases(tx *bolt.Tx, now time.Time, stats *GCStats) error {
	return forEachNS(tx, func(ns string, nb *bolt.Bucket) error {
		lb := nb.Bucket(bucketLeases)
		var expired [][]byte
		err := forEachBucket(lb, func(k []byte, b *bolt.Bucket) error {
			if v := readMap(b, bucketLabels)[ExpireLabel]; v != "" {
				if t, err := time.Parse(time.RFC3339, v); err == nil && !now.Before(t) {
					expired = append(expired, append([]byte(nil), k...))
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := lb.DeleteBucket(k); err != nil {
				return err
			}
			stats.LeasesExpired++
		}
		return nil
	})
}

// labelRefs returns the nodes, in namespace ns, that labels reference.
func labelRefs(ns string, labels map[string]string) []gcNode {
	var out []gcNode
	for k, v := range labels {
		switch {
		case k == GCRefContentPrefix || strings.HasPrefix(k, GCRefContentPrefix+"."):
			if _, err := digest.Parse(v); err == nil {
				out = append(out, gcNode{ns: ns, key: v})
			}
		case strings.HasPrefix(k, GCRefSnapshotPrefix):
			sn, _, _ := strings.Cut(strings.TrimPrefix(k, GCRefSnapshotPrefix), "/")
			if sn != "" && v != "" {
				out = append(out, gcNode{ns: ns, snapshotter: sn, key: v})
			}
		}
	}
	return out
}

// mark returns every blob and snapshot record reachable from the roots.
func mark(tx *bolt.Tx) map[gcNode]bool {
	marked := map[gcNode]bool{}
	var queue []gcNode
	push := func(nodes ...gcNode) {
		for _, n := range nodes {
			if !marked[n] {
				marked[n] = true
				queue = append(queue, n)
			}
		}
	}
	_ = forEachNS(tx, func(ns string, nb *bolt.Bucket) error {
		_ = forEachBucket(nb.Bucket(bucketImages), func(k []byte, b *bolt.Bucket) error {
			if tb := b.Bucket(bucketTarget); tb != nil {
				push(gcNode{ns: ns, key: string(tb.Get(keyDigest))})
			}
			push(labelRefs(ns, readMap(b, bucketLabels))...)
			return nil
		})
		_ = forEachBucket(nb.Bucket(bucketContainers), func(k []byte, b *bolt.Bucket) error {
			if sn, key := b.Get(keySnapshotter), b.Get(keySnapshotKey); len(sn) > 0 && len(key) > 0 {
				push(gcNode{ns: ns, snapshotter: string(sn), key: string(key)})
			}
			push(labelRefs(ns, readMap(b, bucketLabels))...)
			return nil
		})
		_ = forEachBucket(nb.Bucket(bucketLeases), func(k []byte, lb *bolt.Bucket) error {
			for _, r := range leaseResources(lb) {
				switch {
				case r.Type == "content":
					push(gcNode{ns: ns, key: r.ID})
				case strings.HasPrefix(r.Type, "snapshots/"):
					push(gcNode{ns: ns, snapshotter: strings.TrimPrefix(r.Type, "snapshots/"), key: r.ID})
				}
			}
			return nil
		})
		_ = forEachBucket(nb.Bucket(bucketContent), func(k []byte, b *bolt.Bucket) error {
			if string(k) != string(bucketBlob) {
				return nil
			}
			return forEachBucket(b, func(k []byte, bb *bolt.Bucket) error {
				if _, ok := readMap(bb, bucketLabels)[GCRootLabel]; ok {
					push(gcNode{ns: ns, key: string(k)})
				}
				return nil
			})
		})
		_ = forEachBucket(nb.Bucket(bucketSnapshots), func(sn []byte, sb *bolt.Bucket) error {
			return forEachBucket(sb, func(k []byte, b *bolt.Bucket) error {
				if _, ok := readMap(b, bucketLabels)[GCRootLabel]; ok {
					push(gcNode{ns: ns, snapshotter: string(sn), key: string(k)})
				}
				return nil
			})
		})
		return nil
	})
	// Follow references from every reached record to what it keeps.
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		var b *bolt.Bucket
		if n.snapshotter == "" {
			b = nsBucket(tx, n.ns, bucketContent, bucketBlob, []byte(n.key))
		} else {
			b = nsBucket(tx, n.ns, bucketSnapshots, []byte(n.snapshotter), []byte(n.key))
		}
		if b == nil || n.key == "" {
			continue // referenced but not (or no longer) recorded
		}
		push(labelRefs(n.ns, readMap(b, bucketLabels))...)
		if p := b.Get(keyParent); n.snapshotter != "" && len(p) > 0 {
			push(gcNode{ns: n.ns, snapshotter: n.snapshotter, key: string(p)})
		}
	}
	return marked
}

// sweepRecords drops every blob and snapshot record mark did not reach.
// A reached snapshot's parent is reached too, so only children lists of
// surviving parents need fixing.
func sweepRecords(tx *bolt.Tx, marked map[gcNode]bool, stats *GCStats) error {
	return forEachNS(tx, func(ns string, nb *bolt.Bucket) error {
		if cb := nb.Bucket(bucketContent); cb != nil {
			blobs := cb.Bucket(bucketBlob)
			var drop [][]byte
			_ = forEachBucket(blobs, func(k []byte, _ *bolt.Bucket) error {
				if !marked[gcNode{ns: ns, key: string(k)}] {
					drop = append(drop, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range drop {
				if err := blobs.DeleteBucket(k); err != nil {
					return err
				}
				stats.ContentRecords++
			}
		}
		return forEachBucket(nb.Bucket(bucketSnapshots), func(sn []byte, sb *bolt.Bucket) error {
			type dropped struct{ key, parent []byte }
			var drop []dropped
			_ = forEachBucket(sb, func(k []byte, b *bolt.Bucket) error {
				if !marked[gcNode{ns: ns, snapshotter: string(sn), key: string(k)}] {
					drop = append(drop, dropped{append([]byte(nil), k...), append([]byte(nil), b.Get(keyParent)...)})
				}
				return nil
			})
			for _, d := range drop {
				if err := sb.DeleteBucket(d.key); err != nil {
					return err
				}
				stats.SnapshotRecords++
			}
			for _, d := range drop {
				if pb := sb.Bucket(d.parent); len(d.parent) > 0 && pb != nil && pb.Bucket(bucketChildren) != nil {
					if err := pb.Bucket(bucketChildren).Delete(d.key); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}

// remaining returns the backend objects some namespace still records.
func remaining(tx *bolt.Tx) (map[digest.Digest]bool, map[string]map[string]bool) {
	blobs := map[digest.Digest]bool{}
	snaps := map[string]map[string]bool{}
	_ = forEachNS(tx, func(ns string, nb *bolt.Bucket) error {
		_ = forEachBucket(nsBucket(tx, ns, bucketContent, bucketBlob), func(k []byte, _ *bolt.Bucket) error {
			blobs[digest.Digest(k)] = true
			return nil
		})
		return forEachBucket(nb.Bucket(bucketSnapshots), func(sn []byte, sb *bolt.Bucket) error {
			if snaps[string(sn)] == nil {
				snaps[string(sn)] = map[string]bool{}
			}
			return forEachBucket(sb, func(k []byte, b *bolt.Bucket) error {
				snaps[string(sn)][string(b.Get(keyName))] = true
				return nil
			})
		})
	})
	return blobs, snaps
}

// sweepContent deletes backend blobs no namespace records.
func sweepContent(ctx context.Context, backend content.Store, keep map[digest.Digest]bool) (int, error) {
	var drop []digest.Digest
	err := backend.Walk(ctx, func(info content.Info) error {
		if !keep[info.Digest] {
			drop = append(drop, info.Digest)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("walk content: %w", err)
	}
	n := 0
	var errs []error
	for _, d := range drop {
		if err := backend.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete blob %s: %w", d, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// sweepSnapshots removes backend snapshots no namespace records, children
// before parents (a kept snapshot's parent is kept too).
func sweepSnapshots(ctx context.Context, backend snapshots.Snapshotter, keep map[string]bool) (int, error) {
	parents := map[string]string{}
	err := backend.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if !keep[info.Name] {
			parents[info.Name] = info.Parent
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("walk: %w", err)
	}
	depth := func(k string) int {
		d := 0
		for p := parents[k]; p != "" && d <= len(parents); p = parents[p] {
			d++
		}
		return d
	}
	drop := make([]string, 0, len(parents))
	for k := range parents {
		drop = append(drop, k)
	}
	sort.Slice(drop, func(i, j int) bool {
		di, dj := depth(drop[i]), depth(drop[j])
		if di != dj {
			return di > dj
		}
		return drop[i] < drop[j]
	})
	n := 0
	var errs []error
	for _, k := range drop {
		if err := backend.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove %q: %w", k, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
