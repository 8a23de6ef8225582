package gtm

import (
	"regexp"
	"slices"
	"testing"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

const checksConfig = `gtm gtm.example.net {
    healthcheck resolver {
        protocol dns
        port 5353
        query www.example.com AAAA
        expect NOERROR NXDOMAIN
        answer ^2001:db8::1$
        interval 5s
    }
    healthcheck web {
        protocol http
        method post
        header X-Token "s3 cret"
        header Host www.example.com
    }
    healthcheck ping {
        protocol icmp
        count 5
        loss 20
    }
    pool a {
        address 127.0.0.1
        address 127.0.0.2 disabled
        healthcheck resolver web ping require 2
    }
    pool b {
        address 127.0.0.3
        healthcheck web
    }
}`

func TestParseChecks(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", checksConfig))
	if err != nil {
		t.Fatal(err)
	}
	r := template(b.res.HealthCheck("resolver"))
	if r.Protocol != healthcheck.DNS || r.Port != 5353 || r.Query != "www.example.com." || r.QType != dns.TypeAAAA ||
		!slices.Equal(r.Rcodes, []int{dns.RcodeSuccess, dns.RcodeNameError}) || r.Answer == nil || r.Answer.String() != "^2001:db8::1$" || r.Expect != nil {
		t.Fatalf("resolver: %+v", r)
	}
	w := template(b.res.HealthCheck("web"))
	if w.Method != "POST" || !slices.Equal(w.Headers, []healthcheck.Header{{Name: "X-Token", Value: "s3 cret"}, {Name: "Host", Value: "www.example.com"}}) {
		t.Fatalf("web: %+v", w)
	}
	if p := template(b.res.HealthCheck("ping")); p.Count != 5 || p.Loss != 20 {
		t.Fatalf("ping: %+v", p)
	}
	a := b.res.Pool("a")
	if !slices.Equal(a.HealthCheck, config.Checks{"resolver", "web", "ping"}) || a.Require != "2" || a.RequireOf() != 2 {
		t.Fatalf("pool a: %v require %q", a.HealthCheck, a.Require)
	}

	// The JSON form says the same and decodes back to it; one check is written as a string.
	for _, res := range []config.Resource{b.res.HealthCheck("resolver"), b.res.HealthCheck("web"), b.res.HealthCheck("ping"), a, b.res.Pool("b")} {
		body, err := config.Encode(res)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Decode(res.Kind(), config.MetaOf(res).Name, body, 30)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		again, _ := config.Encode(back)
		if string(again) != string(body) {
			t.Fatalf("round trip: %s became %s", body, again)
		}
		t.Logf("%s", body)
	}
	if body, _ := config.Encode(b.res.Pool("b")); !regexp.MustCompile(`"healthcheck":"web"`).Match(body) {
		t.Fatalf("one check is not written as a string: %s", body)
	}
	if body, _ := config.Encode(a); !regexp.MustCompile(`"healthcheck":\["resolver","web","ping"\],"require":2`).Match(body) {
		t.Fatalf("several checks: %s", body)
	}
	for in, want := range map[string]config.Checks{
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"web"}`:         {"web"},
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":["web","dns"]}`: {"web", "dns"},
		`{"addresses":[{"address":"192.0.2.1"}],"healthcheck":""}`:            nil,
		`{"addresses":[{"address":"192.0.2.1"}]}`:                             nil,
	} {
		r, err := config.Decode(config.KindPool, "x", []byte(in), 30)
		if err != nil || !slices.Equal(r.(*config.Pool).HealthCheck, want) {
			t.Errorf("%s: %v, %v", in, r, err)
		}
	}
	if _, err := config.Decode(config.KindPool, "x", []byte(`{"addresses":[],"healthcheck":3}`), 30); err == nil {
		t.Error("a number as healthcheck decoded")
	}
}
