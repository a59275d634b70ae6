package service

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	apievents "github.com/berth-containers/berth/api/events"
	eventsapi "github.com/berth-containers/berth/api/services/ttrpc/events/v1"
	"github.com/berth-containers/berth/pkg/log"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Publisher sends task events to the daemon.
type Publisher interface {
	Publish(ctx context.Context, event proto.Message)
}

// Topic is the event topic containerd gives each task event.
func Topic(event proto.Message) string {
	switch event.(type) {
	case *apievents.TaskCreate:
		return "/tasks/create"
	case *apievents.TaskStart:
		return "/tasks/start"
	case *apievents.TaskExit:
		return "/tasks/exit"
	case *apievents.TaskDelete:
		return "/tasks/delete"
	case *apievents.TaskExecAdded:
		return "/tasks/exec-added"
	case *apievents.TaskExecStarted:
		return "/tasks/exec-started"
	case *apievents.TaskPaused:
		return "/tasks/paused"
	case *apievents.TaskResumed:
		return "/tasks/resumed"
	case *apievents.TaskOOM:
		return "/tasks/oom"
	case *apievents.TaskCheckpointed:
		return "/tasks/checkpointed"
	}
	return "/tasks/unknown"
}

const (
	publishAttempts = 5
	publishTimeout  = 5 * time.Second
)

// RemotePublisher forwards events to the daemon's ttrpc events service. A
// queue and one sender goroutine keep them in order and keep a slow or
// restarting daemon from ever blocking a task operation; each event is
// retried a few times, reconnecting in between, then dropped with a log.
type RemotePublisher struct {
	address string

	mu     sync.Mutex
	queue  []*eventsapi.Envelope
	wake   chan struct{}
	closed bool
	done   chan struct{}

	client *ttrpc.Client // sender goroutine only
}

// NewRemotePublisher publishes to the ttrpc address ("unix:///path" or a
// path).
func NewRemotePublisher(address string) *RemotePublisher {
	p := &RemotePublisher{
		address: address,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go p.run()
	return p
}

// Publish queues event under the context's namespace.
func (p *RemotePublisher) Publish(ctx context.Context, event proto.Message) {
	ns, _ := namespaces.Namespace(ctx)
	a, err := typeurl.MarshalAny(event)
	if err != nil {
		log.G(ctx).WithError(err).Error("publish: marshal event")
		return
	}
	env := &eventsapi.Envelope{Timestamp: timestamppb.Now(), Namespace: ns, Topic: Topic(event), Event: a}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.queue = append(p.queue, env)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *RemotePublisher) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			closed := p.closed
			p.mu.Unlock()
			if closed {
				if p.client != nil {
					p.client.Close()
				}
				return
			}
			<-p.wake
			continue
		}
		env := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		p.send(env)
	}
}

func (p *RemotePublisher) send(env *eventsapi.Envelope) {
	var err error
	for attempt := 0; attempt < publishAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		if err = p.forward(env); err == nil {
			return
		}
		// A broken connection is dropped and redialled on the next try.
		if p.client != nil {
			p.client.Close()
			p.client = nil
		}
	}
	log.L.WithError(err).WithField("topic", env.Topic).Error("publish: dropping event")
}

func (p *RemotePublisher) forward(env *eventsapi.Envelope) error {
	if p.address == "" {
		return fmt.Errorf("no events address")
	}
	if p.client == nil {
		// A unix connect does not wait, so no timeout is needed; DialUnix
		// keeps net's DNS resolver out of the shim (see canConnect).
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: strings.TrimPrefix(p.address, "unix://"), Net: "unix"})
		if err != nil {
			return fmt.Errorf("dial events service: %w", err)
		}
		p.client = ttrpc.NewClient(conn)
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), env.Namespace), publishTimeout)
	defer cancel()
	_, err := eventsapi.NewEventsClient(p.client).Forward(ctx, &eventsapi.ForwardRequest{Envelope: env})
	if err != nil {
		return fmt.Errorf("forward %s: %w", env.Topic, err)
	}
	return nil
}

// Close sends what is queued, waiting at most timeout, and stops.
func (p *RemotePublisher) Close(timeout time.Duration) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
	}
}
