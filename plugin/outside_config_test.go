package gtm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

const outsideConfig = `gtm gtm.example.net {
    healthcheck errors {
        protocol prometheus
        url http://127.0.0.1:9090
        query sum(rate(http_errors_total{address="{{address}}"}[1m])) / sum(rate(http_requests_total{address="{{address}}"}[1m]))
        expect < 0.05
        interval 15s
    }
    healthcheck up {
        protocol prometheus
        url https://prom.example.net/
        query "up{job=\"web\"}"
        expect >=1
        tls_insecure
    }
    healthcheck fast {
        protocol tcp
        port 443
        max_rtt 150ms
    }
    healthcheck deploy {
        protocol push
    }
    pool a {
        address 192.0.2.10 check_address 10.0.0.10 weight 2
        address 192.0.2.11
        healthcheck errors fast deploy require 2
    }
}`

func TestParseOutside(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", outsideConfig))
	if err != nil {
		t.Fatal(err)
	}
	e := template(b.res.HealthCheck("errors"))
	if e.Protocol != healthcheck.Prometheus || e.URL != "http://127.0.0.1:9090" || !strings.Contains(e.PromQL, `http_errors_total{address="{{address}}"}[1m])) / sum(`) ||
		e.Cmp != (healthcheck.Comparison{Op: "<", Value: 0.05}) || e.Expect != nil || e.Interval != 15*time.Second {
		t.Fatalf("errors: %+v", e)
	}
	if u := template(b.res.HealthCheck("up")); u.PromQL != `up{job="web"}` || u.Cmp.String() != ">= 1" || !u.TLSInsecure {
		t.Fatalf("up: %+v", u)
	}
	if f := template(b.res.HealthCheck("fast")); f.MaxRTT != 150*time.Millisecond {
		t.Fatalf("fast: %+v", f)
	}
	a := b.res.Pool("a")
	if a.Addresses[0].CheckAddress != "10.0.0.10" || a.Addresses[0].Weight != 2 || a.Addresses[0].CheckAddr() != "10.0.0.10" || a.Addresses[1].CheckAddr() != "" {
		t.Fatalf("addresses: %+v", a.Addresses)
	}
	// The JSON forms say the same and decode back to it.
	for _, res := range []config.Resource{b.res.HealthCheck("errors"), b.res.HealthCheck("fast"), b.res.HealthCheck("deploy"), a} {
		body, err := config.Encode(res)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Decode(res.Kind(), config.MetaOf(res).Name, body, 30)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if again, _ := config.Encode(back); string(again) != string(body) {
			t.Fatalf("round trip: %s became %s", body, again)
		}
		t.Logf("%s", body)
	}
	if body, _ := config.Encode(a); !strings.Contains(string(body), `"address":"192.0.2.10","weight":2,"priority":0,"disabled":false,"check_address":"10.0.0.10"`) {
		t.Fatalf("pool JSON: %s", body)
	}
	if body, _ := config.Encode(b.res.HealthCheck("fast")); !strings.Contains(string(body), `"max_rtt":"150ms"`) {
		t.Fatalf("max_rtt JSON: %s", body)
	}

	// vantage with a cluster.
	withCluster := strings.Replace(outsideConfig, "gtm gtm.example.net {", "gtm gtm.example.net {\n    cluster {\n        endpoint http://127.0.0.1:2379\n        region eu\n    }", 1)
	withCluster = strings.Replace(withCluster, "max_rtt 150ms", "max_rtt 150ms\n        vantage eu us", 1)
	b, err = parse(caddy.NewTestController("dns", withCluster))
	if err != nil {
		t.Fatal(err)
	}
	if v := template(b.res.HealthCheck("fast")).Vantage; !slices.Equal(v, []string{"eu", "us"}) {
		t.Fatalf("vantage %v", v)
	}
}

