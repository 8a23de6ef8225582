package state

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// fakeClock runs timers only when the test advances it, on the test's goroutine.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// pending is the number of timers not stopped and not fired.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// Advance moves the clock by d and runs the timers due, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var due *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(c.now) && (due == nil || t.at.Before(due.at)) {
				due = t
			}
		}
		if due != nil {
			due.stopped = true
		}
		c.mu.Unlock()
		if due == nil {
			return
		}
		due.f()
	}
}

type changeLog struct {
	mu  sync.Mutex
	all []string
}

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, c.Action+" "+c.Key)
}

func (l *changeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.all
	l.all = nil
	slices.Sort(out)
	return out
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name              string
		w                 Window
		now               time.Time
		active, scheduled bool
		next              time.Time
	}{
		{"untimed", Window{}, at(0), true, false, time.Time{}},
		{"until ahead", Window{Until: at(10)}, at(0), true, false, at(10)},
		{"until reached", Window{Until: at(10)}, at(10), false, false, time.Time{}},
		{"from ahead", Window{From: at(5), Until: at(10)}, at(0), false, true, at(5)},
		{"from reached", Window{From: at(5), Until: at(10)}, at(5), true, false, at(10)},
		{"from only, past", Window{From: at(-5)}, at(0), true, false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.Active(tc.now); got != tc.active {
				t.Errorf("Active %v, want %v", got, tc.active)
			}
			if got := tc.w.Scheduled(tc.now); got != tc.scheduled {
				t.Errorf("Scheduled %v, want %v", got, tc.scheduled)
			}
			if got := tc.w.next(tc.now, time.Time{}); !got.Equal(tc.next) {
				t.Errorf("next %v, want %v", got, tc.next)
			}
		})
	}
}

// The effective mode: an address's own up/down wins over its pool's; auto takes the pool's.
func TestPoolModeAndOwnMode(t *testing.T) {
	clk := newFakeClock()
	s, err := OpenWithClock(ctx, NewMemory(), clk)
	if err != nil {
		t.Fatal(err)
	}
	a, b, other := s.ModeCell("dc1", "192.0.2.1"), s.ModeCell("dc1", "192.0.2.2"), s.ModeCell("dc2", "192.0.2.1")
	if err := s.SetPoolMode(ctx, "dc1", policy.ModeDown, Window{}); err != nil {
		t.Fatal(err)
	}
	if a.Get() != policy.ModeDown || b.Get() != policy.ModeDown || other.Get() != policy.ModeAuto {
		t.Fatalf("pool down: %v %v %v", a.Get(), b.Get(), other.Get())
	}
	s.SetMode(ctx, "dc1", "192.0.2.2", policy.ModeUp)
	if a.Get() != policy.ModeDown || b.Get() != policy.ModeUp {
		t.Fatalf("own up must win: %v %v", a.Get(), b.Get())
	}
	s.SetPoolMode(ctx, "dc1", policy.ModeAuto, Window{})
	if a.Get() != policy.ModeAuto || b.Get() != policy.ModeUp {
		t.Fatalf("pool auto: %v %v", a.Get(), b.Get())
	}
	if _, ok := s.Data().Entries[PoolModeKey("dc1")]; ok {
		t.Fatal("pool mode auto must delete the key")
	}
	// A cell handed out after the pool mode was set sees it too.
	s.SetPoolMode(ctx, "dc2", policy.ModeDown, Window{})
	if c := s.ModeCell("dc2", "192.0.2.9"); c.Get() != policy.ModeDown {
		t.Fatalf("a cell made after the pool mode was set: %v", c.Get())
	}
}

