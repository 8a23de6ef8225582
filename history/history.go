// Package history keeps the last hour of a process in fixed memory, for the status page's
// pictures: answers per pool counted into one-minute buckets, and per address the changes of
// its state (up, down, drained, disabled).
//
// Counting an answer is one atomic add (or, once a minute per pool, one compare-and-swap)
// into the current bucket: no lock, no allocation, so it runs on the query path. State
// changes are rare and noted under a mutex off the query path.
package history

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Buckets is how many one-minute buckets a pool keeps: the last hour.
const Buckets = 60

// BucketSeconds is the width of a bucket.
const BucketSeconds = 60

// Window is how far back the history goes.
const Window = Buckets * BucketSeconds * time.Second

// A bucket holds its minute (unix seconds / 60, low stampBits bits) above its count.
const (
	countBits = 40
	countMask = 1<<countBits - 1
	stampBits = 64 - countBits
	stampMask = 1<<stampBits - 1
)

// Answers counts a pool's answers per minute over the last hour.
type Answers struct {
	b [Buckets]atomic.Uint64
}

// Add counts one answer now.
func (a *Answers) Add() { a.AddAt(time.Now().Unix()) }

// AddAt counts one answer at unix second now.
func (a *Answers) AddAt(now int64) {
	if a == nil {
		return
	}
	m := uint64(now / BucketSeconds)
	b := &a.b[m%Buckets]
	stamp := (m & stampMask) << countBits
	for {
		v := b.Load()
		if v&^countMask == stamp {
			b.Add(1) // a minute's count never reaches 2^40
			return
		}
		// The bucket holds an older minute: start it anew, unless another answer just did.
		if b.CompareAndSwap(v, stamp|1) {
			return
		}
	}
}

// Counts returns the counts of the Buckets minutes ending with the one holding unix second
// now, oldest first; the last is the current, partial minute.
func (a *Answers) Counts(now int64) []uint64 {
	out := make([]uint64, Buckets)
	if a == nil {
		return out
	}
	last := uint64(now / BucketSeconds)
	for i := range Buckets {
		m := last - uint64(Buckets-1-i)
		v := a.b[m%Buckets].Load()
		if v>>countBits == m&stampMask {
			out[i] = v & countMask
		}
	}
	return out
}

// Start is the unix second the first bucket of Counts(now) starts at.
func Start(now int64) int64 {
	return (now/BucketSeconds - (Buckets - 1)) * BucketSeconds
}

// State is what an address is at some moment, as the query path sees it.
type State uint8

// The states of an address.
const (
	Up       State = iota + 1 // answered
	Down                      // not answered: its health checks fail
	Drained                   // not answered: an override (mode down) took it out
	Disabled                  // not answered: disabled in the configuration
)

var stateNames = [...]string{"unknown", "up", "down", "drained", "disabled"}

// String returns the API spelling.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// MaxChanges bounds how many changes one address keeps; older ones are forgotten (the
// state they led to stays known).
const MaxChanges = 64

// Change is an address entering a state.
type Change struct {
	At    time.Time
	State State
}

type timeline struct {
	ring []Change // at most MaxChanges, oldest at head once full
	head int
	seen uint64 // the pass that last saw the address
	at   time.Time
}

func (t *timeline) last() Change {
	if len(t.ring) < MaxChanges {
		return t.ring[len(t.ring)-1]
	}
	return t.ring[(t.head+MaxChanges-1)%MaxChanges]
}

func (t *timeline) add(c Change) {
	if len(t.ring) < MaxChanges {
		t.ring = append(t.ring, c)
		return
	}
	t.ring[t.head] = c
	t.head = (t.head + 1) % MaxChanges
}

// since returns the changes that matter from from on: the last one before from (the state
// at from, moved to from) and every later one, oldest first.
func (t *timeline) since(from time.Time) []Change {
	all := make([]Change, 0, len(t.ring))
	for i := range t.ring {
		all = append(all, t.ring[(t.head+i)%len(t.ring)])
	}
	i := 0
	for i+1 < len(all) && !all[i+1].At.After(from) {
		i++
	}
	out := slices.Clone(all[i:])
	if out[0].At.Before(from) {
		out[0].At = from
	}
	return out
}

type addrKey struct{ pool, addr string }

// Registry holds the history of a process: it outlives reloads and API writes, keyed by
// pool name and address, so a pool compiled anew keeps its pictures.
type Registry struct {
	mu      sync.Mutex
	answers map[string]*Answers
	addrs   map[addrKey]*timeline
	pass    uint64
	live    map[string]bool // the pools seen by the pass in progress
}

// NewRegistry makes an empty registry.
func NewRegistry() *Registry {
	return &Registry{answers: map[string]*Answers{}, addrs: map[addrKey]*timeline{}, live: map[string]bool{}}
}

// AnswersOf returns pool's counter, made at the first call (compile time, not the query path).
func (r *Registry) AnswersOf(pool string) *Answers {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.answers[pool]
	if a == nil {
		a = &Answers{}
		r.answers[pool] = a
	}
	return a
}

// Pass is one look at every address in force; End forgets what it did not see for an hour.
type Pass struct {
	r   *Registry
	n   uint64
	now time.Time
}

// Begin starts a pass at now; the registry is locked until End.
func (r *Registry) Begin(now time.Time) *Pass {
	r.mu.Lock()
	r.pass++
	clear(r.live)
	return &Pass{r: r, n: r.pass, now: now}
}

// Note records that addr of pool is in state st now (a change only when it differs).
func (p *Pass) Note(pool, addr string, st State) {
	t := p.r.addrs[addrKey{pool, addr}]
	if t == nil {
		t = &timeline{}
		p.r.addrs[addrKey{pool, addr}] = t
		t.add(Change{At: p.now, State: st})
	} else if t.last().State != st {
		t.add(Change{At: p.now, State: st})
	}
	t.seen, t.at = p.n, p.now
	p.r.live[pool] = true
}

// End finishes the pass: addresses not seen for a Window, and pools not seen whose counts
// are all older than a Window, are dropped, so memory stays bounded by what is configured.
func (p *Pass) End() {
	r := p.r
	defer r.mu.Unlock()
	for k, t := range r.addrs {
		if t.seen != p.n && p.now.Sub(t.at) > Window {
			delete(r.addrs, k)
		}
	}
	for name, a := range r.answers {
		if !r.live[name] && a.idle(p.now.Unix()) {
			delete(r.answers, name)
		}
	}
}

// idle reports whether no bucket of the last hour has a count.
func (a *Answers) idle(now int64) bool {
	for _, c := range a.Counts(now) {
		if c != 0 {
			return false
		}
	}
	return true
}

// Timeline returns addr of pool's changes from from on (the first is the state at from, or
// at the first look at the address when later), nil when the address was never seen.
func (r *Registry) Timeline(pool, addr string, from time.Time) []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.addrs[addrKey{pool, addr}]
	if t == nil {
		return nil
	}
	return t.since(from)
}

// Default is the process's registry: process-wide because the pictures must outlive
// reloads and API writes (a pool compiled anew keeps its hour). Its writers are control's
// blocks (each block's sampler notes its own addresses; compile takes the pools' answer
// counters); the status API reads it.
var Default = NewRegistry()
