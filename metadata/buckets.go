// Package metadata is Berth's bbolt store: namespaces, containers, images,
// leases, and each namespace's view of the shared content store and
// snapshotters, plus the garbage collector that frees what nothing uses.
//
// The whole bolt schema, in one place. Bucket names end in "/"; everything
// else is a key holding a value. Times are time.Time.MarshalBinary; sizes and
// the version are uvarints; Anys are proto-marshalled google.protobuf.Any.
//
//	v1/                                      schema generation (a new layout gets a new root)
//	  version                                 migration level reached (see db.go)
//	  <namespace>/                            created by namespaces.Create or any first write
//	    labels/ <key> -> <value>              namespace labels
//	    containers/
//	      <id>/
//	        createdat, updatedat
//	        labels/ <key> -> <value>
//	        image                             image name (free text, not a reference)
//	        runtime/ name -> <runtime name>, options -> Any
//	        spec -> Any                       the OCI runtime spec
//	        snapshotter, snapshotkey
//	        sandboxid
//	        extensions/ <name> -> Any
//	    images/
//	      <name>/
//	        createdat, updatedat
//	        labels/ <key> -> <value>
//	        target/ digest, mediatype, size, annotations/ <key> -> <value>
//	    leases/
//	      <id>/
//	        createdat
//	        labels/ <key> -> <value>          "containerd.io/gc.expire" holds the expiry (RFC3339)
//	        content/ <digest> -> ""           blobs the lease keeps alive
//	        ingests/ <ref> -> ""              ingests the lease keeps alive
//	        snapshots/ <snapshotter>/ <key> -> ""
//	    content/
//	      blob/
//	        <digest>/                         this namespace has committed this blob
//	          createdat, updatedat, size
//	          labels/ <key> -> <value>        labels are per namespace
//	      ingest/
//	        <ref>/                            this namespace's ingest
//	          ref -> <backend ref>            unique across namespaces
//	          expected -> <digest>            when known
//	    snapshots/
//	      <snapshotter>/
//	        <key>/                            the namespace's key
//	          name -> <backend key>           "<namespace>/<n>/<key>", unique in the backend
//	          parent -> <parent key>          in this namespace, empty for none
//	          children/ <key> -> ""           keys whose parent this is
//	          createdat, updatedat
//	          labels/ <key> -> <value>
//
// A blob or snapshot lives in the backend once, whichever namespaces use it;
// the garbage collector (gc.go) removes backend objects no namespace reaches.
package metadata

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/berth-containers/berth/pkg/errdefs"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

var (
	bucketV1   = []byte("v1")
	keyVersion = []byte("version")

	bucketLabels     = []byte("labels")
	bucketContainers = []byte("containers")
	bucketImages     = []byte("images")
	bucketLeases     = []byte("leases")
	bucketContent    = []byte("content")
	bucketSnapshots  = []byte("snapshots")

	bucketBlob        = []byte("blob")
	bucketIngest      = []byte("ingest")
	bucketIngests     = []byte("ingests")
	bucketRuntime     = []byte("runtime")
	bucketExtensions  = []byte("extensions")
	bucketTarget      = []byte("target")
	bucketAnnotations = []byte("annotations")
	bucketChildren    = []byte("children")

	keyCreatedAt   = []byte("createdat")
	keyUpdatedAt   = []byte("updatedat")
	keyImage       = []byte("image")
	keyName        = []byte("name")
	keyOptions     = []byte("options")
	keySpec        = []byte("spec")
	keySnapshotter = []byte("snapshotter")
	keySnapshotKey = []byte("snapshotkey")
	keySandboxID   = []byte("sandboxid")
	keyDigest      = []byte("digest")
	keyMediaType   = []byte("mediatype")
	keySize        = []byte("size")
	keyRef         = []byte("ref")
	keyExpected    = []byte("expected")
	keyParent      = []byte("parent")
)

// getBucket walks the path of nested buckets from the root; nil if any is missing.
func getBucket(tx *bolt.Tx, path ...[]byte) *bolt.Bucket {
	b := tx.Bucket(path[0])
	for _, k := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(k)
	}
	return b
}

// createBucket makes every bucket on the path that is missing.
func createBucket(tx *bolt.Tx, path ...[]byte) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, err
	}
	for _, k := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(k); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// nsBucket returns v1/<ns>/<kind>, nil when absent.
func nsBucket(tx *bolt.Tx, ns string, kind []byte, rest ...[]byte) *bolt.Bucket {
	return getBucket(tx, append([][]byte{bucketV1, []byte(ns), kind}, rest...)...)
}

