package process

import (
	"sync"

	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
)

// Tracker routes the exits the reaper reports to the processes they belong
// to, one at a time and in order, on its own goroutine.
//
// A process's pid is only known once runc returns, and a short-lived exec
// can exit before that. So a start is bracketed: Starting before runc runs,
// the returned func once the pid is known (and the start event published).
// While any start is in flight, exits are held; when the last start ends
// they are routed, now that the new pids are registered. Holding every exit,
// not only unknown ones, also keeps a process's exit event behind its start
// event.
type Tracker struct {
	m      *reaper.Monitor
	sub    <-chan reaper.Exit
	onExit func(Process, reaper.Exit)
	kick   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	procs    map[int]Process
	starting int
	held     []reaper.Exit
}

// NewTracker subscribes to m's exits. onExit, if set, runs after a
// process's exit is recorded (the shim publishes the exit event there).
func NewTracker(m *reaper.Monitor, onExit func(Process, reaper.Exit)) *Tracker {
	t := &Tracker{
		m:      m,
		sub:    m.Subscribe(),
		onExit: onExit,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		procs:  map[int]Process{},
	}
	go t.run()
	return t
}

func (t *Tracker) run() {
	defer close(t.done)
	for {
		select {
		case e, ok := <-t.sub:
			if !ok {
				return
			}
			t.mu.Lock()
			t.held = append(t.held, e)
			t.mu.Unlock()
		case <-t.kick:
		}
		t.route()
	}
}

type routed struct {
	p Process
	e reaper.Exit
}

func (t *Tracker) route() {
	t.mu.Lock()
	if t.starting > 0 {
		t.mu.Unlock()
		return
	}
	var out []routed
	for _, e := range t.held {
		// Exits of pids nobody registered are orphans the shim reaped.
		if p, ok := t.procs[e.Pid]; ok {
			delete(t.procs, e.Pid)
			out = append(out, routed{p, e})
		}
	}
	t.held = t.held[:0]
	t.mu.Unlock()
	for _, r := range out {
		if exited(r.p) {
			// Its exit is known (a reused pid, or a second report).
			continue
		}
		r.p.SetExited(r.e.Status, r.e.Timestamp)
		if t.onExit != nil {
			t.onExit(r.p, r.e)
		}
	}
}

// Starting announces a process start (runc create, start or exec) and
// returns the function to call when it is over: with the process, whose
// Pid is then known, or with nil if it failed.
func (t *Tracker) Starting() (started func(Process)) {
	t.mu.Lock()
	t.starting++
	t.mu.Unlock()
	var once sync.Once
	return func(p Process) {
		once.Do(func() { t.started(p) })
	}
}

func (t *Tracker) started(p Process) {
	t.mu.Lock()
	t.starting--
	// An exited process is not registered again: its pid may be reused.
	if p != nil && !exited(p) {
		if pid := p.Pid(); pid > 0 {
			t.procs[pid] = p
		}
	}
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Close stops routing.
func (t *Tracker) Close() {
	t.m.Unsubscribe(t.sub)
	<-t.done
}

func exited(p Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}
