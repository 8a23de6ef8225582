package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// Timed overrides in a fleet: both nodes see the window, both take the address out and
// put it back at until, and the key is deleted once (the node that loses the race gets a
// conflict, which is fine); a pool mode and a timed pin round-trip through etcd.
func TestTimedOverridesInFleet(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	sa, err := state.Open(ctx, open(t, srv.Endpoints(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := state.Open(ctx, open(t, srv.Endpoints(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := sa.ModeCell("eu", "192.0.2.1"), sb.ModeCell("eu", "192.0.2.1")
	until := time.Now().Add(1500 * time.Millisecond)
	if err := sa.SetModeWindow(ctx, "eu", "192.0.2.1", policy.ModeDown, state.Window{Until: until}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "timed mode on the other node", func() bool { return cb.Get() == policy.ModeDown })
	if ca.Get() != policy.ModeDown {
		t.Fatal("not in force on the writer")
	}
	eventually(t, 5*time.Second, "both back to auto", func() bool { return ca.Get() == policy.ModeAuto && cb.Get() == policy.ModeAuto })
	if time.Now().Before(until) {
		t.Fatal("back before until")
	}
	key := state.ModeKey("eu", "192.0.2.1")
	eventually(t, 3*time.Second, "key deleted on both", func() bool {
		_, a := sa.Data().Entries[key]
		_, b := sb.Data().Entries[key]
		return !a && !b
	})

	// Pool mode and a scheduled pin, read back by a third store opened afterwards.
	from := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := sa.SetPoolMode(ctx, "eu", policy.ModeDown, state.Window{}); err != nil {
		t.Fatal(err)
	}
	if err := sa.SetPinWindow(ctx, "www.example.net.", "eu", state.Window{From: from}); err != nil {
		t.Fatal(err)
	}
	sc, err := state.Open(ctx, open(t, srv.Endpoints(), "c"))
	if err != nil {
		t.Fatal(err)
	}
	if m := sc.ModeCell("eu", "192.0.2.7").Get(); m != policy.ModeDown {
		t.Fatalf("pool mode read back as %v", m)
	}
	if p := sc.PinCell("www.example.net.").Get(); p != "" {
		t.Fatalf("scheduled pin in force before from: %q", p)
	}
	v, ok := sc.Data().PinValue(state.PinKey("www.example.net."))
	if !ok || !v.From.Equal(from) || v.Pool != "eu" {
		t.Fatalf("pin read back as %+v", v)
	}
}
