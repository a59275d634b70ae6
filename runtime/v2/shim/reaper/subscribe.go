package reaper

import "sync"

// subscriber buffers exits without bound so the reap loop never blocks on a
// slow reader: a blocked loop would stall every runc invocation, whose exits
// it also routes, and the reader may itself be waiting on one of those.
type subscriber struct {
	ch   chan Exit
	mu   sync.Mutex
	q    []Exit
	wake chan struct{}
	done chan struct{}
}

func (s *subscriber) push(e Exit) {
	s.mu.Lock()
	s.q = append(s.q, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump moves queued exits to the channel in order.
func (s *subscriber) pump() {
	defer close(s.ch)
	for {
		s.mu.Lock()
		q := s.q
		s.q = nil
		s.mu.Unlock()
		for _, e := range q {
			select {
			case s.ch <- e:
			case <-s.done:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}

// Subscribe returns a channel of every exit not claimed by Start: the
// container processes re-parented to this process. Subscribe before starting
// anything whose exit you need.
func (m *Monitor) Subscribe() <-chan Exit {
	m.start()
	s := &subscriber{
		ch:   make(chan Exit),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	m.mu.Lock()
	m.subs[s.ch] = s
	m.mu.Unlock()
	go s.pump()
	return s.ch
}

// Unsubscribe stops delivery to ch and closes it.
func (m *Monitor) Unsubscribe(ch <-chan Exit) {
	m.mu.Lock()
	s, ok := m.subs[ch]
	delete(m.subs, ch)
	m.mu.Unlock()
	if ok {
		close(s.done)
	}
}
