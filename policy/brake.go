package policy

import (
	"sync"
	"sync/atomic"
	"time"
)

// The mass-failure brake (`brake PERCENT DURATION`): when more than PERCENT of all checked
// addresses turn down within DURATION, the cause is far more often the observer (an uplink,
// a resolver, the prober's own network) than every server at once, so the brake holds the
// verdicts from before the wave instead of failing everything over (Envoy's panic
// threshold; Route 53 fails open when too many checks fail). It releases when the share of
// the wave's addresses still down falls back to PERCENT or below, or when an operator says
// so; after a release by hand, the wave that caused it does not engage it again.
//
// The query path reads one atomic per address (BrakeCell.Holding); Step, called by the
// block's goroutine, makes every decision.

// Brake watches the checked addresses of a block.
type Brake struct {
	Percent int
	Window  time.Duration

	engaged atomic.Bool

	mu       sync.Mutex
	cells    map[string]*BrakeCell
	gen      uint64
	since    time.Time // when it engaged
	released time.Time // when it was last released by hand
	down, of int       // the last Step's count
}

// BrakeCell is one checked address under a brake.
type BrakeCell struct {
	b    *Brake
	held atomic.Bool // the verdict answered while the brake is engaged

	// Step's, under Brake.mu
	health Health
	gen    uint64
	seen   bool      // has had a verdict of its own
	last   bool      // the verdict at the last Step
	downAt time.Time // when it last turned down; zero while up
}

// readier is a health that tells whether it has a verdict of its own yet: an address counts
// healthy until its first verdict, and a first verdict of down is no change of health.
type readier interface{ Ready() bool }

// NewBrake returns a brake engaging above percent within window.
func NewBrake(percent int, window time.Duration) *Brake {
	return &Brake{Percent: percent, Window: window, cells: map[string]*BrakeCell{}}
}

// Holding reports whether the brake answers this address with a held verdict now, and which.
// Lock-free; nil is no brake.
func (c *BrakeCell) Holding() (healthy, holding bool) {
	if c == nil || !c.b.engaged.Load() {
		return false, false
	}
	return c.held.Load(), true
}

// Begin starts a compile: cells not taken again with Cell before the next End are dropped.
func (b *Brake) Begin() {
	b.mu.Lock()
	b.gen++
	b.mu.Unlock()
}

// Cell returns the cell of the checked address key (pool/address), whose health is h; a cell
// keeps its history across compiles.
func (b *Brake) Cell(key string, h Health) *BrakeCell {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cells[key]
	if c == nil {
		c = &BrakeCell{b: b}
		c.held.Store(true) // a new address counts healthy until its first verdict
		b.cells[key] = c
	}
	c.health, c.gen = h, b.gen
	return c
}

// End drops the cells the last compile did not take.
func (b *Brake) End() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, c := range b.cells {
		if c.gen != b.gen {
			delete(b.cells, k)
		}
	}
}

// BrakeChange is what a Step changed.
type BrakeChange int

// Step outcomes.
const (
	BrakeSame BrakeChange = iota
	BrakeEngaged
	BrakeReleased // the wave is over: the share fell back
)

// Step observes every cell at now and engages or releases the brake.
func (b *Brake) Step(now time.Time) BrakeChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	engaged := b.engaged.Load()
	// The wave: addresses that turned down since from and are still down. Engaged, the
	// wave is the one that engaged it, however long it lasts.
	from := now.Add(-b.Window)
	if engaged {
		from = b.since.Add(-b.Window)
	}
	if b.released.After(from) {
		from = b.released
	}
	down, of := 0, 0
	for _, c := range b.cells {
		cur := c.health.Healthy()
		ready := true
		if r, ok := c.health.(readier); ok {
			ready = r.Ready()
		}
		switch {
		case !ready:
			cur = true // no verdict yet: healthy, and no change
		case !c.seen:
			c.seen = true // its first verdict is where it starts, not a change
		case c.last && !cur:
			c.downAt = now
		}
		if cur {
			c.downAt = time.Time{}
		}
		c.last = cur
		of++
		if !cur && !c.downAt.IsZero() && !c.downAt.Before(from) {
			down++
		}
		if !engaged {
			c.held.Store(cur)
		}
	}
	b.down, b.of = down, of
	over := of > 0 && down*100 > b.Percent*of
	switch {
	case !engaged && over:
		b.since = now
		// Hold the verdicts from before the wave: the wave's addresses up, the rest as
		// they are.
		for _, c := range b.cells {
			c.held.Store(c.last || !c.downAt.IsZero() && !c.downAt.Before(from))
		}
		b.engaged.Store(true)
		return BrakeEngaged
	case engaged && !over:
		b.engaged.Store(false)
		return BrakeReleased
	}
	return BrakeSame
}

// Release releases an engaged brake by hand at now, and reports whether it was engaged.
// The addresses down now do not count towards engaging it again.
// A release older than the last one, or than the engagement (a fleet's release delivered
// again), changes nothing.
func (b *Brake) Release(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !now.After(b.released) || b.engaged.Load() && now.Before(b.since) {
		return false
	}
	b.released = now
	return b.engaged.Swap(false)
}

// BrakeState is the brake's state for the API.
type BrakeState struct {
	Engaged        bool
	Since          time.Time // when it engaged (zero: never)
	Released       time.Time // when it was last released by hand (zero: never)
	Down, Of, Held int
}

// State reports the brake: the last Step's counts, and how many addresses are answered by
// a held verdict that differs from their own now.
func (b *Brake) State() BrakeState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := BrakeState{Engaged: b.engaged.Load(), Since: b.since, Released: b.released, Down: b.down, Of: b.of}
	if st.Engaged {
		for _, c := range b.cells {
			if c.held.Load() != c.last {
				st.Held++
			}
		}
	}
	return st
}

// Engaged reports whether the brake holds the verdicts now. Lock-free.
func (b *Brake) Engaged() bool { return b != nil && b.engaged.Load() }
