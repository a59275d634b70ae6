// Package typeurl packs values into google.protobuf.Any with the type URLs
// containerd uses, so Anys we send decode in containerd's clients and theirs
// decode here:
//   - protobuf messages use their bare full name ("containerd.events.TaskExit",
//     "containerd.runc.v1.Options"), not the "type.googleapis.com/" form;
//     incoming URLs with that prefix are accepted too.
//   - plain Go types registered with Register (the OCI runtime spec) are
//     JSON-encoded under their registered URL.
package typeurl

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/berth-containers/berth/pkg/errdefs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

const googlePrefix = "type.googleapis.com/"

// SpecURL is the type URL containerd gives the OCI runtime spec.
const SpecURL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"

var (
	mu     sync.RWMutex
	byURL  = map[string]reflect.Type{}
	byType = map[reflect.Type]string{}
)

// Register maps a non-protobuf Go type (by value, e.g. specs.Spec{}) to a type URL.
func Register(v interface{}, url string) {
	t := deref(reflect.TypeOf(v))
	mu.Lock()
	defer mu.Unlock()
	if old, ok := byType[t]; ok && old != url {
		panic(fmt.Sprintf("typeurl: %v registered twice (%s, %s)", t, old, url))
	}
	byURL[url] = t
	byType[t] = url
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	return t
}

// TypeURL returns the URL v would be packed under.
func TypeURL(v interface{}) (string, error) {
	mu.RLock()
	url, ok := byType[deref(reflect.TypeOf(v))]
	mu.RUnlock()
	if ok {
		return url, nil
	}
	if m, ok := v.(proto.Message); ok {
		return string(m.ProtoReflect().Descriptor().FullName()), nil
	}
	return "", fmt.Errorf("type %T has no type URL: %w", v, errdefs.ErrNotFound)
}

// MarshalAny packs v.
func MarshalAny(v interface{}) (*anypb.Any, error) {
	if a, ok := v.(*anypb.Any); ok {
		return a, nil
	}
	url, err := TypeURL(v)
	if err != nil {
		return nil, err
	}
	var data []byte
	if m, ok := v.(proto.Message); ok {
		data, err = proto.Marshal(m)
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", url, err)
	}
	return &anypb.Any{TypeUrl: url, Value: data}, nil
}

// Is reports whether a holds a value of v's type.
func Is(a *anypb.Any, v interface{}) bool {
	if a == nil {
		return false
	}
	url, err := TypeURL(v)
	return err == nil && strings.TrimPrefix(a.TypeUrl, googlePrefix) == url
}

// UnmarshalAny decodes a into a new value of its registered type.
func UnmarshalAny(a *anypb.Any) (interface{}, error) {
	if a == nil {
		return nil, fmt.Errorf("nil Any: %w", errdefs.ErrInvalidArgument)
	}
	url := strings.TrimPrefix(a.TypeUrl, googlePrefix)
	mu.RLock()
	t, ok := byURL[url]
	mu.RUnlock()
	if ok {
		v := reflect.New(t).Interface()
		if err := json.Unmarshal(a.Value, v); err != nil {
			return nil, fmt.Errorf("decode %s: %w: %w", url, err, errdefs.ErrInvalidArgument)
		}
		return v, nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(url))
	if err != nil {
		return nil, fmt.Errorf("type URL %q: %w", a.TypeUrl, errdefs.ErrNotFound)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(a.Value, m); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %w", url, err, errdefs.ErrInvalidArgument)
	}
	return m, nil
}

// UnmarshalTo decodes a into out, which must be of a's type.
func UnmarshalTo(a *anypb.Any, out interface{}) error {
	if a == nil {
		return fmt.Errorf("nil Any: %w", errdefs.ErrInvalidArgument)
	}
	url := strings.TrimPrefix(a.TypeUrl, googlePrefix)
	if m, ok := out.(proto.Message); ok {
		if got := string(m.ProtoReflect().Descriptor().FullName()); got != url {
			return fmt.Errorf("Any holds %s, not %s: %w", url, got, errdefs.ErrInvalidArgument)
		}
		if err := proto.Unmarshal(a.Value, m); err != nil {
			return fmt.Errorf("decode %s: %w: %w", url, err, errdefs.ErrInvalidArgument)
		}
		return nil
	}
	want, err := TypeURL(out)
	if err != nil {
		return err
	}
	if want != url {
		return fmt.Errorf("Any holds %s, not %s: %w", url, want, errdefs.ErrInvalidArgument)
	}
	if err := json.Unmarshal(a.Value, out); err != nil {
		return fmt.Errorf("decode %s: %w: %w", url, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// IsSpec reports whether a holds an OCI runtime spec (JSON under SpecURL).
func IsSpec(a *anypb.Any) bool {
	return a != nil && strings.TrimPrefix(a.TypeUrl, googlePrefix) == SpecURL
}

// Type URLs containerd gives the other runtime-spec types it sends as JSON
// (exec process specs, resource updates).
const (
	ProcessURL        = "types.containerd.io/opencontainers/runtime-spec/1/Process"
	LinuxResourcesURL = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
)
