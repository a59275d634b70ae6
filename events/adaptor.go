package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/typeurl"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field exposes an envelope to filters: "topic", "namespace", and
// "event.<field>..." read from the decoded payload (proto field names such as
// event.container_id, or JSON names; map fields take a key: event.labels.app).
func (e *Envelope) Field(fieldpath []string) (string, bool) {
	return newAdaptor(e).Field(fieldpath)
}

// adaptor decodes the payload at most once however many subscribers' filters
// look at it.
type adaptor struct {
	env     *Envelope
	once    sync.Once
	decoded interface{}
}

var _ filters.Adaptor = (*adaptor)(nil)

func newAdaptor(env *Envelope) *adaptor { return &adaptor{env: env} }

func (a *adaptor) Field(fieldpath []string) (string, bool) {
	if len(fieldpath) == 0 {
		return "", false
	}
	switch fieldpath[0] {
	case "namespace":
		return a.env.Namespace, len(fieldpath) == 1
	case "topic":
		return a.env.Topic, len(fieldpath) == 1
	case "event":
		if len(fieldpath) == 1 {
			// Presence of the event itself; its value is not a string.
			return "", a.env.Event != nil
		}
		a.once.Do(a.decode)
		switch v := a.decoded.(type) {
		case proto.Message:
			return protoField(v.ProtoReflect(), fieldpath[1:])
		case map[string]interface{}:
			return jsonField(v, fieldpath[1:])
		}
	}
	return "", false
}

// decode unpacks the Any; payloads of unknown types simply have no fields.
func (a *adaptor) decode() {
	if a.env.Event == nil {
		return
	}
	v, err := typeurl.UnmarshalAny(a.env.Event)
	if err != nil {
		return
	}
	if m, ok := v.(proto.Message); ok {
		a.decoded = m
		return
	}
	// A JSON-registered Go type: look at it the way it was encoded.
	var m map[string]interface{}
	if json.Unmarshal(a.env.Event.Value, &m) == nil {
		a.decoded = m
	}
}

func protoField(m protoreflect.Message, path []string) (string, bool) {
	fd := findField(m.Descriptor(), path[0])
	if fd == nil {
		return "", false
	}
	// An unset sub-message has no fields; unset scalars read as their zero
	// value, the way containerd's generated adaptors read them.
	if fd.Message() != nil && !fd.IsMap() && !fd.IsList() && !m.Has(fd) {
		return "", false
	}
	v := m.Get(fd)
	rest := path[1:]
	switch {
	case fd.IsMap():
		if len(rest) != 1 {
			return "", false
		}
		mv := v.Map()
		key := protoreflect.ValueOfString(rest[0]).MapKey()
		if fd.MapKey().Kind() != protoreflect.StringKind || !mv.Has(key) {
			return "", false
		}
		return scalar(fd.MapValue(), mv.Get(key))
	case fd.IsList():
		return "", false
	case fd.Message() != nil:
		if len(rest) == 0 {
			return "", false
		}
		return protoField(v.Message(), rest)
	}
	if len(rest) != 0 {
		return "", false
	}
	return scalar(fd, v)
}

func findField(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	if fd := fields.ByName(protoreflect.Name(name)); fd != nil {
		return fd
	}
	if fd := fields.ByJSONName(name); fd != nil {
		return fd
	}
	return nil
}

func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) (string, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return v.String(), true
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool()), true
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name()), true
		}
		return strconv.Itoa(int(v.Enum())), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10), true
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), true
	}
	return "", false
}

func jsonField(m map[string]interface{}, path []string) (string, bool) {
	v, ok := m[path[0]]
	if !ok {
		// JSON names may differ in case from the path the user typed.
		for k, kv := range m {
			if strings.EqualFold(k, path[0]) {
				v, ok = kv, true
				break
			}
		}
		if !ok {
			return "", false
		}
	}
	if len(path) > 1 {
		sub, isMap := v.(map[string]interface{})
		if !isMap {
			return "", false
		}
		return jsonField(sub, path[1:])
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool, float64:
		return fmt.Sprint(v), true
	case nil:
		return "", true
	}
	return "", false
}
