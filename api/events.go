package api

import (
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// Event is something an operator wants to know happened.
type Event struct {
	ID       uint64    `json:"id"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"` // health, failover, failopen, mode, pin, reload, config
	Domain   string    `json:"domain,omitempty"`
	Resource string    `json:"resource,omitempty"` // config: "pools/eu"
	Action   string    `json:"action,omitempty"`   // config: create, update, delete
	Client   string    `json:"client,omitempty"`   // config: the API client's address
	Token    string    `json:"token,omitempty"`    // config, mode, pin, failback: the NAME of the token that acted
	Pool     string    `json:"pool,omitempty"`
	Address  string    `json:"address,omitempty"`
	// CheckAddress: a health event of an address whose probes go to its check_address.
	CheckAddress string `json:"check_address,omitempty"`
	Healthy      *bool  `json:"healthy,omitempty"`
	Message      string `json:"message"`
}

// Events is a bounded ring of events with increasing ids. Events are rare (health changes,
// failovers, overrides), so a mutex is fine.
type Events struct {
	mu    sync.Mutex
	ring  []Event
	next  uint64 // id of the next event
	epoch uint64 // id of the first
	head  int    // index of the oldest event once the ring is full
}

// NewEvents makes a ring holding the last size events. Ids start at the process's start
// time in microseconds, so they keep growing across restarts: a follower asking for
// ?since=ID of an earlier process sees every event of the new one (and the epoch tells it
// that the process changed).
func NewEvents(size int) *Events {
	first := uint64(time.Now().UnixMicro())
	return &Events{ring: make([]Event, 0, max(size, 1)), next: first, epoch: first}
}

// Epoch is the id of the ring's first event.
func (ev *Events) Epoch() uint64 { return ev.epoch }

// DefaultEvents is the process's ring; it outlives reloads.
var DefaultEvents = NewEvents(1000)

// Add records e, stamping id and time (unless set), and returns the id.
func (ev *Events) Add(e Event) uint64 {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	e.ID = ev.next
	ev.next++
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Message = capMessage(e.Message)
	if len(ev.ring) < cap(ev.ring) {
		ev.ring = append(ev.ring, e)
	} else {
		ev.ring[ev.head] = e
		ev.head = (ev.head + 1) % len(ev.ring)
	}
	ev.notify(e)
	return e.ID
}

// Since returns the events with ids above id that are still in the ring, oldest first.
func (ev *Events) Since(id uint64) []Event {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := make([]Event, 0)
	for i := range ev.ring {
		e := ev.ring[(ev.head+i)%len(ev.ring)]
		if e.ID > id {
			out = append(out, e)
		}
	}
	return out
}

// Last returns the id of the newest event, Epoch()-1 if none.
func (ev *Events) Last() uint64 {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.next - 1
}

// maxEventMessage bounds an event's message: the ring holds 1000 of them, the page and
// webhooks carry them, and a message quoting a huge value must not make them huge.
const maxEventMessage = 4 << 10

// capMessage cuts m to maxEventMessage bytes (on a rune boundary), saying how much was cut.
func capMessage(m string) string {
	if len(m) <= maxEventMessage {
		return m
	}
	i := maxEventMessage
	for i > 0 && !utf8.RuneStart(m[i]) {
		i--
	}
	return m[:i] + fmt.Sprintf("…(%d bytes cut)", len(m)-i)
}
