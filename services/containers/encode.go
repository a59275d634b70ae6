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
// The bytes travel as the reply's unknown fields, which proto marshals
// as they are; a client decodes them as the usual fields.
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

	// fieldContainers is ListContainersResponse.containers and
	// ListContainerMessage.container.
	fieldContainers = 1
)

// encodedList is a list of containers in wire form: entries[i] is the
// Container field of the i-th, tag and length included.
type encodedList struct {
	buf     []byte
	ends    []int // end of each entry in buf
	scratch []byte
}

func (l *encodedList) add(c *metadata.StoredContainer) error {
	l.scratch = appendContainer(l.scratch[:0], c)
	l.buf = reserve(l.buf, protowire.SizeTag(fieldContainers)+protowire.SizeBytes(len(l.scratch)))
	l.buf = protowire.AppendTag(l.buf, fieldContainers, protowire.BytesType)
	l.buf = protowire.AppendBytes(l.buf, l.scratch)
	l.ends = append(l.ends, len(l.buf))
	return nil
}

// reserve makes room for n more bytes in b, doubling its capacity when
// it must grow: append grows a big slice by a quarter at a time, which
// copied a 6 MB list some 30 MB over.
func reserve(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	grown := make([]byte, len(b), max(2*cap(b), len(b)+n, 64<<10))
	copy(grown, b)
	return grown
}

func (l *encodedList) len() int { return len(l.ends) }

// entry is the i-th container's field.
func (l *encodedList) entry(i int) []byte {
	start := 0
	if i > 0 {
		start = l.ends[i-1]
	}
	return l.buf[start:l.ends[i]]
}

func (l *encodedList) response() *api.ListContainersResponse {
	r := &api.ListContainersResponse{}
	if len(l.buf) > 0 {
		r.ProtoReflect().SetUnknown(protoreflect.RawFields(l.buf))
	}
	return r
}

func (l *encodedList) message(i int) *api.ListContainerMessage {
	m := &api.ListContainerMessage{}
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(l.entry(i)))
	return m
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