func TestParseOutsideErrors(t *testing.T) {
	prom := "healthcheck p {\n protocol prometheus\n url http://127.0.0.1:9090\n query up\n expect == 1\n"
	cases := []struct {
		name, body string
		line       int
		want       string
	}{
		{"expect that does not parse", prom + " expect about 1\n}", 7, `expect "about 1": expected OP VALUE with OP one of <, <=, >, >=, ==, !=`},
		{"expect value not a number", prom + " expect < lots\n}", 7, `expect "< lots": "lots" is not a number`},
		{"prometheus without url", "healthcheck p {\n protocol prometheus\n query up\n expect > 0\n}", 2, "protocol prometheus needs a url"},
		{"prometheus bad url", "healthcheck p {\n protocol prometheus\n url 127.0.0.1:9090\n query up\n expect > 0\n}", 4, `url "127.0.0.1:9090": expected an http:// or https:// URL`},
		{"prometheus without query", "healthcheck p {\n protocol prometheus\n url http://127.0.0.1:9090\n expect > 0\n}", 2, "protocol prometheus needs a query"},
		{"prometheus without expect", "healthcheck p {\n protocol prometheus\n url http://127.0.0.1:9090\n query up\n}", 2, "protocol prometheus needs expect OP VALUE"},
		{"prometheus with a port", prom + " port 9090\n}", 7, "port does not apply to prometheus"},
		{"url on http", "healthcheck h {\n protocol http\n url http://127.0.0.1:9090\n}", 4, "url applies only to prometheus"},
		{"max_rtt not a duration", "healthcheck h {\n protocol tcp\n port 80\n max_rtt fast\n}", 5, `max_rtt "fast": expected a positive duration`},
		{"max_rtt above timeout", "healthcheck h {\n protocol tcp\n port 80\n timeout 1s\n max_rtt 1s\n}", 6, "max_rtt 1s must be less than timeout 1s"},
		{"max_rtt on push", "healthcheck h {\n protocol push\n max_rtt 1s\n}", 4, "max_rtt does not apply to push"},
		{"port on push", "healthcheck h {\n protocol push\n port 80\n}", 4, "port does not apply to push"},
		{"vantage without cluster", "healthcheck h {\n protocol tcp\n port 80\n vantage eu\n}", 5, "vantage needs cluster"},
		{"vantage without regions", "healthcheck h {\n protocol tcp\n port 80\n vantage\n}", 5, "vantage: expected REGION [REGION...]"},
		{"check_address in a pool of names", "pool a {\n address www.example.org check_address 10.0.0.1\n}", 3, "address www.example.org: check_address applies only to IP addresses, not to a pool of domain names"},
		{"check_address not an IP", "pool a {\n address 192.0.2.1 check_address inside.example.org\n}", 3, `check_address "inside.example.org": expected an IPv4 or IPv6 address`},
		{"check_address without IP", "pool a {\n address 192.0.2.1 check_address\n}", 3, "check_address: expected an IP address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := "gtm gtm.example.net {\n" + tc.body + "\n}"
			_, err := parse(caddy.NewTestController("dns", input))
			if err == nil {
				t.Fatalf("no error for\n%s", input)
			}
			for _, w := range []string{"Testfile:" + itoa(tc.line) + " ", tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// The same rules and words for the API's JSON.
	for body, want := range map[string]string{
		`{"protocol":"prometheus","url":"http://127.0.0.1:9090","query":"up","expect":"about 1"}`: `healthcheck p: expect "about 1": expected OP VALUE`,
		`{"protocol":"tcp","port":80,"vantage":["eu"]}`:                                           "healthcheck p: vantage needs cluster",
		`{"protocol":"push","max_rtt":"1s"}`:                                                      "healthcheck p: max_rtt does not apply to push",
	} {
		r, err := config.Decode(config.KindHealthCheck, "p", []byte(body), 30)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		errs := config.Validate(&config.Config{HealthChecks: []*config.HealthCheck{r.(*config.HealthCheck)}}, config.Env{Zones: []string{"gtm.example.net."}})
		if len(errs) == 0 || !strings.Contains(errs.Error(), want) {
			t.Errorf("%s: %v, want %q", body, errs, want)
		}
	}
}
