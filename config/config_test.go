package config

import (
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/state"
)

var env = Env{Zones: []string{"gtm.test."}}

// Omitted fields take the Corefile defaults, in lists too.
func TestDecodeDefaults(t *testing.T) {
	r, err := Decode(KindPool, "eu", []byte(`{"addresses":[{"address":"192.0.2.1"},{"address":"192.0.2.2","weight":5}]}`), 30)
	if err != nil {
		t.Fatal(err)
	}
	p := r.(*Pool)
	if p.LB != "weighted" || p.MinAvailable != 1 || p.Weight != 1 || p.Addresses[0].Weight != 1 || p.Addresses[1].Weight != 5 || p.Source != SourceAPI {
		t.Fatalf("defaults: %+v", p)
	}
	r, err = Decode(KindHealthCheck, "h", []byte(`{"protocol":"tcp","port":80,"interval":"1s"}`), 30)
	if err != nil {
		t.Fatal(err)
	}
	if h := r.(*HealthCheck); h.Fall != 3 || h.Rise != 2 || time.Duration(h.Timeout) != 500*time.Millisecond {
		t.Fatalf("healthcheck defaults: %+v", h)
	}
	r, err = Decode(KindDomain, "www.gtm.test.", []byte(`{"routes":[{"selector":"default","pools":["eu"]}]}`), 42)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.(*Domain); d.TTL != 42 || d.Routes[0].Select != "failover" {
		t.Fatalf("domain defaults: %+v", d)
	}
}

// Decoding is strict, and its errors name the resource and the field.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"addresses":[{"address":"192.0.2.1","weight":"heavy"}]}`, "pool eu: addresses[0].weight"},
		{`{"addresses":[{"address":"192.0.2.1"}],"lb":"weighted","LB":"all"}`, "LB"},
		{`{"addresses":[],"addresses":[]}`, "duplicate"},
		{`{"addresses":[{"address":"192.0.2.1","colour":1}]}`, "colour"},
		{`[]`, "pool eu"},
		{`{"addresses":[{"address":"192.0.2.1"}]} {}`, "pool eu"},
		{`{"location":{"lat":"north"}}`, "location.lat"},
	} {
		if _, err := Decode(KindPool, "eu", []byte(tc.body), 30); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want an error with %q", tc.body, err, tc.want)
		}
	}
}

// A decoded resource encodes back to the same settings.
func TestEncodeRoundTrip(t *testing.T) {
	in := `{"addresses":[{"address":"192.0.2.1","weight":3,"priority":1,"disabled":true}],"location":{"lat":50.11,"lon":8.68},"lb":"priority","answers":2,"healthcheck":"web","min_available":1,"weight":4}`
	r, err := Decode(KindPool, "eu", []byte(in), 30)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Encode(r)
	again, err := Decode(KindPool, "eu", b, 30)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Encode(again)
	if string(b) != string(b2) || !strings.Contains(string(b), `"answers":2`) {
		t.Fatalf("round trip: %s vs %s", b, b2)
	}
}

func TestValidateReturnsEveryError(t *testing.T) {
	r, _ := Decode(KindPool, "eu", []byte(`{"addresses":[{"address":"300.1.1.1"},{"address":"192.0.2.1","weight":0}],"lb":"nope"}`), 30)
	errs := Validate(&Config{Pools: []*Pool{r.(*Pool)}}, env)
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got %d: %v", len(errs), errs)
	}
	if errs[0].Field != "addresses[0].address" || errs[1].Field != "addresses[1].weight" || errs[2].Field != "lb" {
		t.Fatalf("fields: %s, %s, %s", errs[0].Field, errs[1].Field, errs[2].Field)
	}
}

func TestMergeAndReferences(t *testing.T) {
	base := &Config{}
	d := &state.Data{Entries: map[string]state.Entry{
		state.ConfigKey("pools", "eu"):              {Value: []byte(`{"addresses":[{"address":"192.0.2.1"}]}`), Revision: 1},
		state.ConfigKey("domains", "www.gtm.test."): {Value: []byte(`{"routes":[{"selector":"default","pools":["eu"]}]}`), Revision: 2},
	}}
	res, errs := Merge(base, env, 30, d)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := References(res, KindPool, "eu"); len(got) != 1 || got[0] != "domain www.gtm.test." {
		t.Fatalf("references: %v", got)
	}
	delete(d.Entries, state.ConfigKey("pools", "eu"))
	if _, errs := Merge(base, env, 30, d); len(errs) == 0 || !strings.Contains(errs.Error(), `unknown pool "eu"`) {
		t.Fatalf("a domain whose pool is gone: %v", errs)
	}
}

