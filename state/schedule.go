package state

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// Timed overrides: a mode, pool mode or pin may carry a window (from, until). The cells the
// query path reads are computed for the clock's now whenever the state changes, and one
// timer, set for the next start or end of any window, computes them again then: no query
// compares times, and nothing polls. At its end an override is deleted from the state
// through a conditional commit (so in a fleet it is deleted once: the nodes that lose the
// race get ErrConflict, which is the expected outcome, not a failure).

// Window is when a timed override is in force: from From (zero: at once) until Until (zero:
// until it is cleared).
type Window struct {
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Active reports whether the override is in force at now.
func (w Window) Active(now time.Time) bool { return !w.Scheduled(now) && !w.Expired(now) }

// Scheduled reports whether the window starts after now.
func (w Window) Scheduled(now time.Time) bool { return !w.From.IsZero() && now.Before(w.From) }

// Expired reports whether the window ended at or before now.
func (w Window) Expired(now time.Time) bool { return !w.Until.IsZero() && !now.Before(w.Until) }

// Timed reports whether the window has a start or an end.
func (w Window) Timed() bool { return !w.From.IsZero() || !w.Until.IsZero() }

// next returns the earlier of next (zero: none) and w's first start or end after now.
func (w Window) next(now, next time.Time) time.Time {
	for _, t := range []time.Time{w.From, w.Until} {
		if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

func (w Window) utc() Window {
	if !w.From.IsZero() {
		w.From = w.From.UTC()
	}
	if !w.Until.IsZero() {
		w.Until = w.Until.UTC()
	}
	return w
}

// WindowOf returns the window of an override key's value; false for keys that are not
// overrides (or values that are not JSON objects).
func WindowOf(key string, value []byte) (Window, bool) {
	if !IsOverride(key) {
		return Window{}, false
	}
	var v struct{ Window }
	if json.Unmarshal(value, &v) != nil {
		return Window{}, false
	}
	return v.Window, true
}

// IsOverride reports whether key is a mode, pool mode or pin.
func IsOverride(key string) bool {
	return strings.HasPrefix(key, ModesPrefix) || strings.HasPrefix(key, PoolModesPrefix) || strings.HasPrefix(key, PinsPrefix)
}

// Clock is the time source of the schedule (a fake one in tests).
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call of Clock.AfterFunc.
type Timer interface{ Stop() bool }

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

// OpenWithClock is Open with the schedule of timed overrides on clock.
func OpenWithClock(ctx context.Context, be Backend, clock Clock) (*Store, error) {
	d, err := be.Load(ctx)
	if err != nil {
		return nil, err
	}
	return openWith(be, d, clock)
}

// Change is a timed override that started or ended by itself.
type Change struct {
	Key    string // the state key: modes/POOL/ADDRESS, poolmodes/POOL or pins/DOMAIN
	Action string // "started" or "expired"
	Value  []byte // its value (mode or pool, and window)
}

// retryDelay spaces out the deletes of ended overrides that failed (a partitioned node;
// another node's delete not yet seen): the cells are already right, only the key is left.
const retryDelay = time.Second

// maxQueued bounds the changes kept until OnChange is set.
const maxQueued = 256

// schedule is the Store's timer; its fields are guarded by Store.mu.
type schedule struct {
	clock   Clock
	timer   Timer
	at      time.Time        // when timer fires (zero: no timer)
	last    time.Time        // the time the cells were last computed for: starts after it are news
	retryAt time.Time        // ended overrides left in the state are deleted again from then
	told    map[string]int64 // ended overrides announced, by key and revision (announce once)
	notify  func(Change)
	pending []Change // to tell once s.mu is released (flush)
	queued  []Change // told before notify was set
}

// OnChange sets the function told about timed overrides that start or end; changes before
// it was set (an override that ended while the process was down) are given to it at once.
func (s *Store) OnChange(fn func(Change)) {
	s.mu.Lock()
	q := s.sched.queued
	s.sched.queued, s.sched.notify = nil, fn
	s.mu.Unlock()
	for _, c := range q {
		fn(c)
	}
}

// arm sets the timer for next or, with expired, for the delete of ended overrides still in
// the state; s.mu held (install calls it).
func (sc *schedule) arm(s *Store, now, next time.Time, expired bool) {
	if expired {
		at := now
		if sc.retryAt.After(now) {
			at = sc.retryAt
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if sc.timer != nil && next.Equal(sc.at) {
		return
	}
	if sc.timer != nil {
		sc.timer.Stop()
		sc.timer = nil
	}
	sc.at = next
	if !next.IsZero() {
		sc.timer = sc.clock.AfterFunc(next.Sub(now), s.tick)
	}
}

// tick runs at a window's start or end: the cells are computed for now, the changes told,
// and ended overrides deleted.
func (s *Store) tick() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	sc := &s.sched
	now := sc.clock.Now()
	d := s.data
	var dels []Op
	for k, e := range d.Entries {
		w, ok := WindowOf(k, e.Value)
		switch {
		case !ok:
		case w.Expired(now):
			dels = append(dels, Op{Key: k, Check: true, Revision: e.Revision})
			if sc.told[k] != e.Revision {
				if sc.told == nil {
					sc.told = map[string]int64{}
				}
				sc.told[k] = e.Revision
				sc.pending = append(sc.pending, Change{Key: k, Action: "expired", Value: e.Value})
			}
		case !w.From.IsZero() && w.From.After(sc.last) && !now.Before(w.From):
			sc.pending = append(sc.pending, Change{Key: k, Action: "started", Value: e.Value})
		}
	}
	sc.last = now
	sc.timer, sc.at = nil, time.Time{} // this one fired
	s.install(d)
	s.mu.Unlock()

	failed := false
	for _, op := range dels {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.Commit(ctx, []Op{op})
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, ErrConflict):
			// Another node deleted (or rewrote) it first; its change reaches us by watch.
			failed = true
		default:
			failed = true
			log.Printf("[WARNING] plugin/gtm: timed override %s ended and is out of force, but could not be deleted from the state: %v (retrying)", op.Key, err)
		}
	}
	s.mu.Lock()
	for k := range sc.told {
		if _, ok := s.data.Entries[k]; !ok {
			delete(sc.told, k)
		}
	}
	if failed {
		sc.retryAt = sc.clock.Now().Add(retryDelay)
		s.install(s.data)
	}
	s.mu.Unlock()
	s.flush()
}

// noteGone records, in install, the ended overrides that vanished from the state without
// this process's timer telling of them (another node deleted them first); s.mu held.
func (sc *schedule) noteGone(old, d *Data, now time.Time) {
	if old == nil {
		return
	}
	for k, e := range old.Entries {
		if _, ok := d.Entries[k]; ok || sc.told[k] == e.Revision {
			continue
		}
		if w, ok := WindowOf(k, e.Value); ok && w.Expired(now) {
			sc.pending = append(sc.pending, Change{Key: k, Action: "expired", Value: e.Value})
		}
	}
}

// flush tells the pending changes, or queues them until OnChange; s.mu not held.
func (s *Store) flush() {
	s.mu.Lock()
	sc := &s.sched
	changes, notify := sc.pending, sc.notify
	sc.pending = nil
	if notify == nil {
		sc.queued = append(sc.queued, changes...)
		if n := len(sc.queued); n > maxQueued {
			sc.queued = sc.queued[n-maxQueued:]
		}
	}
	s.mu.Unlock()
	if notify != nil {
		for _, c := range changes {
			notify(c)
		}
	}
}

// Mode returns the effective mode of an address of a pool at now: its own unless that is
// auto, then its pool's.
func (d *Data) Mode(pool, addr string, now time.Time) policy.Mode {
	if m := d.modeAt(ModeKey(pool, addr), now); m != policy.ModeAuto {
		return m
	}
	return d.modeAt(PoolModeKey(pool), now)
}

func (d *Data) modeAt(key string, now time.Time) policy.Mode {
	v, ok := d.ModeValue(key)
	if !ok || !v.Active(now) {
		return policy.ModeAuto
	}
	m, _ := policy.ParseMode(v.Mode)
	return m
}

// ModeValue returns the value of a modes/ or poolmodes/ key; false when there is none.
func (d *Data) ModeValue(key string) (ModeValue, bool) { return valueOf[ModeValue](d, key) }

// PinValue returns the value of a pins/ key; false when there is none.
func (d *Data) PinValue(key string) (PinValue, bool) { return valueOf[PinValue](d, key) }

// valueOf decodes the JSON value of key; false when there is none or it does not decode.
func valueOf[T any](d *Data, key string) (T, bool) {
	var v T
	e, ok := d.Entries[key]
	if !ok || json.Unmarshal(e.Value, &v) != nil {
		return v, false
	}
	return v, true
}
