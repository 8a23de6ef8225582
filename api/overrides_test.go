package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

func statusOf(t *testing.T, a *apiClient) StatusDoc {
	t.Helper()
	r := a.do("GET", "/api/v1/status", "")
	a.want(r, 200)
	var doc StatusDoc
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Issue 19 items 11 and 14: a pin to a pool that is gone, and modes of addresses that are
// gone, are reported as dangling and not as in force, and can be cleared; a pinned domain
// whose pool is down reports fail_open as the query path answers.
func TestDanglingOverridesAndPinnedFailOpen(t *testing.T) {
	ctl := newFakeControl(t, true)
	st := ctl.Store()
	snap := snapshot(st)
	h := NewHandler(Config{Token: "t", Control: ctl, Events: NewEvents(10), Snapshot: func() *policy.Snapshot { return snap }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a := &apiClient{t: t, url: srv.URL}
	ctx := context.Background()

	// Pinned to hz with both addresses down: fail open, as DNS answers it.
	a.want(a.do("PUT", "/api/v1/domains/www.example.net/pin", `{"pool":"hz"}`), 200)
	for _, addr := range []string{"192.0.2.1", "2001:db8::1"} {
		a.want(a.do("PUT", "/api/v1/pools/hz/addresses/"+addr+"/mode", `{"mode":"down"}`), 200)
	}
	doc := statusOf(t, a)
	if r := doc.Domains[0].Routes[0]; r.Current != "hz" || !r.FailOpen {
		t.Fatalf("pinned to a pool that is down: current %q fail_open %v, want hz true", r.Current, r.FailOpen)
	}

	// Overrides of things the configuration no longer has.
	st.SetPin(ctx, "www.example.net.", "gone")
	st.SetPin(ctx, "old.example.net.", "hz")
	st.SetMode(ctx, "gone", "192.0.2.9", policy.ModeDown)
	doc = statusOf(t, a)
	if doc.Domains[0].Pinned != "" || doc.Domains[0].DanglingPin != "gone" {
		t.Fatalf("pin to a removed pool reported as in force: %+v", doc.Domains[0])
	}
	want := []string{"modes/gone/192.0.2.9", "pins/old.example.net.", "pins/www.example.net."}
	if !slices.Equal(doc.Dangling, want) {
		t.Fatalf("dangling %v, want %v", doc.Dangling, want)
	}
	// Cleared through the API, with the values that mean "no override".
	a.want(a.do("PUT", "/api/v1/pools/gone/addresses/192.0.2.9/mode", `{"mode":"down"}`), 404, "only be cleared")
	a.want(a.do("PUT", "/api/v1/pools/gone/addresses/192.0.2.9/mode", `{"mode":"auto"}`), 200)
	a.want(a.do("PUT", "/api/v1/domains/old.example.net/pin", `{"pool":""}`), 200)
	a.want(a.do("PUT", "/api/v1/domains/www.example.net/pin", `{"pool":""}`), 200)
	if doc = statusOf(t, a); len(doc.Dangling) != 0 {
		t.Fatalf("still dangling after clearing: %v", doc.Dangling)
	}
	a.want(a.do("PUT", "/api/v1/pools/gone/addresses/192.0.2.9/mode", `{"mode":"auto"}`), 404)
}

// Bodies are decoded strictly: field names are case-sensitive and may not repeat.
func TestOverrideBodiesStrict(t *testing.T) {
	ctl := newFakeControl(t, false)
	snap := snapshot(ctl.Store())
	srv := httptest.NewServer(NewHandler(Config{Token: "t", Control: ctl, Events: NewEvents(10), Snapshot: func() *policy.Snapshot { return snap }}))
	t.Cleanup(srv.Close)
	a := &apiClient{t: t, url: srv.URL}
	for _, body := range []string{`{"Mode":"down"}`, `{"mode":"up","mode":"down"}`, `{"mode":"down"} {}`, `{"mode":"down","x":1}`} {
		a.want(a.do("PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", body), 400)
	}
	if snap.Pools[0].Addrs[0].Mode.Get() != policy.ModeAuto {
		t.Fatal("a refused body took effect")
	}
}

// Go's zero time is how "unset" is stored: given as until (an empty date in a script), it
// would make the override permanent. It is refused, as from.
func TestParseWindowZeroTime(t *testing.T) {
	zero := "0001-01-01T00:00:00Z"
	for _, c := range []struct{ from, until *string }{{nil, &zero}, {&zero, nil}} {
		_, errs := ParseWindow(c.from, c.until, time.Now())
		if len(errs) == 0 {
			t.Fatalf("window from %v until %v accepted", c.from, c.until)
		}
	}
}
