package gtm

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/history"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// Answers are counted per pool into the current minute, on the query path without
// allocating, and drains show in the address timelines.
func TestHistoryOfAnswersAndStates(t *testing.T) {
	g := newTestGTM(t, `gtm gtm.example.net {
    pool hist-a {
        address 192.0.2.1
        address 192.0.2.2
    }
    pool hist-b {
        address 192.0.2.3
    }
    domain hist.gtm.example.net {
        route default hist-a hist-b
    }
}`)
	before := g.ctl.History()
	m := new(dns.Msg)
	m.SetQuestion("hist.gtm.example.net.", dns.TypeA)
	for range 25 {
		serve(t, g, m)
	}
	after := g.ctl.History()
	if len(after.Pools) != 2 || after.Pools[0].Name != "hist-a" || len(after.Pools[0].Answers) != history.Buckets {
		t.Fatalf("pools %+v", after.Pools)
	}
	sum := func(d []uint64) (n uint64) {
		for _, c := range d {
			n += c
		}
		return n
	}
	if got := sum(after.Pools[0].Answers) - sum(before.Pools[0].Answers); got != 25 {
		t.Errorf("hist-a counted %d answers, want 25", got)
	}
	if got := sum(after.Pools[1].Answers) - sum(before.Pools[1].Answers); got != 0 {
		t.Errorf("hist-b counted %d answers, want 0", got)
	}

	// Counting on the query path allocates nothing.
	cs := g.ctl.Snapshot()
	d := cs.Domains[0]
	res := &policy.Result{Pool: cs.Pools[0]}
	if n := testing.AllocsPerRun(200, func() { cs.Account(d, d.Routes[0], res) }); n != 0 {
		t.Errorf("account allocates %v times", n)
	}

	// Drain both addresses of hist-a: the timeline shows it, and answers move to hist-b.
	for _, a := range cs.Pools[0].Addrs {
		a.Mode.Set(policy.ModeDown)
	}
	for range 5 {
		serve(t, g, m)
	}
	h := g.ctl.History()
	for _, a := range h.Pools[0].Addresses {
		st := a.States
		if len(st) < 2 || st[len(st)-2].State != "up" || st[len(st)-1].State != "drained" {
			t.Errorf("address %s states %+v, want up then drained", a.Address, st)
		}
	}
	if got := sum(h.Pools[1].Answers) - sum(after.Pools[1].Answers); got != 5 {
		t.Errorf("hist-b counted %d answers after the drain, want 5", got)
	}
	if st := h.Pools[1].Addresses[0].States; len(st) != 1 || st[0].State != "up" {
		t.Errorf("hist-b states %+v", st)
	}
	if !h.Start.Before(h.Time) || h.Time.Sub(h.Start) > history.Window {
		t.Errorf("window %s .. %s", h.Start, h.Time)
	}
}
