package config

import (
	"strings"
	"testing"
)

// The JSON forms of https and srv: decoded, validated with the field named, and encoded
// back to what was written.
func TestServicesJSON(t *testing.T) {
	env := Env{Zones: []string{"gtm.example.net."}}
	pool := NewPool("p")
	pool.Addresses = []Address{NewAddress("192.0.2.1")}
	names := NewPool("n")
	names.Addresses = []Address{NewAddress("edge.example.org")}
	base := `"routes":[{"selector":"default","pools":["p"]}]`
	for _, tc := range []struct{ body, err string }{
		{`{` + base + `,"https":{"alpn":["h3","h2"]},"srv":[{"service":"_sip._udp","port":5060}]}`, ""},
		{`{` + base + `,"https":{"priority":2,"alpn":["h2"],"port":8443,"hints":false},"srv":[{"service":"_sip._udp","port":5060,"priority":10}]}`, ""},
		{`{` + base + `,"https":{"hints":"off"}}`, ""},
		{`{` + base + `,"https":{}}`, ""},
		{`{` + base + `,"https":{"ech":"AEn+"}}`, `https.ech`},
		{`{` + base + `,"https":{"mandatory":["alpn"]}}`, `https.mandatory`},
		{`{` + base + `,"https":{"alpn":[]}}`, `https.alpn`},
		{`{` + base + `,"https":{"alpn":[""]}}`, `https.alpn[0]`},
		{`{` + base + `,"https":{"port":0}}`, ""},
		{`{` + base + `,"https":{"port":65536}}`, `https.port`},
		{`{` + base + `,"https":{"port":-1}}`, `https.port`},
		{`{` + base + `,"https":{"priority":70000}}`, `https.priority`},
		{`{` + base + `,"https":{"hints":"maybe"}}`, `https.hints`},
		{`{` + base + `,"srv":[{"service":"sip._udp","port":5060}]}`, `srv[0].service`},
		{`{` + base + `,"srv":[{"service":"_sip.udp","port":5060}]}`, `srv[0].service`},
		{`{` + base + `,"srv":[{"service":"_sip._udp","port":0}]}`, `srv[0].port`},
		{`{` + base + `,"srv":[{"service":"_sip._udp","port":65536}]}`, `srv[0].port`},
		{`{` + base + `,"srv":[{"service":"_sip._udp","port":5060,"priority":-1}]}`, `srv[0].priority`},
		{`{` + base + `,"srv":[{"service":"_sip._udp","port":5060,"weight":3}]}`, `srv[0].weight`},
		{`{"routes":[{"selector":"default","pools":["n"]}],"https":{"alpn":["h3"],"hints":true}}`, `https.hints`},
		{`{"routes":[{"selector":"default","pools":["n"]}],"https":{"alpn":["h3"]}}`, ""},
	} {
		r, err := Decode(KindDomain, "www.gtm.example.net.", []byte(tc.body), 30)
		if err == nil {
			cfg := &Config{Pools: []*Pool{pool, names}, Domains: []*Domain{r.(*Domain)}}
			if errs := Validate(cfg, env); len(errs) > 0 {
				// The API's 400 lists each error with its field.
				if tc.err == "" || errs[0].Field != tc.err {
					t.Errorf("%s: %v (field %q), want field %q", tc.body, errs, errs[0].Field, tc.err)
				}
				continue
			}
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want it to name %s", tc.body, err, tc.err)
		case err == nil:
			out, err := Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(KindDomain, "www.gtm.example.net.", out, 30)
			if err != nil {
				t.Fatalf("%s: encoded as %s, which decodes to %v", tc.body, out, err)
			}
			again, _ := Encode(back)
			if string(again) != string(out) {
				t.Errorf("round trip: %s, then %s", out, again)
			}
		}
	}
}

// FuzzServicesJSON: any body decodes and validates without a panic, and what validates
// encodes to a body that decodes and validates again.
func FuzzServicesJSON(f *testing.F) {
	f.Add(`{"https":{"alpn":["h3","h2"],"port":443,"hints":"off"},"srv":[{"service":"_sip._udp","port":5060}]}`)
	f.Add(`{"https":{"priority":0,"alpn":[]},"srv":[{"service":"_a._b","port":1,"priority":65535}]}`)
	env := Env{Zones: []string{"gtm.example.net."}}
	pool := NewPool("p")
	pool.Addresses = []Address{NewAddress("192.0.2.1")}
	f.Fuzz(func(t *testing.T, body string) {
		r, err := Decode(KindDomain, "www.gtm.example.net.", []byte(body), 30)
		if err != nil {
			return
		}
		d := r.(*Domain)
		d.Routes = []Route{NewRoute("default", "p")}
		if Validate(&Config{Pools: []*Pool{pool}, Domains: []*Domain{d}}, env).Err() != nil {
			return
		}
		out, err := Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(KindDomain, "www.gtm.example.net.", out, 30)
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if errs := Validate(&Config{Pools: []*Pool{pool}, Domains: []*Domain{back.(*Domain)}}, env); len(errs) > 0 {
			t.Fatalf("%s: %v", out, errs)
		}
	})
}