// createNSBucket creates v1/<ns>/<kind>/... as needed; writing anything in
// a namespace creates the namespace, as in containerd.
func createNSBucket(tx *bolt.Tx, ns string, kind []byte, rest ...[]byte) (*bolt.Bucket, error) {
	return createBucket(tx, append([][]byte{bucketV1, []byte(ns), kind}, rest...)...)
}

func writeTime(b *bolt.Bucket, key []byte, t time.Time) error {
	v, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

func readTime(b *bolt.Bucket, key []byte) (time.Time, error) {
	var t time.Time
	v := b.Get(key)
	if v == nil {
		return t, nil
	}
	if err := t.UnmarshalBinary(v); err != nil {
		return t, fmt.Errorf("corrupt %s: %v: %w", key, err, errdefs.ErrUnknown)
	}
	return t, nil
}

func writeUint(b *bolt.Bucket, key []byte, n uint64) error {
	return b.Put(key, binary.AppendUvarint(nil, n))
}

func readUint(b *bolt.Bucket, key []byte) (uint64, error) {
	v := b.Get(key)
	if v == nil {
		return 0, nil
	}
	n, l := binary.Uvarint(v)
	if l <= 0 {
		return 0, fmt.Errorf("corrupt %s: %w", key, errdefs.ErrUnknown)
	}
	return n, nil
}

// putString stores s, deleting the key for an empty string so records do
// not grow keys for unset fields.
func putString(b *bolt.Bucket, key []byte, s string) error {
	if s == "" {
		return b.Delete(key)
	}
	return b.Put(key, []byte(s))
}

func writeAny(b *bolt.Bucket, key []byte, a *anypb.Any) error {
	if a == nil {
		return b.Delete(key)
	}
	v, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", key, err)
	}
	return b.Put(key, v)
}

// readAny decodes an Any written by writeAny. It reads the two fields by
// hand, several times faster than proto.Unmarshal, which a List of every
// container pays per spec and per runtime options; anything unexpected
// (an unknown field, a malformed tag) goes to proto.Unmarshal, which
// decides.
func readAny(v []byte) (*anypb.Any, error) {
	if v == nil {
		return nil, nil
	}
	typeURL, value, ok := parseAny(v)
	if !ok {
		return unmarshalAny(v)
	}
	a := &anypb.Any{TypeUrl: string(typeURL)}
	if value != nil {
		a.Value = append([]byte(nil), value...)
	}
	return a, nil
}

// parseAny splits a marshalled Any of fields 1 (type URL, valid UTF-8)
// and 2 (value) into them, in place; false for anything else.
func parseAny(v []byte) (typeURL, value []byte, ok bool) {
	for b := v; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) {
			return nil, nil, false
		}
		field, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return nil, nil, false
		}
		if num == 1 {
			if !utf8.Valid(field) {
				return nil, nil, false
			}
			typeURL = field
		} else {
			value = field
		}
		b = b[n+m:]
	}
	return typeURL, value, true
}

// anyParses reports whether v decodes as an Any, without keeping it.
func anyParses(v []byte) bool {
	if _, _, ok := parseAny(v); ok {
		return true
	}
	_, err := unmarshalAny(v)
	return err == nil
}

func unmarshalAny(v []byte) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := proto.Unmarshal(v, a); err != nil {
		return nil, fmt.Errorf("corrupt Any: %v: %w", err, errdefs.ErrUnknown)
	}
	return a, nil
}

// writeMap replaces the bucket name under b with m; an empty map removes it.
func writeMap(b *bolt.Bucket, name []byte, m map[string]string) error {
	if b.Bucket(name) != nil {
		if err := b.DeleteBucket(name); err != nil {
			return err
		}
	}
	if len(m) == 0 {
		return nil
	}
	mb, err := b.CreateBucket(name)
	if err != nil {
		return err
	}
	for k, v := range m {
		if err := mb.Put([]byte(k), []byte(v)); err != nil {
			return err
		}
	}
	return nil
}

// readMap returns the bucket name under b as a map, nil when absent.
func readMap(b *bolt.Bucket, name []byte) map[string]string {
	mb := b.Bucket(name)
	if mb == nil {
		return nil
	}
	m := map[string]string{}
	_ = mb.ForEach(func(k, v []byte) error {
		m[string(k)] = string(v)
		return nil
	})
	return m
}

// bucketEmpty reports whether b is nil or holds nothing.
func bucketEmpty(b *bolt.Bucket) bool {
	if b == nil {
		return true
	}
	k, _ := b.Cursor().First()
	return k == nil
}
