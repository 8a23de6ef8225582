// Package state owns everything of coredns-gtm that changes at run time and must persist:
// resources written through the admin API, address modes and domain pins.
//
// The state is a small revisioned key-value space, laid out the same way in every backend
// (the file of `state FILE`, or etcd under the cluster's path):
//
//	config/healthchecks/NAME   the JSON form of an API-managed template
//	config/pools/NAME          ... of a pool
//	config/domains/NAME        ... of a domain (lower-case FQDN)
//	modes/POOL/ADDRESS         {"mode":"down"}, timed: {"mode":"down","from":T,"until":T}
//	poolmodes/POOL             {"mode":"down"} (every address of POOL whose own mode is auto)
//	pins/DOMAIN                {"pool":"b"}, timed like modes
//	holds/DOMAIN               {"routes":{"default":{"pool":"b","since":"2026-12-01T10:00:00Z"}}}
//
// Every key carries the revision that last wrote it (etcd's ModRevision): it is the ETag of
// a resource and the precondition of an optimistic write. The query path never reads the
// store; it reads the mode and pin cells, which the store updates after each change.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// Key prefixes of the layout.
const (
	ConfigPrefix = "config/"
	ModesPrefix  = "modes/"
	PinsPrefix   = "pins/"
	// PoolModesPrefix keys a whole pool's mode.
	PoolModesPrefix = "poolmodes/"
	// HoldsPrefix keys a domain's routes held on their standby (failback manual|DURATION).
	HoldsPrefix = "holds/"
	// MembersPrefix keys a pool's discovered members in a fleet (members/POOL), written by
	// the node elected to discover (package discovery).
	MembersPrefix = "members/"
)

// Entry is a key's value and the revision that wrote it.
type Entry struct {
	Value    []byte `json:"value"`
	Revision int64  `json:"revision"`
}

// Data is the whole state at one revision. It is never changed once published: writers
// build a new one.
type Data struct {
	Revision int64
	Entries  map[string]Entry
	// Generation is the revision of the last commit through a Store of a fleet (the
	// ModRevision of etcd's PATH/generation, which every commit writes); 0 elsewhere. A
	// guarded commit compares it, so a write validated against a state stands only if no
	// other write came between.
	Generation int64
	// Epoch names the history the state belongs to: it changes only when an operator
	// restores a fleet's store (after etcd lost its data), and a state of a new epoch is put
	// in force even if its revision is lower than the one it replaces.
	Epoch string
}

// Op is one write of a Commit. A nil Value deletes the key. With Check, the write happens
// only if the key's revision is Revision (0: the key must not exist).
type Op struct {
	Key      string
	Value    []byte
	Check    bool
	Revision int64
}

// Errors of Commit.
var (
	// ErrConflict: a precondition did not hold (the HTTP 412 of If-Match / If-None-Match).
	ErrConflict = errors.New("the resource changed since it was read")
	// ErrUnavailable: the backend cannot be reached (a partitioned cluster node).
	ErrUnavailable = errors.New("cluster store unreachable")
)

// Backend keeps the state somewhere.
type Backend interface {
	// Load reads the whole state.
	Load(ctx context.Context) (*Data, error)
	// Commit applies ops atomically if every precondition holds and returns the state after
	// them. It returns only once the write is as durable as the backend makes it.
	Commit(ctx context.Context, ops []Op) (*Data, error)
	// Durable reports whether writes outlive the process.
	Durable() bool
	// Close releases the backend.
	Close() error
}

// Watcher is a Backend that others write too (etcd): Watch calls fn with the whole state
// after every change it did not make through Commit, until ctx ends.
type Watcher interface {
	Watch(ctx context.Context, fn func(*Data))
}

// ModeValue is the JSON value of a modes/ or poolmodes/ key. Values written before timed
// overrides ({"mode":"down"}) have no window: in force until cleared.
type ModeValue struct {
	Mode string `json:"mode"`
	Window
}

// PinValue is the JSON value of a pins/ key.
type PinValue struct {
	Pool string `json:"pool"`
	Window
}

// ModeKey is the key of an address's mode.
func ModeKey(pool, addr string) string { return ModesPrefix + pool + "/" + addr }

// PinKey is the key of a domain's pin.
func PinKey(domain string) string { return PinsPrefix + domain }

// PoolModeKey is the key of a pool's mode.
func PoolModeKey(pool string) string { return PoolModesPrefix + pool }

// ConfigKey is the key of an API-managed resource.
func ConfigKey(kind, name string) string { return ConfigPrefix + kind + "/" + name }

