package policy

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type flipHealth struct {
	up    atomic.Bool
	ready atomic.Bool
}

func (f *flipHealth) Healthy() bool      { return f.up.Load() }
func (f *flipHealth) RTT() time.Duration { return 0 }
func (f *flipHealth) Ready() bool        { return f.ready.Load() }

func newFlips(b *Brake, n int) ([]*flipHealth, []*Address) {
	hs := make([]*flipHealth, n)
	as := make([]*Address, n)
	b.Begin()
	for i := range hs {
		hs[i] = &flipHealth{}
		hs[i].up.Store(true)
		hs[i].ready.Store(true)
		as[i] = &Address{Text: fmt.Sprint(i), Health: hs[i], Mode: &ModeCell{}}
		as[i].Brake = b.Cell(fmt.Sprint("p/", i), hs[i])
	}
	b.End()
	return hs, as
}

func upCount(as []*Address) int {
	n := 0
	for _, a := range as {
		if a.Up() {
			n++
		}
	}
	return n
}

// 20 addresses, brake 50 10s: 15 down at once engage it and hold them up; a few down
// over time do not; it releases when the share falls back, and by hand, after which the
// same wave does not engage it again.
func TestBrake(t *testing.T) {
	b := NewBrake(50, 10*time.Second)
	hs, as := newFlips(b, 20)
	t0 := time.Unix(1_000_000, 0)
	if b.Step(t0) != BrakeSame || upCount(as) != 20 {
		t.Fatal("all up")
	}
	// 5 down: 25%, not more than 50%.
	for _, h := range hs[:5] {
		h.up.Store(false)
	}
	if b.Step(t0.Add(time.Second)) != BrakeSame || upCount(as) != 15 {
		t.Fatalf("5 of 20 down: %d up", upCount(as))
	}
	// 15 more seconds: those 5 are older than the window; 6 more now are 30%.
	for _, h := range hs[5:11] {
		h.up.Store(false)
	}
	if b.Step(t0.Add(16*time.Second)) != BrakeSame || upCount(as) != 9 {
		t.Fatalf("6 of 20 within the window: %d up", upCount(as))
	}
	// 5 more within the window: 11 of 20 = 55% > 50%: engaged. Held: those 11 up (they
	// turned down in the wave), the 5 old ones down as they were.
	for _, h := range hs[11:16] {
		h.up.Store(false)
	}
	if got := b.Step(t0.Add(18 * time.Second)); got != BrakeEngaged || !b.Engaged() {
		t.Fatalf("11 of 20 down within 10s: %v", got)
	}
	if n := upCount(as); n != 15 {
		t.Fatalf("engaged: %d up, want 15 (4 up + 11 held)", n)
	}
	if st := b.State(); st.Down != 11 || st.Of != 20 || st.Held != 11 {
		t.Fatalf("state %+v", st)
	}
	// Long after the window the wave is still down: still engaged.
	if got := b.Step(t0.Add(60 * time.Second)); got != BrakeSame || upCount(as) != 15 {
		t.Fatalf("the wave lasting: %v, %d up", got, upCount(as))
	}
	// An address that comes back is up either way; the brake releases when the wave's
	// share is at most 50%: 10 of 20.
	hs[11].up.Store(true)
	if got := b.Step(t0.Add(61 * time.Second)); got != BrakeReleased || b.Engaged() {
		t.Fatalf("10 of 20 still down: %v", got)
	}
	if n := upCount(as); n != 5 {
		t.Fatalf("released: %d up, want the real 5", n)
	}

	// Engage again with a new wave, then release by hand: the real verdicts apply and the
	// same wave does not engage it again.
	b2 := NewBrake(50, 10*time.Second)
	hs, as = newFlips(b2, 20)
	b2.Step(t0)
	for _, h := range hs[:15] {
		h.up.Store(false)
	}
	if got := b2.Step(t0.Add(time.Second)); got != BrakeEngaged || upCount(as) != 20 {
		t.Fatalf("15 of 20 at once: %v, %d up", got, upCount(as))
	}
	if !b2.Release(t0.Add(2*time.Second)) || b2.Engaged() || upCount(as) != 5 {
		t.Fatalf("released by hand: %d up", upCount(as))
	}
	if got := b2.Step(t0.Add(3 * time.Second)); got != BrakeSame || upCount(as) != 5 {
		t.Fatalf("the released wave engaged it again: %v", got)
	}
	if b2.Release(t0.Add(4 * time.Second)) {
		t.Fatal("a second release reports it was engaged")
	}
}

// An address without a verdict of its own yet is no change: a fleet of targets that are
// down at startup does not engage the brake.
func TestBrakeFirstVerdicts(t *testing.T) {
	b := NewBrake(50, 10*time.Second)
	hs, as := newFlips(b, 10)
	for _, h := range hs {
		h.ready.Store(false)
	}
	t0 := time.Unix(1_000_000, 0)
	b.Step(t0)
	for _, h := range hs[:8] {
		h.up.Store(false)
		h.ready.Store(true)
	}
	if got := b.Step(t0.Add(time.Second)); got != BrakeSame || upCount(as) != 2 {
		t.Fatalf("first verdicts of down: %v, %d up", got, upCount(as))
	}
	// A forced mode wins over the brake, as over health.
	as[0].Mode.Set(ModeUp)
	if !as[0].Up() {
		t.Fatal("mode up")
	}
}
