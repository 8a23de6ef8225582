package control

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// The holder, fed by a fake clock: a failover is held, a DURATION failback waits for the
// better pool to stay available, a hold left on a domain that went back to failback auto is
// dropped.
func TestHolderRounds(t *testing.T) {
	st, err := state.Open(context.Background(), state.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) *policy.Pool {
		a := &policy.Address{Text: name, IP: netip.MustParseAddr("192.0.2.1"), Weight: 1, Mode: new(policy.ModeCell)}
		return &policy.Pool{Name: name, Addrs: []*policy.Address{a}, MinAvailable: 1, Weight: 1}
	}
	a, b := mk("a"), mk("b")
	r := &policy.Route{Selector: policy.Selector{Default: true, Text: "default"}, Pools: []*policy.Pool{a, b}, Hold: st.HoldCell("www.gtm.test.", "default")}
	d := &policy.Domain{Name: "www.gtm.test.", Routes: []*policy.Route{r}, TTL: 30, Pin: new(policy.PinCell), FailbackAfter: time.Minute}
	auto := &policy.Domain{Name: "auto.gtm.test.", Routes: []*policy.Route{{Selector: policy.Selector{Default: true, Text: "default"}, Pools: []*policy.Pool{a, b}}}, TTL: 30, Pin: new(policy.PinCell)}
	cs := &compiled{Snapshot: &policy.Snapshot{Domains: []*policy.Domain{d, auto}, Pools: []*policy.Pool{a, b}}}
	cs.Index()
	blk := &Block{st: st}
	blk.snap.Store(&Snapshot{compiled: cs})
	h := newHolder(blk)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h.now = func() time.Time { return now }

	if err := st.SetHold(context.Background(), "auto.gtm.test.", "default", "b", now, 0); err != nil {
		t.Fatal(err)
	}
	h.round()
	if r.Hold.Get() != nil {
		t.Fatal("held while the first pool is up")
	}
	if _, rev := st.Data().Holds("auto.gtm.test."); rev != 0 {
		t.Fatal("the hold of a failback auto domain was not dropped")
	}
	a.Addrs[0].Mode.Set(policy.ModeDown)
	h.round()
	if r.Hold.Pool() != "b" {
		t.Fatalf("failed over: hold %v, want b", r.Hold.Get())
	}
	a.Addrs[0].Mode.Set(policy.ModeAuto)
	now = now.Add(time.Second)
	if wait := h.round(); wait <= 0 || wait > time.Minute {
		t.Fatalf("next deadline in %s, want within the minute", wait)
	}
	now = now.Add(59 * time.Second)
	h.round()
	if r.Hold.Pool() != "b" {
		t.Fatal("released before a minute of the better pool")
	}
	now = now.Add(time.Second)
	h.round()
	if r.Hold.Get() != nil {
		t.Fatalf("after a minute of the better pool: still held %v", r.Hold.Get())
	}
	if res := d.Decide(r, &policy.Client{}, policy.IPv4, nil); res.Pool != a || res.Held {
		t.Fatalf("answers from %s held=%v, want a", res.Pool.Name, res.Held)
	}
}