// Store is the one owner of run-time state of a gtm block (shared by its reloads). Writes
// go to the backend first and are in memory only once the backend took them; the cells the
// query path reads follow every change.
type Store struct {
	be Backend

	wmu sync.Mutex // serialises writers, so validation and commit see one state

	mu    sync.Mutex
	data  *Data
	modes map[string]*policy.ModeCell
	pins  map[string]*policy.PinCell
	holds map[string]*policy.HoldCell // by holdCellKey(domain, route)
	subs  map[int]func(*Data)
	next  int

	sched schedule // the timer of the next override start or end (schedule.go)

	ctx    context.Context // ends with Close: the watch of a Watcher backend stops
	cancel context.CancelFunc
	closed bool // guarded by mu: Close ran; no timer is set, no subscriber called
}

// Open loads the state from be.
func Open(ctx context.Context, be Backend) (*Store, error) {
	d, err := be.Load(ctx)
	if err != nil {
		return nil, err
	}
	return openWith(be, d, SystemClock)
}

// openWith makes the store of be's state d, timed overrides run by clock.
func openWith(be Backend, d *Data, clock Clock) (*Store, error) {
	s := &Store{be: be, modes: map[string]*policy.ModeCell{}, pins: map[string]*policy.PinCell{}, holds: map[string]*policy.HoldCell{}, subs: map[int]func(*Data){}}
	s.sched.clock = clock
	s.sched.last = clock.Now()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.install(d)
	if w, ok := be.(Watcher); ok {
		go w.Watch(s.ctx, s.applyExternal)
	}
	return s, nil
}

// Backend returns the store's backend.
func (s *Store) Backend() Backend { return s.be }

// Durable reports whether writes outlive the process.
func (s *Store) Durable() bool { return s.be.Durable() }

