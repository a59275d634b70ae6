package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/plugin"
	"github.com/containerd/ttrpc"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Test plugins, registered once for every server the tests start.
const testService = "berth.test.Test"

var closes = struct {
	sync.Mutex
	byRoot map[string][]string
}{byRoot: map[string][]string{}}

type closer struct{ root, id string }

func (c *closer) Close() error {
	closes.Lock()
	defer closes.Unlock()
	closes.byRoot[c.root] = append(closes.byRoot[c.root], c.id)
	return nil
}

type svc struct{}

func unary(name string, f func(context.Context) error) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, ic grpc.UnaryServerInterceptor) (interface{}, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, _ interface{}) (interface{}, error) { return &emptypb.Empty{}, f(ctx) }
		if ic == nil {
			return h(ctx, in)
		}
		return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + testService + "/" + name}, h)
	}}
}

var testDesc = grpc.ServiceDesc{
	ServiceName: testService,
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{
		unary("Panic", func(context.Context) error { panic("boom") }),
		unary("NotFound", func(context.Context) error { return fmt.Errorf("thing %q: %w", "x", errdefs.ErrNotFound) }),
		unary("Slow", func(context.Context) error { time.Sleep(200 * time.Millisecond); return nil }),
	},
	Streams: []grpc.StreamDesc{{StreamName: "Wait", ServerStreams: true, Handler: func(_ interface{}, ss grpc.ServerStream) error {
		// Like an events subscription: ends only with its context.
		<-ss.Context().Done()
		return ss.Context().Err()
	}}},
}

func (svc) Register(s *grpc.Server) error { s.RegisterService(&testDesc, svc{}); return nil }

func (svc) RegisterTTRPC(s *ttrpc.Server) error {
	s.RegisterService(testService, &ttrpc.ServiceDesc{Methods: map[string]ttrpc.Method{
		"Panic": func(context.Context, func(interface{}) error) (interface{}, error) { panic("ttrpc boom") },
	}})
	return nil
}

func init() {
	plugin.Register(testConfigReg)
	plugin.Register(&plugin.Registration{Type: plugin.GRPCPlugin, ID: "servertest", InitFn: func(*plugin.InitContext) (interface{}, error) {
		return svc{}, nil
	}})
	plugin.Register(&plugin.Registration{Type: plugin.MetadataPlugin, ID: "servertest-first", InitFn: func(ic *plugin.InitContext) (interface{}, error) {
		return &closer{root: filepath.Dir(ic.Root), id: "first"}, nil
	}})
	plugin.Register(&plugin.Registration{Type: plugin.ServicePlugin, ID: "servertest-second", Requires: []plugin.Type{plugin.MetadataPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			return &closer{root: filepath.Dir(ic.Root), id: "second"}, nil
		}})
	plugin.Register(&plugin.Registration{Type: plugin.SnapshotPlugin, ID: "servertest-broken", InitFn: func(*plugin.InitContext) (interface{}, error) {
		return nil, errors.New("no such file system")
	}})
}

func testConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	c := DefaultConfig()
	c.Root = filepath.Join(dir, "root")
	c.State = filepath.Join(dir, "state")
	c.GRPC.Address = filepath.Join(dir, "state", "berth.sock")
	return c
}

// start runs a server and stops it when the test ends.
func start(t *testing.T, c *Config) *Server {
	t.Helper()
	s, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
		if err := <-serveErr; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, address string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func call(ctx context.Context, conn *grpc.ClientConn, method string) error {
	return conn.Invoke(ctx, "/"+testService+"/"+method, &emptypb.Empty{}, &emptypb.Empty{})
}

func TestServerServes(t *testing.T) {
	c := testConfig(t)
	s := start(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := dial(t, c.GRPC.Address)

	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}

	for _, p := range []string{c.GRPC.Address, c.TTRPCAddress()} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket %s: %v %v", p, fi.Mode(), err)
		}
	}
	for _, d := range []string{c.Root, c.State} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o711 {
			t.Errorf("dir %s: %v", d, err)
		}
	}

	// A panicking handler fails its call, not the daemon.
	if err := call(ctx, conn, "Panic"); status.Code(err) != codes.Internal {
		t.Fatalf("panic call: %v", err)
	}
	// Error kinds travel as codes even if a handler forgot to convert.
	err = call(ctx, conn, "NotFound")
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `thing "x"`) {
		t.Fatalf("not found call: %v", err)
	}

	tconn, err := net.Dial("unix", c.TTRPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	tc := ttrpc.NewClient(tconn)
	defer tc.Close()
	if err := tc.Call(ctx, testService, "Panic", &emptypb.Empty{}, &emptypb.Empty{}); status.Code(err) != codes.Internal {
		t.Fatalf("ttrpc panic call: %v", err)
	}
	if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after panics: %v %v", resp, err)
	}

	// Introspection sees every plugin, failures included.
	found := map[string]error{}
	for _, p := range s.Plugins() {
		found[p.Registration.ID] = p.Err()
	}
	if err, ok := found["servertest-broken"]; !ok || err == nil {
		t.Errorf("broken plugin: %v %v", ok, err)
	}
	if err, ok := found["servertest"]; !ok || err != nil {
		t.Errorf("grpc plugin: %v %v", ok, err)
	}

	id := s.UUID()
	if !uuidRe.MatchString(id) {
		t.Fatalf("uuid %q", id)
	}
	data, _ := os.ReadFile(filepath.Join(c.Root, "uuid"))
	if strings.TrimSpace(string(data)) != id {
		t.Fatalf("uuid file %q != %q", data, id)
	}
}