// FuzzDecode: any body for any kind decodes or fails with an error, never panics; what
// decodes validates without panicking and encodes back.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"addresses":[{"address":"192.0.2.1","weight":3}],"lb":"weighted","location":{"lat":1,"lon":2}}`,
		`{"protocol":"http","port":8080,"path":"/h","expect":"200-399","body":"ok","interval":"10s","timeout":"2s","fall":3,"rise":2}`,
		`{"ttl":30,"routes":[{"selector":"continent:EU,net:10.0.0.0/8","pools":["eu","us"],"select":"failover"}]}`,
		`{"addresses":[{"address":"x.example.org"}],"answers":2}`, `{}`, `[]`, `null`, "\x00",
		`{"protocol":"dns","query":"www.example.com AAAA","expect":"NOERROR,NXDOMAIN","answer":"^2001:db8::1$"}`,
		`{"protocol":"http","method":"POST","header":[{"name":"X-A","value":"1"},{"name":"Host","value":"h.example"}]}`,
		`{"protocol":"icmp","count":5,"loss":20}`,
		`{"protocol":"prometheus","url":"http://127.0.0.1:9090","query":"up{address=\"{{address}}\"}","expect":"< 0.05","max_rtt":"200ms","vantage":["eu","us"]}`,
		`{"protocol":"push"}`, `{"addresses":[{"address":"192.0.2.1","check_address":"10.0.0.1"}]}`,
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":["web","dns"],"require":"any"}`,
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"web","require":1}`,
		`{"addresses":[],"healthcheck":[1],"require":null}`,
		`{"addresses":[{"address":"192.0.2.1"}],"min_available":"50%","slow_start":"30s","lb":"hashed"}`,
		`{"min_available":"%"}`, `{"min_available":"-%"}`, `{"min_available":2.5}`, `{"min_available":null}`,
		`{"ttl":30,"ttl_degraded":5,"fallback":"nodata","failback":"5m","routes":[{"selector":"default","pools":["a"]}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, k := range Kinds {
			name := "r"
			if k == KindDomain {
				name = "r.gtm.test."
			}
			r, err := Decode(k, name, []byte(body), 30)
			if err != nil {
				continue
			}
			c := &Config{}
			c.Put(r)
			Validate(c, env)
			if _, err := Encode(r); err != nil {
				t.Fatalf("decoded %s but cannot encode it: %v", body, err)
			}
		}
	})
}

// A healthcheck's `source` is "source_address" in JSON ("source" is the API's corefile|api
// beside the settings); it must be an IP address without a zone.
func TestHealthCheckSourceAddress(t *testing.T) {
	body := `{"protocol":"tcp","port":80,"interval":"1s","source_address":"127.0.0.2"}`
	r, err := Decode(KindHealthCheck, "h", []byte(body), 30)
	if err != nil {
		t.Fatal(err)
	}
	h := r.(*HealthCheck)
	if h.SourceAddress != "127.0.0.2" || h.SourceAddr().String() != "127.0.0.2" {
		t.Fatalf("source address: %q %v", h.SourceAddress, h.SourceAddr())
	}
	if errs := Validate(&Config{HealthChecks: []*HealthCheck{h}}, env); len(errs) > 0 {
		t.Fatal(errs)
	}
	if b, _ := Encode(h); !strings.Contains(string(b), `"source_address":"127.0.0.2"`) || strings.Contains(string(b), `"source":`) {
		t.Fatalf("encoded: %s", b)
	}
	if b, _ := Encode(NewHealthCheck("none")); strings.Contains(string(b), "source") {
		t.Fatalf("an unset source address is omitted: %s", b)
	}
	if _, err := Decode(KindHealthCheck, "h", []byte(`{"protocol":"tcp","port":80,"source":"127.0.0.2"}`), 30); err == nil {
		t.Fatal(`"source" must not be accepted for the source address`)
	}
	for _, bad := range []string{"localhost", "127.0.0.2:53", "127.0.0.0/8", "fe80::1%eth0", "300.0.0.1"} {
		h := NewHealthCheck("h")
		h.Protocol, h.Port, h.SourceAddress = "tcp", 80, bad
		h.Normalize()
		errs := Validate(&Config{HealthChecks: []*HealthCheck{h}}, env)
		want := `healthcheck h: source "` + bad + `": expected a local IP address such as 127.0.0.2`
		if len(errs) != 1 || errs[0].Field != "source_address" || errs[0].Message != want {
			t.Errorf("source %q: %v; want one error on source_address: %s", bad, errs, want)
		}
	}
	h = NewHealthCheck("h")
	h.SourceAddress = "::ffff:127.0.0.2"
	if h.SourceAddr().String() != "127.0.0.2" {
		t.Fatalf("an IPv4-mapped source is its IPv4 address: %v", h.SourceAddr())
	}
}

// Issue 19 item 6: a pool of names that leads back to its own domain is refused.
func TestCNAMELoopRefused(t *testing.T) {
	dec := func(k Kind, name, body string) Resource {
		r, err := Decode(k, name, []byte(body), 30)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	c := &Config{}
	c.Put(dec(KindPool, "self", `{"addresses":[{"address":"a.gtm.test"}]}`))
	c.Put(dec(KindPool, "tob", `{"addresses":[{"address":"b.gtm.test"}]}`))
	c.Put(dec(KindPool, "ip", `{"addresses":[{"address":"192.0.2.1"}]}`))
	c.Put(dec(KindDomain, "a.gtm.test.", `{"routes":[{"selector":"default","pools":["tob"]}]}`))
	c.Put(dec(KindDomain, "b.gtm.test.", `{"routes":[{"selector":"default","pools":["self"]}]}`))
	errs := Validate(c, env)
	if len(errs) != 2 || !strings.Contains(errs.Error(), "lead back to a.gtm.test.: a CNAME loop") {
		t.Fatalf("a -> b -> a: %v", errs)
	}
	c.Put(dec(KindDomain, "b.gtm.test.", `{"routes":[{"selector":"default","pools":["ip"]}]}`))
	if errs := Validate(c, env); len(errs) != 0 {
		t.Fatalf("a chain that ends: %v", errs)
	}
}
