package api_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/berth-containers/berth/api/events"
	runcoptions "github.com/berth-containers/berth/api/runtime/runc/options"
	shim "github.com/berth-containers/berth/api/runtime/task/v2"
	containers "github.com/berth-containers/berth/api/services/containers/v1"
	_ "github.com/berth-containers/berth/api/services/content/v1"
	_ "github.com/berth-containers/berth/api/services/diff/v1"
	_ "github.com/berth-containers/berth/api/services/events/v1"
	_ "github.com/berth-containers/berth/api/services/images/v1"
	_ "github.com/berth-containers/berth/api/services/introspection/v1"
	_ "github.com/berth-containers/berth/api/services/leases/v1"
	_ "github.com/berth-containers/berth/api/services/namespaces/v1"
	_ "github.com/berth-containers/berth/api/services/snapshots/v1"
	_ "github.com/berth-containers/berth/api/services/tasks/v1"
	ttrpcevents "github.com/berth-containers/berth/api/services/ttrpc/events/v1"
	_ "github.com/berth-containers/berth/api/services/version/v1"
	"github.com/berth-containers/berth/api/types"
	_ "github.com/berth-containers/berth/api/types/task"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden from the generated descriptors")

// field looks up a message by full name and one of its fields by number.
func field(t *testing.T, message string, number protoreflect.FieldNumber) protoreflect.FieldDescriptor {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(message))
	if err != nil {
		t.Fatalf("message %s: %v", message, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		t.Fatalf("%s is a %T, not a message", message, d)
	}
	fd := md.Fields().ByNumber(number)
	if fd == nil {
		t.Fatalf("%s has no field %d", message, number)
	}
	return fd
}

