package api

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

func TestEventsRing(t *testing.T) {
	ev := NewEvents(3)
	for i := range 5 {
		ev.Add(Event{Kind: "health", Message: fmt.Sprint(i)})
	}
	got := ev.Since(0)
	if len(got) != 3 || got[0].ID != 3 || got[2].ID != 5 || got[2].Message != "4" {
		t.Fatalf("ring: %+v", got)
	}
	if got := ev.Since(4); len(got) != 1 || got[0].ID != 5 {
		t.Fatalf("since 4: %+v", got)
	}
	if ev.Last() != 5 || len(ev.Since(5)) != 0 {
		t.Fatal("last")
	}
}

func snapshot(store *state.Store) *policy.Snapshot {
	p := &policy.Pool{Name: "hz", MinAvailable: 1, Weight: 1, Addrs: []*policy.Address{
		{Text: "192.0.2.1", Weight: 1, Mode: store.ModeCell("hz", "192.0.2.1")},
		{Text: "2001:db8::1", Weight: 1, Mode: store.ModeCell("hz", "2001:db8::1")},
	}}
	p.Addrs[0].IP = mustAddr("192.0.2.1")
	p.Addrs[1].IP = mustAddr("2001:db8::1")
	d := &policy.Domain{Name: "www.example.net.", Pin: store.PinCell("www.example.net."), Routes: []*policy.Route{{Selector: policy.Selector{Default: true, Text: "default"}, Pools: []*policy.Pool{p}}}}
	s := &policy.Snapshot{Zones: []string{"example.net."}, Pools: []*policy.Pool{p}, Domains: []*policy.Domain{d}}
	s.Index()
	return s
}

// The token never reaches the log, whatever the request carries.
func TestTokenNeverLogged(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	ctl := newFakeControl(t, false)
	snap := snapshot(ctl.Store())
	h := NewHandler(Config{Token: "top-secret-token", Control: ctl, Events: NewEvents(10), Snapshot: func() *policy.Snapshot { return snap },
		Log: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tok := range []string{"top-secret-token", "wrong-top-secret-token"} {
		req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/pools/hz/addresses/2001:DB8::1/mode", strings.NewReader(`{"mode":"down"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logs) == 0 {
		t.Fatal("the override was not logged")
	}
	for _, l := range logs {
		if strings.Contains(l, "top-secret") {
			t.Fatalf("token in the log: %s", l)
		}
	}
	if snap.Pools[0].Addrs[1].Mode.Get() != policy.ModeDown {
		t.Fatal("IPv6 address in another spelling not matched")
	}
}

func TestListenerSharedAndReleased(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	a, err := Acquire(addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(addr)
	if err != nil || a != b {
		t.Fatalf("second acquire: %v %v", err, a == b)
	}
	a.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("one")) }))
	b.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("two")) }))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	resp.Body.Read(buf)
	resp.Body.Close()
	if string(buf) != "two" {
		t.Fatalf("the last handler set must serve: %q", buf)
	}
	a.Release()
	if _, err := http.Get("http://" + addr + "/"); err != nil {
		t.Fatal("one reference left: must still serve")
	}
	b.Release()
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Fatalf("port not freed after the last release: %v", err)
	} else {
		l.Close()
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Without a token_file nothing is authorized: writes are 401 whatever the header says (an
// empty "Bearer " included), and reads are open only with public_read.
func TestNoTokenRefusesEverythingButPublicReads(t *testing.T) {
	ctl := newFakeControl(t, false)
	store := ctl.Store()
	snap := snapshot(store)
	for _, publicRead := range []bool{false, true} {
		h := NewHandler(Config{Control: ctl, Events: NewEvents(10), PublicRead: publicRead, Snapshot: func() *policy.Snapshot { return snap }})
		srv := httptest.NewServer(h)
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/pools/hz/addresses/192.0.2.1/mode", strings.NewReader(`{"mode":"down"}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("public_read %v, write with %q: %d, want 401", publicRead, auth, resp.StatusCode)
			}
		}
		resp, err := http.Get(srv.URL + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 401, true: 200}[publicRead]; resp.StatusCode != want {
			t.Errorf("public_read %v, read: %d, want %d", publicRead, resp.StatusCode, want)
		}
		srv.Close()
	}
	if snap.Pools[0].Addrs[0].Mode.Get() != policy.ModeAuto {
		t.Fatal("an unauthorized write took effect")
	}
}