// Data returns the state in force. The caller must not change it.
func (s *Store) Data() *Data {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// Lock serialises a read-validate-commit sequence of one writer against the others; Commit
// must be called with it held.
func (s *Store) Lock()   { s.wmu.Lock() }
func (s *Store) Unlock() { s.wmu.Unlock() }

// Commit writes ops through the backend, then puts them in force and tells subscribers.
// Call it between Lock and Unlock.
func (s *Store) Commit(ctx context.Context, ops []Op) (*Data, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	ops, done, err := ride(ctx, s.Data(), ops)
	if err != nil {
		return nil, err
	}
	d, err := s.be.Commit(ctx, ops)
	done(d, err)
	if err != nil {
		return nil, err
	}
	s.publish(d)
	return d, nil
}

// Subscribe calls fn after every change of the state (from this process or, with a
// Watcher backend, from others), with the new state. It returns the function that stops it.
func (s *Store) Subscribe(fn func(*Data)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.next
	s.next++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

func (s *Store) applyExternal(d *Data) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// A watcher's delivery can be overtaken by a Commit of this process (it runs on its own
	// goroutine): a state older than the one in force is not put back.
	if cur := s.Data(); d.Revision < cur.Revision && d.Epoch == cur.Epoch {
		return
	}
	s.publish(d)
}

func (s *Store) publish(d *Data) {
	s.mu.Lock()
	s.install(d)
	subs := make([]func(*Data), 0, len(s.subs))
	for _, fn := range s.subs {
		subs = append(subs, fn)
	}
	s.mu.Unlock()
	s.flush()
	for _, fn := range subs {
		fn(d)
	}
}

// install makes d the state in force and brings every cell in line with it at the
// clock's now (timed overrides in their window only), then sets the timer for the next
// start or end; s.mu held. The effective mode of an address is its own mode unless that
// is auto, then its pool's: the query path reads the result, never the time.
func (s *Store) install(d *Data) {
	now := s.sched.clock.Now()
	s.sched.noteGone(s.data, d, now)
	s.data = d
	var next time.Time
	expired := false // an ended override still in the state: the timer deletes it
	var own, pool map[string]policy.Mode
	pins := map[string]string{}
	s.installHolds(d)
	for k, e := range d.Entries {
		switch {
		case strings.HasPrefix(k, ModesPrefix), strings.HasPrefix(k, PoolModesPrefix):
			var v ModeValue
			m := policy.ModeAuto
			if json.Unmarshal(e.Value, &v) == nil {
				m, _ = policy.ParseMode(v.Mode)
			}
			next = v.Window.next(now, next)
			expired = expired || v.Expired(now)
			if strings.HasPrefix(k, PoolModesPrefix) {
				if v.Active(now) {
					pool = setIn(pool, strings.TrimPrefix(k, PoolModesPrefix), m)
				}
				continue
			}
			cell(s.modes, k)
			if v.Active(now) {
				own = setIn(own, k, m)
			}
		case strings.HasPrefix(k, PinsPrefix):
			var v PinValue
			json.Unmarshal(e.Value, &v)
			next = v.Window.next(now, next)
			expired = expired || v.Expired(now)
			cell(s.pins, k)
			if v.Active(now) {
				pins[k] = v.Pool
			}
		}
	}
	for k, c := range s.modes {
		m := own[k]
		if m == policy.ModeAuto && pool != nil {
			p, _, _ := strings.Cut(strings.TrimPrefix(k, ModesPrefix), "/")
			m = pool[p]
		}
		c.Set(m)
	}
	for k, c := range s.pins {
		c.Set(pins[k])
	}
	if !s.closed {
		s.sched.arm(s, now, next, expired)
	}
}

func setIn(m map[string]policy.Mode, k string, v policy.Mode) map[string]policy.Mode {
	if m == nil {
		m = map[string]policy.Mode{}
	}
	m[k] = v
	return m
}

// ModeCell returns the override cell of an address of a pool; the same cell every time.
func (s *Store) ModeCell(pool, addr string) *policy.ModeCell {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := ModeKey(pool, addr)
	c, ok := s.modes[k]
	if !ok {
		// A new address of a pool under a pool mode (the compile of a resource written
		// through the API runs after the write's install): its mode is in force at once.
		c = cell(s.modes, k)
		c.Set(s.data.Mode(pool, addr, s.sched.clock.Now()))
	}
	return c
}

// PinCell returns the pin cell of a domain (a lower-case FQDN); the same cell every time.
func (s *Store) PinCell(domain string) *policy.PinCell {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cell(s.pins, PinKey(domain))
}

func cell[C any](m map[string]*C, key string) *C {
	c, ok := m[key]
	if !ok {
		c = new(C)
		m[key] = c
	}
	return c
}

// SetMode persists an address's mode (auto deletes the override), then puts it in force.
func (s *Store) SetMode(ctx context.Context, pool, addr string, m policy.Mode) error {
	return s.SetModeWindow(ctx, pool, addr, m, Window{})
}

// SetModeWindow persists an address's mode in force during w (auto deletes the override).
func (s *Store) SetModeWindow(ctx context.Context, pool, addr string, m policy.Mode, w Window) error {
	return s.commitOne(ctx, modeOp(ModeKey(pool, addr), m, w))
}

// SetPoolMode persists the mode of every address of pool whose own mode is auto, in force
// during w (auto deletes it).
func (s *Store) SetPoolMode(ctx context.Context, pool string, m policy.Mode, w Window) error {
	return s.commitOne(ctx, modeOp(PoolModeKey(pool), m, w))
}

func modeOp(key string, m policy.Mode, w Window) Op {
	op := Op{Key: key}
	if m != policy.ModeAuto {
		op.Value, _ = json.Marshal(ModeValue{Mode: m.String(), Window: w.utc()})
	}
	return op
}

// SetPin persists a domain's pin ("" unpins), then puts it in force.
func (s *Store) SetPin(ctx context.Context, domain, pool string) error {
	return s.SetPinWindow(ctx, domain, pool, Window{})
}

// SetPinWindow persists a domain's pin in force during w ("" unpins).
func (s *Store) SetPinWindow(ctx context.Context, domain, pool string, w Window) error {
	op := Op{Key: PinKey(domain)}
	if pool != "" {
		op.Value, _ = json.Marshal(PinValue{Pool: pool, Window: w.utc()})
	}
	return s.commitOne(ctx, op)
}

func (s *Store) commitOne(ctx context.Context, op Op) error {
	s.Lock()
	defer s.Unlock()
	_, err := s.Commit(ctx, []Op{op})
	return err
}

// Overrides lists the keys of the modes and pins in the state.
func (d *Data) Overrides() (modes, pins []string) {
	for k := range d.Entries {
		switch {
		case strings.HasPrefix(k, ModesPrefix):
			modes = append(modes, k)
		case strings.HasPrefix(k, PinsPrefix):
			pins = append(pins, k)
		}
	}
	return modes, pins
}

// Apply returns the state after ops, or ErrConflict if a precondition fails; d is not
// changed. Backends that keep the whole state (file, memory) commit with it.
func (d *Data) Apply(ops []Op) (*Data, error) {
	for _, op := range ops {
		if !op.Check {
			continue
		}
		if d.Entries[op.Key].Revision != op.Revision {
			return nil, ErrConflict
		}
	}
	nd := &Data{Revision: d.Revision + 1, Entries: maps.Clone(d.Entries), Generation: d.Generation, Epoch: d.Epoch}
	if nd.Entries == nil {
		nd.Entries = map[string]Entry{}
	}
	for _, op := range ops {
		if op.Value == nil {
			delete(nd.Entries, op.Key)
		} else {
			nd.Entries[op.Key] = Entry{Value: op.Value, Revision: nd.Revision}
		}
	}
	return nd, nil
}