// Timed overrides start and end by themselves at the clock's times, with one timer, and
// the ended ones are deleted from the state.
func TestScheduleStartsAndEnds(t *testing.T) {
	clk := newFakeClock()
	s, err := OpenWithClock(ctx, NewMemory(), clk)
	if err != nil {
		t.Fatal(err)
	}
	var log changeLog
	s.OnChange(log.add)
	now := clk.Now()
	mode := s.ModeCell("p", "192.0.2.1")
	pool := s.ModeCell("q", "192.0.2.2")
	pin := s.PinCell("www.example.net.")

	must(t, s.SetModeWindow(ctx, "p", "192.0.2.1", policy.ModeDown, Window{Until: now.Add(10 * time.Second)}))
	must(t, s.SetPoolMode(ctx, "q", policy.ModeDown, Window{From: now.Add(5 * time.Second), Until: now.Add(20 * time.Second)}))
	must(t, s.SetPinWindow(ctx, "www.example.net.", "b", Window{From: now.Add(5 * time.Second)}))
	if clk.pending() != 1 {
		t.Fatalf("%d timers pending, want 1", clk.pending())
	}
	if mode.Get() != policy.ModeDown || pool.Get() != policy.ModeAuto || pin.Get() != "" {
		t.Fatalf("at 0: %v %v %q", mode.Get(), pool.Get(), pin.Get())
	}
	clk.Advance(4 * time.Second)
	if pool.Get() != policy.ModeAuto || len(log.take()) != 0 {
		t.Fatal("started early")
	}
	clk.Advance(time.Second)
	if pool.Get() != policy.ModeDown || pin.Get() != "b" {
		t.Fatalf("at 5: %v %q", pool.Get(), pin.Get())
	}
	if got, want := log.take(), []string{"started pins/www.example.net.", "started poolmodes/q"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	clk.Advance(5 * time.Second)
	if mode.Get() != policy.ModeAuto {
		t.Fatal("not back to auto at until")
	}
	if _, ok := s.Data().Entries[ModeKey("p", "192.0.2.1")]; ok {
		t.Fatal("ended override left in the state")
	}
	if got, want := log.take(), []string{"expired modes/p/192.0.2.1"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	clk.Advance(10 * time.Second)
	if pool.Get() != policy.ModeAuto || pin.Get() != "b" {
		t.Fatalf("at 20: %v %q", pool.Get(), pin.Get())
	}
	if got, want := log.take(), []string{"expired poolmodes/q"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	if clk.pending() != 0 {
		t.Fatalf("%d timers pending with nothing timed left", clk.pending())
	}
}

// A rewrite moves the timer; a later write of an untimed override stops it.
func TestScheduleFollowsWrites(t *testing.T) {
	clk := newFakeClock()
	s, _ := OpenWithClock(ctx, NewMemory(), clk)
	now := clk.Now()
	cell := s.ModeCell("p", "a")
	must(t, s.SetModeWindow(ctx, "p", "a", policy.ModeDown, Window{Until: now.Add(time.Minute)}))
	must(t, s.SetModeWindow(ctx, "p", "a", policy.ModeDown, Window{Until: now.Add(2 * time.Minute)}))
	clk.Advance(time.Minute)
	if cell.Get() != policy.ModeDown {
		t.Fatal("the first until still applied after a rewrite")
	}
	must(t, s.SetMode(ctx, "p", "a", policy.ModeDown))
	if clk.pending() != 0 {
		t.Fatal("timer left after the override became untimed")
	}
	clk.Advance(time.Hour)
	if cell.Get() != policy.ModeDown {
		t.Fatal("an untimed override ended")
	}
}

// After a restart: an override whose until passed while the process was down is out of
// force at once and deleted (and told once OnChange is set); one whose from passed is in.
func TestScheduleAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	clk := newFakeClock()
	f, _ := OpenFile(path)
	s, _ := OpenWithClock(ctx, f, clk)
	now := clk.Now()
	must(t, s.SetModeWindow(ctx, "p", "a", policy.ModeDown, Window{Until: now.Add(time.Minute)}))
	must(t, s.SetModeWindow(ctx, "p", "b", policy.ModeDown, Window{From: now.Add(time.Minute), Until: now.Add(time.Hour)}))
	must(t, s.SetModeWindow(ctx, "p", "c", policy.ModeUp, Window{From: now.Add(time.Minute)}))

	later := newFakeClock()
	later.now = now.Add(2 * time.Minute)
	f2, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := OpenWithClock(ctx, f2, later)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := s2.ModeCell("p", "a"), s2.ModeCell("p", "b"), s2.ModeCell("p", "c")
	if a.Get() != policy.ModeAuto || b.Get() != policy.ModeDown || c.Get() != policy.ModeUp {
		t.Fatalf("after restart: %v %v %v", a.Get(), b.Get(), c.Get())
	}
	later.Advance(0) // the delete of the ended one runs at once
	if _, ok := s2.Data().Entries[ModeKey("p", "a")]; ok {
		t.Fatal("override ended while down is still in the state")
	}
	var log changeLog
	s2.OnChange(log.add)
	if got, want := log.take(), []string{"expired modes/p/a"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	f3, _ := OpenFile(path)
	if d, _ := f3.Load(ctx); len(d.Entries) != 2 {
		t.Fatalf("file holds %d entries, want 2", len(d.Entries))
	}
}

// Two stores racing to delete the same ended override: one deletes it, the other's
// conditional delete conflicts, and neither fails or leaves it in force.
func TestScheduleDeleteRace(t *testing.T) {
	be := NewMemory()
	clk := newFakeClock()
	s1, _ := OpenWithClock(ctx, be, clk)
	s2, _ := OpenWithClock(ctx, be, clk)
	now := clk.Now()
	must(t, s1.SetModeWindow(ctx, "p", "a", policy.ModeDown, Window{Until: now.Add(time.Second)}))
	// s2 sees the write as a watcher would deliver it.
	s2.applyExternal(s1.Data())
	c1, c2 := s1.ModeCell("p", "a"), s2.ModeCell("p", "a")
	if c2.Get() != policy.ModeDown {
		t.Fatal("not delivered")
	}
	clk.Advance(time.Second)
	if c1.Get() != policy.ModeAuto || c2.Get() != policy.ModeAuto {
		t.Fatal("still in force after until")
	}
	if d, _ := be.Load(ctx); len(d.Entries) != 0 {
		t.Fatalf("not deleted: %v", d.Entries)
	}
}

// A node whose copy of an ended override is deleted by another node before its own timer
// ran still tells of the end, once.
func TestScheduleRemoteDeleteTold(t *testing.T) {
	be := NewMemory()
	clk := newFakeClock()
	s1, _ := OpenWithClock(ctx, be, clk)
	var log changeLog
	s1.OnChange(log.add)
	until := clk.Now().Add(time.Second)
	must(t, s1.SetModeWindow(ctx, "p", "a", policy.ModeDown, Window{Until: until}))
	// Another node deletes it at until; its state arrives before s1's timer runs.
	clk.mu.Lock()
	clk.now = until
	clk.mu.Unlock()
	be.Commit(ctx, []Op{{Key: ModeKey("p", "a")}})
	gone, _ := be.Load(ctx)
	s1.applyExternal(gone)
	if got, want := log.take(), []string{"expired modes/p/a"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	clk.Advance(0)
	if got := log.take(); len(got) != 0 {
		t.Fatalf("told again: %v", got)
	}
}

// Values written before timed overrides still load and mean what they meant.
func TestOldValuesLoad(t *testing.T) {
	be := NewMemory()
	be.data.Entries = map[string]Entry{
		ModeKey("p", "a"):          {Value: []byte(`{"mode":"down"}`), Revision: 1},
		PinKey("www.example.net."): {Value: []byte(`{"pool":"b"}`), Revision: 1},
	}
	s, _ := OpenWithClock(ctx, be, newFakeClock())
	if s.ModeCell("p", "a").Get() != policy.ModeDown || s.PinCell("www.example.net.").Get() != "b" {
		t.Fatal("old values not in force")
	}
}

// The window round-trips through the file backend and a restart.
func TestTimedFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	clk := newFakeClock()
	f, _ := OpenFile(path)
	s, _ := OpenWithClock(ctx, f, clk)
	w := Window{From: clk.Now().Add(time.Hour), Until: clk.Now().Add(2 * time.Hour)}
	must(t, s.SetModeWindow(ctx, "p", "a", policy.ModeDown, w))
	must(t, s.SetPoolMode(ctx, "p", policy.ModeDown, w))
	must(t, s.SetPinWindow(ctx, "www.example.net.", "b", w))
	f2, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f2.Load(ctx)
	for _, k := range []string{ModeKey("p", "a"), PoolModeKey("p"), PinKey("www.example.net.")} {
		got, ok := WindowOf(k, d.Entries[k].Value)
		if !ok || !got.From.Equal(w.From) || !got.Until.Equal(w.Until) {
			t.Fatalf("%s: window %+v, want %+v", k, got, w)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
