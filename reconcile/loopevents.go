package reconcile

import (
	"sync"
	"time"
)

// LoopEvent is what the loop tells its subscribers (the dashboard's live
// updates): every notification it sends (apply, failure, rollback, held,
// drift, waiting, backup), the end of every pass ("pass", Message the
// result) and of every job ("job"). Messages are the notifications' own,
// which carry no secret.
type LoopEvent struct {
	Kind     string    `json:"kind"`
	Server   string    `json:"server,omitempty"`
	Version  string    `json:"version,omitempty"`
	Revision string    `json:"revision,omitempty"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
}

// MaxSubscribers bounds Subscribe: past it, Subscribe refuses.
const MaxSubscribers = 256

// events fans the loop's events out to subscribers. Publishing never
// blocks: a subscriber whose buffer is full is dropped (its channel is
// closed), so a slow client cannot hold the loop up.
type events struct {
	mu   sync.Mutex
	subs map[chan LoopEvent]struct{}
}

// Subscribe returns a channel of the loop's events, buffered for buf of
// them (at least 1), and a function that ends the subscription. The channel
// is closed when the subscriber falls buf events behind, or when cancel is
// called; ok is false when MaxSubscribers are subscribed already.
func (l *Loop) Subscribe(buf int) (ch <-chan LoopEvent, cancel func(), ok bool) {
	e := &l.events
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) >= MaxSubscribers {
		return nil, func() {}, false
	}
	if e.subs == nil {
		e.subs = map[chan LoopEvent]struct{}{}
	}
	c := make(chan LoopEvent, max(buf, 1))
	e.subs[c] = struct{}{}
	return c, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[c]; ok {
			delete(e.subs, c)
			close(c)
		}
	}, true
}

// Subscribers is how many subscribers the loop has.
func (l *Loop) Subscribers() int {
	l.events.mu.Lock()
	defer l.events.mu.Unlock()
	return len(l.events.subs)
}

// publish sends ev to every subscriber without blocking.
func (l *Loop) publish(ev LoopEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e := &l.events
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.subs {
		select {
		case c <- ev:
		default:
			delete(e.subs, c)
			close(c)
		}
	}
}
