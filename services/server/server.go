// Package server assembles berthd: it reads the config, guards the root
// with a lock, opens the sockets, loads the plugins in dependency order and
// serves their gRPC and ttrpc services until Stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/berth-containers/berth/events"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/plugin"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// streamGrace is how long Stop lets streams finish on their own before it
// cancels them; subscriptions never finish, transfers usually do by then.
const streamGrace = 500 * time.Millisecond

// grpcService is implemented by plugins that serve a gRPC API.
type grpcService interface {
	Register(*grpc.Server) error
}

// ttrpcService is implemented by plugins that serve a ttrpc API.
type ttrpcService interface {
	RegisterTTRPC(*ttrpc.Server) error
}

// Server is a running berthd.
type Server struct {
	config  *Config
	uuid    string
	lock    *os.File
	events  *events.Exchange
	plugins *plugin.Set

	grpc   *grpc.Server
	ttrpc  *ttrpc.Server
	health *health.Server
	debug  *http.Server
	// debugMetrics serves the server's gauges on the debug socket.
	debugMetrics *debugMetrics
	// mem gives memory back to the OS after bursts of calls (memory.go);
	// memRunning once its goroutine runs.
	mem        *memReleaser
	memRunning bool

	grpcL, ttrpcL, debugL net.Listener

	// baseCtx outlives New's ctx: ttrpc derives request contexts from it.
	baseCtx context.Context
	// stopping is cancelled to end streams that outlast the grace period.
	stopping    context.Context
	stopStreams context.CancelFunc

	stopOnce sync.Once
	stopErr  error
}

// New prepares a server: directories, root lock, UUID, sockets, plugins and
// their services. Nothing is served until Serve. On error everything taken
// so far is given back.
func New(ctx context.Context, config *Config) (_ *Server, retErr error) {
	if err := config.Validate(); err != nil {
		return nil, err
	}
	for _, dir := range []string{config.Root, config.State} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		// MkdirAll keeps an existing folder's mode; others must not list
		// what is inside, only reach paths they are told.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, fmt.Errorf("chmod %s: %w", dir, err)
		}
	}
	s := &Server{config: config, baseCtx: context.WithoutCancel(ctx), mem: newMemReleaser()}
	s.stopping, s.stopStreams = context.WithCancel(context.Background())
	defer func() {
		if retErr != nil {
			s.release(ctx)
		}
	}()

	var err error
	if s.lock, err = lockRoot(config.Root); err != nil {
		return nil, err
	}
	if s.uuid, err = loadUUID(config.Root); err != nil {
		return nil, err
	}
	if s.grpcL, err = listenUnix(config.GRPC.Address, config.GRPC.UID, config.GRPC.GID); err != nil {
		return nil, fmt.Errorf("grpc: %w", err)
	}
	if s.ttrpcL, err = listenUnix(config.TTRPCAddress(), config.TTRPC.UID, config.TTRPC.GID); err != nil {
		return nil, fmt.Errorf("ttrpc: %w", err)
	}
	if config.Debug.Address != "" {
		if s.debugL, err = listenUnix(config.Debug.Address, config.Debug.UID, config.Debug.GID); err != nil {
			return nil, fmt.Errorf("debug: %w", err)
		}
		s.debug, s.debugMetrics = newDebugServer()
	}

	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(orDefault(config.GRPC.MaxRecvMsgSize, DefaultMaxMsgSize)),
		grpc.MaxSendMsgSize(orDefault(config.GRPC.MaxSendMsgSize, DefaultMaxMsgSize)),
		// Fixed windows turn off gRPC's bandwidth-delay probing, which
		// answered each request's data with a window update and a PING
		// the client had to wake up for and acknowledge (two frames and
		// a wake-up on each side for every call). 4 MiB per stream keeps
		// a client's pipelined content writes (4 x 1 MiB) flowing; the
		// connection's window bounds what one client can make us buffer.
		grpc.InitialWindowSize(4<<20),
		grpc.InitialConnWindowSize(16<<20),
		grpc.ChainUnaryInterceptor(s.mem.unary, unaryLog, unaryRecover),
		grpc.ChainStreamInterceptor(s.mem.stream, streamLog, streamRecover, streamStopper(s.stopping)),
	)
	if s.ttrpc, err = ttrpc.NewServer(ttrpc.WithChainUnaryServerInterceptor(s.mem.ttrpc, ttrpcLog, ttrpcRecover)); err != nil {
		return nil, fmt.Errorf("create ttrpc server: %w", err)
	}
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)

	ordered, err := plugin.Graph(plugin.Disabled(config.DisabledPlugins))
	if err != nil {
		return nil, err
	}
	s.events = events.NewExchange()
	s.plugins = plugin.Load(ctx, ordered, plugin.LoadOptions{
		Root:         config.Root,
		State:        config.State,
		Address:      socketPath(config.GRPC.Address),
		TTRPCAddress: socketPath(config.TTRPCAddress()),
		UUID:         s.uuid,
		Events:       s.events,
		Config: func(r *plugin.Registration) (interface{}, error) {
			return config.DecodePlugin(ctx, r)
		},
	})
	if s.debugMetrics != nil {
		s.debugMetrics.bind(newServerMetrics(s.plugins, socketPath(config.GRPC.Address)))
	}
	for _, p := range s.plugins.All() {
		inst, err := p.Instance()
		if err != nil {
			continue
		}
		if svc, ok := inst.(grpcService); ok {
			if err := svc.Register(s.grpc); err != nil {
				return nil, fmt.Errorf("register gRPC service of %s: %w", p.Registration.URI(), err)
			}
		}
		if svc, ok := inst.(ttrpcService); ok {
			if err := svc.RegisterTTRPC(s.ttrpc); err != nil {
				return nil, fmt.Errorf("register ttrpc service of %s: %w", p.Registration.URI(), err)
			}
		}
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	// Plugin init leaves garbage and free heap pages too; release them
	// as after any burst of calls.
	go s.mem.run(s.baseCtx)
	s.memRunning = true
	s.mem.touch()
	return s, nil
}