func TestSecondServerOnRootFails(t *testing.T) {
	c := testConfig(t)
	start(t, c)

	c2 := *c
	c2.GRPC.Address = filepath.Join(filepath.Dir(c.GRPC.Address), "other.sock")
	_, err := New(context.Background(), &c2)
	if err == nil || !strings.Contains(err.Error(), "another berthd is running with root "+c.Root) {
		t.Fatalf("second server: %v", err)
	}
	// The failed start left the first one's sockets alone.
	if _, err := os.Stat(c.GRPC.Address); err != nil {
		t.Fatal(err)
	}

	// Another root on the same socket: the socket answers, so it is in use.
	c3 := *c
	c3.Root = filepath.Join(t.TempDir(), "root3")
	_, err = New(context.Background(), &c3)
	if err == nil || !strings.Contains(err.Error(), "address "+c.GRPC.Address+" is in use") {
		t.Fatalf("same address: %v", err)
	}
	if _, err := os.Stat(c.GRPC.Address); err != nil {
		t.Fatal(err)
	}
}

func TestStopRemovesSocketsAndReleasesRoot(t *testing.T) {
	c := testConfig(t)
	s, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve() }()

	conn := dial(t, c.GRPC.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call(ctx, conn, "NotFound"); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	// An in-flight call finishes; an endless stream is cut at Stop.
	stream, err := conn.NewStream(ctx, &testDesc.Streams[0], "/"+testService+"/Wait")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	slow := make(chan error, 1)
	go func() { slow <- call(ctx, conn, "Slow") }()
	time.Sleep(50 * time.Millisecond)

	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := <-slow; err != nil {
		t.Fatalf("in-flight call cut off: %v", err)
	}
	if err := stream.RecvMsg(&emptypb.Empty{}); err == nil {
		t.Fatal("stream still open")
	}
	if err := <-serveErr; err != nil {
		t.Fatalf("serve: %v", err)
	}
	for _, p := range []string{c.GRPC.Address, c.TTRPCAddress()} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("socket %s left behind: %v", p, err)
		}
	}
	closes.Lock()
	order := strings.Join(closes.byRoot[c.Root], ",")
	closes.Unlock()
	if order != "second,first" {
		t.Errorf("plugins closed in order %q", order)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// The root is free again, and the UUID survives the restart.
	id := s.UUID()
	s2 := start(t, c)
	if s2.UUID() != id {
		t.Fatalf("uuid changed across restart: %s -> %s", id, s2.UUID())
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	c := testConfig(t)
	if err := os.MkdirAll(c.State, 0o711); err != nil {
		t.Fatal(err)
	}
	// A crashed daemon leaves its socket file behind, with nobody listening.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.GRPC.Address, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(c.GRPC.Address); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	conn := dial(t, c.GRPC.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestNonSocketAtAddressIsKept(t *testing.T) {
	c := testConfig(t)
	if err := os.MkdirAll(c.State, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.GRPC.Address, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), c); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("err %v", err)
	}
	if data, _ := os.ReadFile(c.GRPC.Address); string(data) != "data" {
		t.Fatal("file replaced")
	}
	// The failed start released the root.
	c.GRPC.Address += "2"
	start(t, c)
}

func TestDisabledPlugins(t *testing.T) {
	c := testConfig(t)
	c.DisabledPlugins = []string{"io.containerd.grpc.v1.servertest", "servertest-broken"}
	s := start(t, c)
	for _, p := range s.Plugins() {
		if id := p.Registration.ID; id == "servertest" || id == "servertest-broken" {
			t.Errorf("disabled plugin %s loaded", id)
		}
	}
	conn := dial(t, c.GRPC.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call(ctx, conn, "NotFound"); status.Code(err) != codes.Unimplemented {
		t.Fatalf("disabled service answered: %v", err)
	}
}

func TestDebugSocket(t *testing.T) {
	c := testConfig(t)
	c.Debug.Address = filepath.Join(c.State, "debug.sock")
	start(t, c)
	conn, err := net.Dial("unix", c.Debug.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /debug/vars HTTP/1.0\r\n\r\n")
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.0 200") {
		t.Fatalf("debug answer %q", buf[:n])
	}
}

func TestMain(m *testing.M) {
	// Panics and plugin failures are logged on purpose here; keep the
	// output readable unless asked for.
	flag.Parse()
	if !testing.Verbose() {
		logrus.SetOutput(io.Discard)
	}
	os.Exit(m.Run())
}