// typeName is the kind of a field, or the full name of its message or enum.
func typeName(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return fmt.Sprintf("map<%s, %s>", typeName(fd.MapKey()), typeName(fd.MapValue()))
	case fd.Message() != nil:
		return string(fd.Message().FullName())
	case fd.Enum() != nil:
		return string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

func TestFieldNumbers(t *testing.T) {
	for _, tc := range []struct {
		message  string
		number   protoreflect.FieldNumber
		name     string
		typ      string
		repeated bool
	}{
		{"containerd.services.containers.v1.Container", 1, "id", "string", false},
		{"containerd.services.containers.v1.Container", 4, "runtime", "containerd.services.containers.v1.Container.Runtime", false},
		{"containerd.services.containers.v1.Container", 5, "spec", "google.protobuf.Any", false},
		{"containerd.services.containers.v1.Container", 6, "snapshotter", "string", false},
		{"containerd.services.containers.v1.Container", 8, "created_at", "google.protobuf.Timestamp", false},
		{"containerd.services.containers.v1.Container", 10, "extensions", "map<string, google.protobuf.Any>", false},
		{"containerd.services.images.v1.Image", 3, "target", "containerd.types.Descriptor", false},
		{"containerd.services.images.v1.Image", 7, "created_at", "google.protobuf.Timestamp", false},
		{"containerd.services.content.v1.WriteContentRequest", 1, "action", "containerd.services.content.v1.WriteAction", false},
		{"containerd.services.content.v1.WriteContentRequest", 7, "labels", "map<string, string>", false},
		{"containerd.services.tasks.v1.CreateTaskRequest", 3, "rootfs", "containerd.types.Mount", true},
		{"containerd.services.tasks.v1.CreateTaskRequest", 10, "runtime_path", "string", false},
		{"containerd.services.tasks.v1.ListTasksResponse", 1, "tasks", "containerd.v1.types.Process", true},
		{"containerd.services.diff.v1.DiffResponse", 3, "diff", "containerd.types.Descriptor", false},
		{"containerd.services.introspection.v1.Plugin", 7, "init_err", "google.rpc.Status", false},
		{"containerd.services.leases.v1.CreateRequest", 3, "labels", "map<string, string>", false},
		{"containerd.types.Descriptor", 5, "annotations", "map<string, string>", false},
		{"containerd.v1.types.Process", 4, "status", "containerd.v1.types.Status", false},
		{"containerd.v1.types.Process", 10, "exited_at", "google.protobuf.Timestamp", false},
		{"containerd.events.TaskExit", 1, "container_id", "string", false},
		{"containerd.events.TaskExit", 2, "id", "string", false},
		{"containerd.events.TaskExit", 3, "pid", "uint32", false},
		{"containerd.events.TaskExit", 4, "exit_status", "uint32", false},
		{"containerd.events.TaskExit", 5, "exited_at", "google.protobuf.Timestamp", false},
		{"containerd.events.TaskCreate", 4, "io", "containerd.events.TaskIO", false},
		{"containerd.events.TaskDelete", 5, "id", "string", false},
		{"containerd.services.images.v1.ImageCreate", 2, "labels", "map<string, string>", false},
		{"containerd.services.events.v1.Envelope", 4, "event", "google.protobuf.Any", false},
		{"containerd.services.events.ttrpc.v1.Envelope", 4, "event", "google.protobuf.Any", false},
		{"containerd.task.v2.StateResponse", 4, "status", "containerd.v1.types.Status", false},
		{"containerd.task.v2.StateResponse", 11, "exec_id", "string", false},
		{"containerd.task.v2.CreateTaskRequest", 10, "options", "google.protobuf.Any", false},
		{"containerd.task.v2.ConnectResponse", 1, "shim_pid", "uint32", false},
		{"containerd.runc.v1.Options", 6, "binary_name", "string", false},
		{"containerd.runc.v1.Options", 11, "criu_work_path", "string", false},
		{"containerd.runc.v1.ProcessDetails", 1, "exec_id", "string", false},
	} {
		fd := field(t, tc.message, tc.number)
		if string(fd.Name()) != tc.name || typeName(fd) != tc.typ || fd.IsList() != tc.repeated {
			t.Errorf("%s field %d = %s %s (repeated %v), want %s %s (repeated %v)",
				tc.message, tc.number, fd.Name(), typeName(fd), fd.IsList(), tc.name, tc.typ, tc.repeated)
		}
	}
}

func TestServices(t *testing.T) {
	for _, tc := range []struct {
		service, method, in, out   string
		clientStream, serverStream bool
	}{
		{"containerd.task.v2.Task", "Create", "containerd.task.v2.CreateTaskRequest", "containerd.task.v2.CreateTaskResponse", false, false},
		{"containerd.task.v2.Task", "Wait", "containerd.task.v2.WaitRequest", "containerd.task.v2.WaitResponse", false, false},
		{"containerd.task.v2.Task", "Shutdown", "containerd.task.v2.ShutdownRequest", "google.protobuf.Empty", false, false},
		{"containerd.services.events.ttrpc.v1.Events", "Forward", "containerd.services.events.ttrpc.v1.ForwardRequest", "google.protobuf.Empty", false, false},
		{"containerd.services.events.v1.Events", "Subscribe", "containerd.services.events.v1.SubscribeRequest", "containerd.services.events.v1.Envelope", false, true},
		{"containerd.services.content.v1.Content", "Write", "containerd.services.content.v1.WriteContentRequest", "containerd.services.content.v1.WriteContentResponse", true, true},
		{"containerd.services.containers.v1.Containers", "ListStream", "containerd.services.containers.v1.ListContainersRequest", "containerd.services.containers.v1.ListContainerMessage", false, true},
		{"containerd.services.tasks.v1.Tasks", "Wait", "containerd.services.tasks.v1.WaitRequest", "containerd.services.tasks.v1.WaitResponse", false, false},
		{"containerd.services.version.v1.Version", "Version", "google.protobuf.Empty", "containerd.services.version.v1.VersionResponse", false, false},
		{"containerd.services.introspection.v1.Introspection", "Server", "google.protobuf.Empty", "containerd.services.introspection.v1.ServerResponse", false, false},
	} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(tc.service))
		if err != nil {
			t.Errorf("service %s: %v", tc.service, err)
			continue
		}
		m := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(tc.method))
		if m == nil {
			t.Errorf("service %s has no method %s", tc.service, tc.method)
			continue
		}
		if got := string(m.Input().FullName()); got != tc.in {
			t.Errorf("%s/%s input = %s, want %s", tc.service, tc.method, got, tc.in)
		}
		if got := string(m.Output().FullName()); got != tc.out {
			t.Errorf("%s/%s output = %s, want %s", tc.service, tc.method, got, tc.out)
		}
		if m.IsStreamingClient() != tc.clientStream || m.IsStreamingServer() != tc.serverStream {
			t.Errorf("%s/%s streaming = %v/%v, want %v/%v", tc.service, tc.method,
				m.IsStreamingClient(), m.IsStreamingServer(), tc.clientStream, tc.serverStream)
		}
	}
}