// Serve serves the gRPC, ttrpc and debug sockets. It returns nil once Stop
// has closed them, or the first error that ended a listener (the caller
// should then Stop).
func (s *Server) Serve() error {
	errc := make(chan error, 3)
	n := 0
	serve := func(f func() error) {
		n++
		go func() { errc <- f() }()
	}
	serve(func() error {
		if err := s.grpc.Serve(s.grpcL); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve gRPC on %s: %w", s.config.GRPC.Address, err)
		}
		return nil
	})
	serve(func() error {
		if err := s.ttrpc.Serve(s.baseCtx, s.ttrpcL); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
			return fmt.Errorf("serve ttrpc on %s: %w", s.config.TTRPCAddress(), err)
		}
		return nil
	})
	if s.debug != nil {
		serve(func() error { return serveDebug(s.debug, s.debugL) })
	}
	log.G(s.baseCtx).WithField("address", s.config.GRPC.Address).Info("serving")
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

// Stop shuts down gracefully: health turns NOT_SERVING, no new calls are
// accepted, calls in flight finish (streams are cancelled after a short
// grace), plugins that are io.Closers are closed in reverse init order, the
// sockets are removed and the root lock released. When ctx ends first the
// remaining calls are cut off. Stop is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	s.health.Shutdown()
	var errs []error
	if s.debug != nil {
		s.debug.Close()
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.grpc.GracefulStop() }()
	go func() {
		defer wg.Done()
		if err := s.ttrpc.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("shutdown ttrpc: %w", err))
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	grace := time.NewTimer(streamGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		s.stopStreams()
		select {
		case <-done:
		case <-ctx.Done():
			log.G(ctx).Warn("graceful stop timed out; closing remaining connections")
			s.grpc.Stop()
			s.ttrpc.Close()
			<-done
		}
	case <-ctx.Done():
		s.grpc.Stop()
		s.ttrpc.Close()
		<-done
	}
	s.stopStreams()
	// Whatever the graceful path left (a ttrpc connection still busy when
	// ctx ended) is cut now; both calls are no-ops on a stopped server.
	s.grpc.Stop()
	s.ttrpc.Close()

	errs = append(errs, s.release(ctx))
	return errors.Join(errs...)
}

// release closes plugins, listeners and the lock; New uses it to undo a
// half-built server.
func (s *Server) release(ctx context.Context) error {
	var errs []error
	if s.memRunning {
		s.mem.close()
		s.memRunning = false
	}
	if s.plugins != nil {
		all := s.plugins.All()
		for i := len(all) - 1; i >= 0; i-- {
			inst, err := all[i].Instance()
			if err != nil {
				continue
			}
			if c, ok := inst.(io.Closer); ok {
				if err := c.Close(); err != nil {
					log.G(ctx).WithError(err).WithField("plugin", all[i].Registration.URI()).Warn("close plugin")
					errs = append(errs, fmt.Errorf("close %s: %w", all[i].Registration.URI(), err))
				}
			}
		}
	}
	for _, l := range []net.Listener{s.grpcL, s.ttrpcL, s.debugL} {
		if l != nil {
			// Close unlinks the socket. Only sockets this server listened
			// on are removed: a failed New leaves another daemon's alone.
			l.Close()
		}
	}
	if err := unlockRoot(s.lock); err != nil {
		errs = append(errs, fmt.Errorf("unlock root: %w", err))
	}
	s.lock = nil
	return errors.Join(errs...)
}

// orDefault reads an unset (zero) size as the default rather than as a
// limit of zero bytes.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Plugins returns every plugin with its instance or init error, in init
// order, for introspection.
func (s *Server) Plugins() []*plugin.Plugin { return s.plugins.All() }

// UUID is this daemon instance's persistent id.
func (s *Server) UUID() string { return s.uuid }

// Events is the daemon's event exchange.
func (s *Server) Events() *events.Exchange { return s.events }

// Config is the config the server was built from.
func (s *Server) Config() *Config { return s.config }
