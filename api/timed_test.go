package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

func newOverridesAPI(t *testing.T) (*apiClient, *fakeControl, *policy.Snapshot, *Events) {
	t.Helper()
	ctl := newFakeControl(t, true)
	snap := snapshot(ctl.Store())
	ev := NewEvents(50)
	srv := httptest.NewServer(NewHandler(Config{Token: "t", Control: ctl, Events: ev, Snapshot: func() *policy.Snapshot { return snap }}))
	t.Cleanup(srv.Close)
	return &apiClient{t: t, url: srv.URL}, ctl, snap, ev
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Bad windows are refused with 400 and an errors list naming the field; nothing changes.
func TestTimedOverrideBadInput(t *testing.T) {
	a, ctl, snap, _ := newOverridesAPI(t)
	now := time.Now()
	past, soon, later := rfc(now.Add(-time.Minute)), rfc(now.Add(time.Hour)), rfc(now.Add(2*time.Hour))
	mode := "/api/v1/pools/hz/addresses/192.0.2.1/mode"
	pin := "/api/v1/domains/www.example.net/pin"
	pool := "/api/v1/pools/hz/mode"
	for _, tc := range []struct{ path, body, field, says string }{
		{mode, `{"mode":"down","until":"` + past + `"}`, "until", "not in the future"},
		{mode, `{"mode":"down","until":"tomorrow"}`, "until", "RFC 3339"},
		{mode, `{"mode":"down","from":"2026-13-01T00:00:00Z"}`, "from", "RFC 3339"},
		{mode, `{"mode":"down","from":"` + later + `","until":"` + soon + `"}`, "from", "before until"},
		{mode, `{"mode":"down","from":"` + soon + `","until":"` + soon + `"}`, "from", "before until"},
		{mode, `{"mode":"auto","until":"` + soon + `"}`, "until", "mode auto"},
		{mode, `{"mode":"down","until":12}`, "", "bad JSON"},
		{pin, `{"pool":"hz","until":"` + past + `"}`, "until", "not in the future"},
		{pin, `{"pool":"hz","from":"` + later + `","until":"` + soon + `"}`, "from", "before until"},
		{pin, `{"pool":"","from":"` + soon + `"}`, "from", `pool \"\"`},
		{pool, `{"mode":"down","until":"x"}`, "until", "RFC 3339"},
		{pool, `{"mode":"down","from":"` + later + `","until":"` + soon + `"}`, "from", "before until"},
		{pool, `{"mode":"sideways"}`, "", "expected auto, up or down"},
		{pool, `{}`, "", "missing"},
		{pool, `{"mode":"down","colour":1}`, "", "bad JSON"},
	} {
		r := a.do("PUT", tc.path, tc.body)
		a.want(r, 400, tc.says)
		if tc.field != "" {
			var body struct {
				Errors []struct{ Field, Message string }
			}
			json.Unmarshal([]byte(r.body), &body)
			if len(body.Errors) == 0 || body.Errors[0].Field != tc.field {
				t.Errorf("PUT %s %s: errors %+v, want field %q", tc.path, tc.body, body.Errors, tc.field)
			}
		}
	}
	a.want(a.do("PUT", "/api/v1/pools/nope/mode", `{"mode":"down"}`), 404)
	a.want(a.do("GET", "/api/v1/pools/nope/mode", ``), 404)
	if n := len(ctl.Store().Data().Entries); n != 0 || snap.Pools[0].Addrs[0].Mode.Get() != policy.ModeAuto {
		t.Fatalf("a refused write took effect: %d entries", n)
	}
}

// Timed and scheduled overrides through the API: stored at once, in force in their window
// only, shown in status with their from/until; the pool mode applies to addresses whose
// own mode is auto.
func TestTimedOverridesAndPoolMode(t *testing.T) {
	a, ctl, snap, ev := newOverridesAPI(t)
	now := time.Now()
	soon, later := rfc(now.Add(time.Hour)), rfc(now.Add(2*time.Hour))
	v4, v6 := snap.Pools[0].Addrs[0], snap.Pools[0].Addrs[1]

	a.want(a.do("PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"down","until":"`+soon+`"}`), 200, `"until": "`+soon+`"`, `"scheduled": false`)
	if v4.Mode.Get() != policy.ModeDown {
		t.Fatal("timed drain not in force")
	}
	a.want(a.do("PUT", "/api/v1/domains/www.example.net/pin", `{"pool":"hz","from":"`+soon+`","until":"`+later+`"}`), 200, `"scheduled": true`)
	if snap.Domains[0].Pin.Get() != "" {
		t.Fatal("a scheduled pin is in force before from")
	}
	doc := statusOf(t, a)
	ad := doc.Pools[0].Addresses[0]
	if ad.Mode != "down" || ad.ModeSource != "address" || ad.WindowDoc == nil || ad.Until == nil || rfc(*ad.Until) != soon {
		t.Fatalf("address status %+v %+v", ad, ad.WindowDoc)
	}
	if s := doc.Domains[0].Scheduled; s == nil || s.Pool != "hz" || rfc(s.From) != soon || rfc(*s.Until) != later || doc.Domains[0].Pinned != "" {
		t.Fatalf("domain status %+v", doc.Domains[0])
	}

	// Pool-wide: the address's own down stays, the other takes the pool's up... then down.
	a.want(a.do("PUT", "/api/v1/pools/hz/mode", `{"mode":"down","until":"`+later+`"}`), 200, `"in_force": "down"`)
	a.want(a.do("PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"up"}`), 200)
	if v4.Mode.Get() != policy.ModeUp || v6.Mode.Get() != policy.ModeDown {
		t.Fatalf("own up must win over the pool's down: %v %v", v4.Mode.Get(), v6.Mode.Get())
	}
	doc = statusOf(t, a)
	p := doc.Pools[0]
	if p.Mode != "down" || p.WindowDoc == nil || rfc(*p.Until) != later {
		t.Fatalf("pool status %+v", p)
	}
	if p.Addresses[0].ModeSource != "address" || p.Addresses[1].ModeSource != "pool" || p.Addresses[1].Mode != "down" || rfc(*p.Addresses[1].Until) != later {
		t.Fatalf("address sources %+v / %+v", p.Addresses[0], p.Addresses[1])
	}
	a.want(a.do("GET", "/api/v1/pools/hz/mode", ``), 200, `"mode": "down"`)
	a.want(a.do("DELETE", "/api/v1/pools/hz/mode", ``), 200, `"mode": "auto"`)
	if v6.Mode.Get() != policy.ModeAuto {
		t.Fatal("pool mode not cleared")
	}
	if _, ok := ctl.Store().Data().Entries[state.PoolModeKey("hz")]; ok {
		t.Fatal("pool mode key left")
	}
	var kinds []string
	for _, e := range ev.Since(0) {
		kinds = append(kinds, e.Kind+":"+e.Action)
	}
	if got := strings.Join(kinds, ","); got != "mode:set,pin:scheduled,mode:set,mode:set,mode:set" {
		t.Fatalf("events %s", got)
	}
}