// TestEncoding checks a few messages against bytes encoded by hand from
// containerd's field numbers.
func TestEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  proto.Message
		want []byte
	}{
		{
			"TaskExit",
			&events.TaskExit{ContainerId: "c", Id: "c", Pid: 7, ExitStatus: 137, ExitedAt: &timestamppb.Timestamp{Seconds: 1}},
			[]byte{0x0a, 1, 'c', 0x12, 1, 'c', 0x18, 7, 0x20, 0x89, 0x01, 0x2a, 2, 0x08, 1},
		},
		{
			"Mount",
			&types.Mount{Type: "bind", Source: "/s", Options: []string{"ro"}},
			[]byte{0x0a, 4, 'b', 'i', 'n', 'd', 0x12, 2, '/', 's', 0x22, 2, 'r', 'o'},
		},
		{
			"Container.snapshotter",
			&containers.Container{Id: "x", Snapshotter: "overlayfs"},
			append([]byte{0x0a, 1, 'x', 0x32, 9}, "overlayfs"...),
		},
		{
			"shim ConnectResponse",
			&shim.ConnectResponse{ShimPid: 1, TaskPid: 2, Version: "v"},
			[]byte{0x08, 1, 0x10, 2, 0x1a, 1, 'v'},
		},
		{
			"ttrpc Envelope",
			&ttrpcevents.Envelope{Namespace: "n", Topic: "/t"},
			[]byte{0x12, 1, 'n', 0x1a, 2, '/', 't'},
		},
		{
			"runc Options",
			&runcoptions.Options{BinaryName: "runc", SystemdCgroup: true},
			[]byte{0x32, 4, 'r', 'u', 'n', 'c', 0x48, 1},
		},
	} {
		got, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.msg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: encoded % x, want % x", tc.name, got, tc.want)
		}
	}
}

// describe renders every message, enum and service declared by our .proto
// files (those registered under "api/") as sorted lines, one per field,
// enum value and method.
func describe() string {
	var lines []string
	var msg func(md protoreflect.MessageDescriptor)
	enum := func(ed protoreflect.EnumDescriptor) {
		for i := 0; i < ed.Values().Len(); i++ {
			v := ed.Values().Get(i)
			lines = append(lines, fmt.Sprintf("enum %s %d %s", ed.FullName(), v.Number(), v.Name()))
		}
	}
	msg = func(md protoreflect.MessageDescriptor) {
		if md.IsMapEntry() {
			return
		}
		lines = append(lines, fmt.Sprintf("message %s", md.FullName()))
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			card := ""
			if fd.IsList() {
				card = "repeated "
			}
			lines = append(lines, fmt.Sprintf("field %s %d %s %s%s", md.FullName(), fd.Number(), fd.Name(), card, typeName(fd)))
		}
		for i := 0; i < md.Messages().Len(); i++ {
			msg(md.Messages().Get(i))
		}
		for i := 0; i < md.Enums().Len(); i++ {
			enum(md.Enums().Get(i))
		}
	}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(fd.Path(), "api/") {
			return true
		}
		for i := 0; i < fd.Messages().Len(); i++ {
			msg(fd.Messages().Get(i))
		}
		for i := 0; i < fd.Enums().Len(); i++ {
			enum(fd.Enums().Get(i))
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				m := sd.Methods().Get(j)
				in, out := string(m.Input().FullName()), string(m.Output().FullName())
				if m.IsStreamingClient() {
					in = "stream " + in
				}
				if m.IsStreamingServer() {
					out = "stream " + out
				}
				lines = append(lines, fmt.Sprintf("rpc %s.%s(%s) returns (%s)", sd.FullName(), m.Name(), in, out))
			}
		}
		return true
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestGolden pins the whole API surface. testdata/wire.golden was checked
// against descriptors compiled from containerd 1.6's own .proto files; a
// change here is a wire break unless containerd made the same change.
func TestGolden(t *testing.T) {
	golden := filepath.Join("testdata", "wire.golden")
	got := describe()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		seen := map[string]bool{}
		for _, l := range wl {
			seen[l] = true
		}
		for _, l := range gl {
			if !seen[l] {
				t.Errorf("not in golden: %s", l)
			}
			delete(seen, l)
		}
		for _, l := range wl {
			if seen[l] {
				t.Errorf("missing from API: %s", l)
			}
		}
	}
}

// TestDuplicateNames fails if two of our files declare the same full name;
// protobuf-go would otherwise only warn (or panic) at init time.
func TestDuplicateNames(t *testing.T) {
	seen := map[protoreflect.FullName]string{}
	var walk func(path string, md protoreflect.MessageDescriptor)
	walk = func(path string, md protoreflect.MessageDescriptor) {
		if prev, ok := seen[md.FullName()]; ok {
			t.Errorf("%s declared in %s and %s", md.FullName(), prev, path)
		}
		seen[md.FullName()] = path
		for i := 0; i < md.Messages().Len(); i++ {
			walk(path, md.Messages().Get(i))
		}
	}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if strings.HasPrefix(fd.Path(), "api/") {
			for i := 0; i < fd.Messages().Len(); i++ {
				walk(fd.Path(), fd.Messages().Get(i))
			}
		}
		return true
	})
	if len(seen) < 100 {
		t.Errorf("only %d messages registered under api/; are all packages imported?", len(seen))
	}
}
