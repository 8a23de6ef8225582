package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
)

// zoneServer is an authoritative DNS server on loopback whose records a test changes.
type zoneServer struct {
	mu    sync.Mutex
	rrs   []dns.RR
	rcode int // != 0: answer every query with it
	drop  bool
	asked int
	addr  string
}

func newZoneServer(t *testing.T) *zoneServer {
	t.Helper()
	z := &zoneServer{}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	z.addr = pc.LocalAddr().String()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *zoneServer) set(records ...string) {
	var rrs []dns.RR
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			panic(err)
		}
		rrs = append(rrs, rr)
	}
	z.mu.Lock()
	z.rrs, z.rcode, z.drop = rrs, 0, false
	z.mu.Unlock()
}

func (z *zoneServer) serve(w dns.ResponseWriter, r *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.asked++
	if z.drop {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if z.rcode != 0 {
		m.Rcode = z.rcode
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	exists := false
	for _, rr := range z.rrs {
		if strings.EqualFold(rr.Header().Name, q.Name) {
			exists = true
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	if len(m.Answer) == 0 {
		soa, _ := dns.NewRR("test. 60 IN SOA ns.test. h.test. 1 60 60 60 7")
		m.Ns = []dns.RR{soa}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

type reports struct {
	mu  sync.Mutex
	all []Report
	ch  chan struct{}
}

func newReports() *reports { return &reports{ch: make(chan struct{}, 100)} }

func (r *reports) add(rep Report) {
	r.mu.Lock()
	r.all = append(r.all, rep)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *reports) next(t *testing.T) Report {
	t.Helper()
	select {
	case <-r.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[len(r.all)-1]
}

func addrs(ms []Member) string {
	var out []string
	for _, m := range normalize(ms) {
		s := m.Addr.String()
		if m.Port != 0 {
			s += fmt.Sprintf(":%d", m.Port)
		}
		if m.Weight > 1 {
			s += fmt.Sprintf("w%d", m.Weight)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestDNSSourceFollowsRecordsAndTTL(t *testing.T) {
	z := newZoneServer(t)
	z.set("app.test. 1 IN A 192.0.2.1", "app.test. 1 IN AAAA 2001:db8::1")
	src := &DNS{Name: "app.test.", Resolver: &Resolver{Servers: []string{z.addr}}, Min: time.Second, Max: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newReports()
	go src.Run(ctx, r.add)
	if got := addrs(r.next(t).Members); got != "192.0.2.1 2001:db8::1" {
		t.Fatalf("first lookup: %q", got)
	}
	z.set("app.test. 1 IN A 192.0.2.2")
	start := time.Now()
	if got := addrs(r.next(t).Members); got != "192.0.2.2" {
		t.Fatalf("after the change: %q", got)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("re-resolved after %s; TTL 1s bounded by refresh 1s 2s", d)
	}
	// NXDOMAIN is believed: no members, no error.
	z.set("other.test. 1 IN A 192.0.2.9")
	rep := r.next(t)
	if rep.Err != nil || len(rep.Members) != 0 {
		t.Fatalf("NXDOMAIN: %+v", rep)
	}
	// SERVFAIL is an error (the manager keeps the last members).
	z.mu.Lock()
	z.rcode = dns.RcodeServerFailure
	z.mu.Unlock()
	rep = r.next(t)
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "SERVFAIL") {
		t.Fatalf("SERVFAIL: %+v", rep)
	}
}

func TestDNSSourceRefreshBoundsLongTTL(t *testing.T) {
	z := newZoneServer(t)
	z.set("app.test. 3600 IN A 192.0.2.1")
	src := &DNS{Name: "app.test.", Resolver: &Resolver{Servers: []string{z.addr}}, Min: time.Second, Max: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newReports()
	go src.Run(ctx, r.add)
	r.next(t)
	z.set("app.test. 3600 IN A 192.0.2.3")
	if got := addrs(r.next(t).Members); got != "192.0.2.3" {
		t.Fatalf("refresh MAX 1s bounds a TTL of 3600: %q", got)
	}
}

func TestSRVSourcePortsWeights(t *testing.T) {
	z := newZoneServer(t)
	z.set(
		"_http._tcp.app.test. 5 IN SRV 10 5 8080 a.test.",
		"_http._tcp.app.test. 5 IN SRV 20 0 8081 b.test.",
		"a.test. 5 IN A 192.0.2.1",
		"b.test. 5 IN A 192.0.2.2",
		"b.test. 5 IN AAAA 2001:db8::2",
	)
	src := &SRV{Name: "_http._tcp.app.test.", Resolver: &Resolver{Servers: []string{z.addr}}, Min: time.Second, Max: time.Second}
	ms, _, err := src.lookup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs(ms); got != "192.0.2.1:8080w5 192.0.2.2:8081 2001:db8::2:8081" {
		t.Fatalf("members %q", got)
	}
	for _, m := range ms {
		if m.Addr == netip.MustParseAddr("192.0.2.2") && m.Priority != 20 {
			t.Fatalf("priority %d", m.Priority)
		}
	}
}

func TestManagerKeepsMembersWhenStale(t *testing.T) {
	z := newZoneServer(t)
	z.set("app.test. 1 IN A 192.0.2.1")
	changes := make(chan struct{}, 100)
	var events []string
	var mu sync.Mutex
	m := New(Options{
		OnChange: func() { changes <- struct{}{} },
		OnEvent: func(pool, source, msg string, warning bool) {
			mu.Lock()
			events = append(events, msg)
			mu.Unlock()
		},
	})
	defer m.Stop()
	cfg := &config.Config{Pools: []*config.Pool{{Meta: config.Meta{Name: "p"}, Members: []config.Member{{DNS: []string{"app.test"}, Resolver: z.addr, Refresh: []config.Duration{config.Duration(time.Second), config.Duration(time.Second)}}}}}}
	if err := m.Sync(Wants(cfg)); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ok func(*PoolView) bool) *PoolView {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			if pv := m.View()["p"]; pv != nil && ok(pv) {
				return pv
			}
			select {
			case <-changes:
			case <-deadline:
				t.Fatalf("%s: not within 10s: %+v", what, m.View()["p"])
			}
		}
	}
	pv := wait("first members", func(pv *PoolView) bool { return len(pv.Sources[0].Members) == 1 })
	if pv.Sources[0].Label != "dns:app.test" {
		t.Fatalf("label %q", pv.Sources[0].Label)
	}
	z.mu.Lock()
	z.drop = true // the resolver stops answering: timeouts
	z.mu.Unlock()
	pv = wait("stale", func(pv *PoolView) bool { s, _ := pv.Stale(); return s })
	if len(pv.Sources[0].Members) != 1 {
		t.Fatalf("a stale source lost its members: %+v", pv)
	}
	if _, e := pv.Stale(); !strings.Contains(e, "dns:app.test") {
		t.Fatalf("stale error %q", e)
	}
	z.set("app.test. 1 IN A 192.0.2.7")
	wait("recovered", func(pv *PoolView) bool {
		s, _ := pv.Stale()
		return !s && addrs(pv.Sources[0].Members) == "192.0.2.7"
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 2 || !strings.Contains(events[0], "stale") || !strings.Contains(events[1], "answers again") {
		t.Fatalf("events %q", events)
	}
	// Sync without the member stops it: its members leave.
	_ = m.Sync(nil)
	if v := m.View(); len(v) != 0 {
		t.Fatalf("view after Sync(nil): %+v", v)
	}
}

func TestApplyJoinsMembersAfterStatic(t *testing.T) {
	p := config.NewPool("p")
	p.Addresses = []config.Address{config.NewAddress("192.0.2.1")}
	p.Members = []config.Member{{DNS: []string{"a.test"}}}
	q := config.NewPool("q")
	q.Addresses = []config.Address{config.NewAddress("192.0.2.9")}
	cfg := &config.Config{Pools: []*config.Pool{p, q}}
	v := View{"p": {Sources: []SourceView{{Label: "dns:a.test", Members: []Member{
		{Addr: netip.MustParseAddr("192.0.2.1"), Weight: 1},
		{Addr: netip.MustParseAddr("192.0.2.2"), Weight: 3},
	}}}}}
	out := Apply(cfg, v)
	if out.Pools[1] != q {
		t.Fatal("a pool without members was copied")
	}
	got := out.Pools[0].Addresses
	if len(got) != 2 || got[0].Source != "" || got[1].Address != "192.0.2.2" || got[1].Source != "dns:a.test" || got[1].Weight != 3 {
		t.Fatalf("addresses %+v", got)
	}
	if len(p.Addresses) != 1 {
		t.Fatal("Apply changed its input")
	}
}

func TestCarryKeepsSharedMembersOnTakeover(t *testing.T) {
	a := Member{Addr: netip.MustParseAddr("192.0.2.1"), Weight: 1}
	prev := View{"p": {Sources: []SourceView{{Label: "kubernetes:ns/web", Members: []Member{a}, Synced: true}}}}
	// A new leader's source has not answered yet, or only with an error.
	for _, sv := range []SourceView{{Label: "kubernetes:ns/web"}, {Label: "kubernetes:ns/web", Stale: true, Error: "list services: connection refused"}} {
		got := Carry(View{"p": {Sources: []SourceView{sv}}}, prev)["p"].Sources[0]
		if len(got.Members) != 1 || got.Members[0] != a || got.Stale != sv.Stale {
			t.Fatalf("carried %+v from %+v", got, sv)
		}
	}
	// Once it answered, its answer is the one shared, even when it is "none".
	got := Carry(View{"p": {Sources: []SourceView{{Label: "kubernetes:ns/web", Synced: true}}}}, prev)["p"].Sources[0]
	if len(got.Members) != 0 {
		t.Fatalf("a synced empty answer was not believed: %+v", got)
	}
	// The shared form round-trips.
	back := Unshare(Share(prev["p"]))
	if len(back.Sources) != 1 || back.Sources[0].Members[0] != a || !back.Sources[0].Synced {
		t.Fatalf("round trip %+v", back)
	}
}
