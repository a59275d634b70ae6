package containers

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	api "github.com/berth-containers/berth/api/services/containers/v1"
	"github.com/berth-containers/berth/metadata"
)

// Lists are encoded straight from the stored records into the reply's
// wire bytes: containerd.services.containers.v1.Container is a flat
// message of strings, string maps, timestamps and Anys, and the store
// keeps the Anys marshalled, so nothing needs decoding, converting to
// generated structs and marshalling again. For 1000 containers that was
// most of a List's time and all but a few of its ~30,000 allocations.
// The bytes travel as the unknown fields of otherwise empty Containers,
// which proto marshals as they are; a client decodes them as the usual
// fields.
// TestEncodeMatchesToProto holds them to what toProto and proto.Marshal
// give.

// Field numbers of Container, Container.Runtime, map entries and
// google.protobuf.Timestamp.
const (
	fieldID          = 1
	fieldLabels      = 2
	fieldImage       = 3
	fieldRuntime     = 4
	fieldSpec        = 5
	fieldSnapshotter = 6
	fieldSnapshotKey = 7
	fieldCreatedAt   = 8
	fieldUpdatedAt   = 9
	fieldExtensions  = 10

	fieldRuntimeName    = 1
	fieldRuntimeOptions = 2

	fieldMapKey   = 1
	fieldMapValue = 2

	fieldSeconds = 1
	fieldNanos   = 2
)

// encodedList is a list of containers in wire form: each Container holds
// its encoded fields as unknown fields, in chunks of one arena (no buffer
// that grows and is copied, and a reply proto can marshal as it is).
type encodedList struct {
	containers []*api.Container
	arena      []byte
	scratch    []byte
}

// arenaChunk is the size of the arena's chunks: a few for 1000 small
// records, one allocation per ~40 records with 6 KB specs.
const arenaChunk = 256 << 10

func (l *encodedList) add(c *metadata.StoredContainer) error {
	l.scratch = appendContainer(l.scratch[:0], c)
	if cap(l.arena)-len(l.arena) < len(l.scratch) {
		l.arena = make([]byte, 0, max(arenaChunk, len(l.scratch)))
	}
	start := len(l.arena)
	l.arena = append(l.arena, l.scratch...)
	ct := &api.Container{}
	ct.ProtoReflect().SetUnknown(protoreflect.RawFields(l.arena[start:len(l.arena):len(l.arena)]))
	l.containers = append(l.containers, ct)
	return nil
}

func (l *encodedList) response() *api.ListContainersResponse {
	return &api.ListContainersResponse{Containers: l.containers}
}

func (l *encodedList) message(i int) *api.ListContainerMessage {
	return &api.ListContainerMessage{Container: l.containers[i]}
}

// appendContainer appends c's fields as toProto and proto.Marshal would
// give them (in field order; proto3 leaves out empty strings and unset
// messages; runtime and both timestamps are always set).
func appendContainer(b []byte, c *metadata.StoredContainer) []byte {
	b = appendString(b, fieldID, c.ID)
	c.Labels(func(k, v []byte) { b = appendMapEntry(b, fieldLabels, k, v) })
	b = appendString(b, fieldImage, c.Image)

	rt := sizeString(fieldRuntimeName, c.RuntimeName)
	if c.RuntimeOptions != nil {
		rt += sizeBytes(fieldRuntimeOptions, c.RuntimeOptions)
	}
	b = protowire.AppendTag(b, fieldRuntime, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(rt))
	b = appendString(b, fieldRuntimeName, c.RuntimeName)
	if c.RuntimeOptions != nil {
		b = appendBytes(b, fieldRuntimeOptions, c.RuntimeOptions)
	}

	if c.Spec != nil {
		b = appendBytes(b, fieldSpec, c.Spec)
	}
	b = appendString(b, fieldSnapshotter, c.Snapshotter)
	b = appendString(b, fieldSnapshotKey, c.SnapshotKey)
	b = appendTimestamp(b, fieldCreatedAt, c.CreatedAt.Unix(), c.CreatedAt.Nanosecond())
	b = appendTimestamp(b, fieldUpdatedAt, c.UpdatedAt.Unix(), c.UpdatedAt.Nanosecond())
	c.Extensions(func(name, v []byte) { b = appendMapEntry(b, fieldExtensions, name, v) })
	return b
}

// appendString appends a proto3 string (or bytes) field, left out when
// empty.
func appendString(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return appendBytes(b, num, v)
}

func sizeString(num protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return sizeBytes(num, v)
}

// appendBytes appends a length-delimited field, empty or not.
func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func sizeBytes(num protowire.Number, v []byte) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(len(v))
}

// appendMapEntry appends one entry of a map field; proto writes key and
// value even when empty.
func appendMapEntry(b []byte, num protowire.Number, k, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeBytes(fieldMapKey, k)+sizeBytes(fieldMapValue, v)))
	b = appendBytes(b, fieldMapKey, k)
	return appendBytes(b, fieldMapValue, v)
}

func appendTimestamp(b []byte, num protowire.Number, seconds int64, nanos int) []byte {
	size := 0
	if seconds != 0 {
		size += protowire.SizeTag(fieldSeconds) + protowire.SizeVarint(uint64(seconds))
	}
	if nanos != 0 {
		size += protowire.SizeTag(fieldNanos) + protowire.SizeVarint(uint64(int64(nanos)))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if seconds != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, fieldSeconds, protowire.VarintType), uint64(seconds))
	}
	if nanos != 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, fieldNanos, protowire.VarintType), uint64(int64(nanos)))
	}
	return b
}
