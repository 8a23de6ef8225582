package gtm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
)

const goodConfig = `gtm gtm.example.net {
    ttl 60
    ecs off
    fallthrough
    healthcheck web {
        protocol http
        port 8080
        path /healthz
        host www.example.com
        expect 200,204
        body ^ok
        interval 5s
        timeout 1s
        fall 2
        rise 3
    }
    healthcheck ping {
        protocol icmp
    }
    pool hz {
        address 192.0.2.1 weight 3
        address 192.0.2.2 priority 2 disabled
        address 2001:db8::1
        lb priority
        answers 2
        min_available 2
        healthcheck web
        location 30.27 120.15
        weight 5
    }
    pool cn {
        address edge.cdn.example.org
        healthcheck ping
    }
    domain www.gtm.example.net {
        route net:203.0.113.0/24,net:2001:db8::/32 cn hz select weighted
        route default hz cn
        ttl 10
    }
}`

func TestParseGood(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if b.ttl != 60 || b.ecs || len(b.zones) != 1 || b.zones[0] != "gtm.example.net." {
		t.Fatalf("block settings: %+v", b)
	}
	w := template(b.res.HealthCheck("web"))
	if w.Port != 8080 || w.Path != "/healthz" || w.Host != "www.example.com" || w.Interval != 5*time.Second ||
		w.Timeout != time.Second || w.Fall != 2 || w.Rise != 3 || w.Body == nil || len(w.Expect) != 2 {
		t.Fatalf("healthcheck web: %+v", w)
	}
	hz := b.res.Pools[0]
	if hz.LB != "priority" || hz.Answers != 2 || hz.MinAvailable != 2 || hz.Location == nil || hz.Weight != 5 || len(hz.Addresses) != 3 {
		t.Fatalf("pool hz: %+v", hz)
	}
	if a := hz.Addresses[1]; a.Priority != 2 || !a.Disabled || a.Weight != 1 {
		t.Fatalf("address 2: %+v", a)
	}
	if a := hz.Addresses[0]; a.Weight != 3 || a.Address != "192.0.2.1" {
		t.Fatalf("address 1: %+v", a)
	}
	cs := staticSnapshot(b, b.res)
	if cn := cs.Pool("cn"); !cn.CNAME || cn.Addrs[0].Target != "edge.cdn.example.org." {
		t.Fatalf("pool cn: %+v", cn)
	}
	d := cs.Domain("www.gtm.example.net.")
	if d == nil || d.TTL != 10 || len(d.Routes) != 2 {
		t.Fatalf("domain: %+v", d)
	}
	if r := d.Routes[0]; r.Select != policy.SelectWeighted || len(r.Pools) != 2 || len(r.Selector.Nets) != 2 {
		t.Fatalf("route: %+v", r)
	}
}

// `source` reaches the template of every protocol; another source is another prober.
func TestParseSource(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", `gtm gtm.example.net {
    healthcheck web {
        protocol https
        source 127.0.0.2
    }
    healthcheck port {
        protocol tcp
        port 53
        source ::1
    }
    healthcheck ping {
        protocol icmp
        source 127.0.0.3
    }
    healthcheck plain {
        protocol icmp
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"web": "127.0.0.2", "port": "::1", "ping": "127.0.0.3", "plain": "invalid IP"} {
		h := b.res.HealthCheck(name)
		if got := template(h).Source.String(); got != want {
			t.Errorf("healthcheck %s: source %s, want %s", name, got, want)
		}
		if name != "plain" && (h.SourceAddress != want || h.Lines["source"] == 0) {
			t.Errorf("healthcheck %s: %q, line %d", name, h.SourceAddress, h.Lines["source"])
		}
	}
	ping, plain := template(b.res.HealthCheck("ping")), template(b.res.HealthCheck("plain"))
	if ping.Fingerprint() == plain.Fingerprint() {
		t.Fatal("a source must change the template's identity")
	}
}

// Every broken config names the line and the offending token and says what was expected.
func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	cases := []struct {
		name, body string
		line       int
		want       []string
	}{
		{"unknown directive", "bogus 1", 2, []string{`"bogus"`, "expected"}},
		{"unknown pool", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default nope\n}", 6, []string{`"nope"`, "pools: a"}},
		{"unknown template", "pool a {\n address 192.0.2.1\n healthcheck nope\n}", 4, []string{`"nope"`, "none defined"}},
		{"duplicate pool", "pool a {\n address 192.0.2.1\n}\npool a {\n address 192.0.2.2\n}", 5, []string{"duplicate", `"a"`}},
		{"duplicate template", "healthcheck h {\n protocol tcp\n port 1\n}\nhealthcheck h {\n protocol tcp\n port 1\n}", 6, []string{"duplicate", `"h"`}},
		{"duplicate domain", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default a\n}\ndomain WWW.gtm.example.net {\n route default a\n}", 8, []string{"duplicate"}},
		{"bad address", "pool a {\n address 192.0.2.300\n}", 3, []string{`"192.0.2.300"`, "expected an IPv4 or IPv6 address"}},
		{"mixed pool", "pool a {\n address 192.0.2.1\n address x.example.org\n}", 4, []string{"either IP addresses or domain names"}},
		{"bad selector", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route country:Germany a\n}", 6, []string{`"country:Germany"`, "ISO 3166-1"}},
		{"bad net", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route net:10.0.0.0/40 a\n}", 6, []string{"net:10.0.0.0/40", "CIDR"}},
		{"api address with a scheme", "api http://127.0.0.1:8080", 2, []string{`"http://127.0.0.1:8080"`, "HOST:PORT"}},
		{"select all mixing addresses and names", "pool a {\n address 192.0.2.1\n}\npool b {\n address x.example.org\n}\ndomain www.gtm.example.net {\n route default a b select all\n}", 9, []string{"select all cannot mix", "(a)", "(b)"}},
		{"single-label name", "pool a {\n address localhost\n}", 3, []string{`"localhost"`, "at least two labels"}},
		{"zero weight", "pool a {\n address 192.0.2.1 weight 0\n}", 3, []string{`"0"`, "from 1"}},
		{"negative weight", "pool a {\n address 192.0.2.1\n weight -2\n}", 4, []string{`"-2"`, "from 1"}},
		{"timeout >= interval", "healthcheck h {\n protocol http\n interval 2s\n timeout 2s\n}", 5, []string{"timeout 2s must be less than interval 2s"}},
		{"tcp without port", "healthcheck h {\n protocol tcp\n}", 2, []string{"tcp needs a port"}},
		{"bad protocol", "healthcheck h {\n protocol udp\n}", 3, []string{`"udp"`, "http, https, tcp, icmp, dns, prometheus or push"}},
		{"bad expect", "healthcheck h {\n protocol http\n expect 700\n}", 4, []string{`"700"`}},
		{"bad regexp", "healthcheck h {\n protocol http\n body (\n}", 4, []string{"body", "("}},
		{"domain outside zones", "pool a {\n address 192.0.2.1\n}\ndomain www.example.com {\n route default a\n}", 5, []string{"www.example.com", "outside the zones"}},
		{"bad select", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default a select closest\n}", 6, []string{`"closest"`, "failover"}},
		{"geo selector without db", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route country:DE a\n}", 6, []string{"geoip database"}},
		{"asn selector without db", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route asn:4134 a\n}", 6, []string{"asn database"}},
		{"bad ttl", "ttl forever", 2, []string{`"forever"`}},
		{"bad ecs", "ecs maybe", 2, []string{`"maybe"`, "on or off"}},
		{"empty token", "api 127.0.0.1:8080 {\n token_file " + empty + "\n}", 3, []string{empty, "empty"}},
		{"bad api address", "api localhost", 2, []string{`"localhost"`, "HOST:PORT"}},
		{"unknown pool directive", "pool a {\n address 192.0.2.1\n color blue\n}", 4, []string{`"color"`}},
		{"pool without address", "pool a {\n lb all\n}", 2, []string{"no address"}},
		{"min_available above addresses", "pool a {\n address 192.0.2.1\n min_available 2\n}", 2, []string{"min_available 2"}},
		{"domain without route", "domain www.gtm.example.net {\n ttl 5\n}", 2, []string{"no route"}},
		{"bad lb", "pool a {\n address 192.0.2.1\n lb roundrobin\n}", 4, []string{`"roundrobin"`}},
		{"bad location", "pool a {\n address 192.0.2.1\n location 91 0\n}", 4, []string{"latitude"}},
		{"bad address option", "pool a {\n address 192.0.2.1 heavy\n}", 3, []string{`"heavy"`}},
		{"bad port", "healthcheck h {\n protocol tcp\n port 70000\n}", 4, []string{`"70000"`}},
		{"in-zone ns without address", "ns ns1.gtm.example.net", 2, []string{"ns1.gtm.example.net", "needs its addresses"}},
		{"bad ns address", "ns ns1.example.org 300.1.1.1", 2, []string{`"300.1.1.1"`}},
		{"soa without rname", "soa ns1.example.org", 2, []string{"soa: expected MNAME RNAME"}},
		{"expect on tcp", "healthcheck h {\n protocol tcp\n port 80\n expect 200\n}", 2, []string{"only to http"}},
		{"bad source", "healthcheck h {\n protocol tcp\n port 80\n source localhost\n}", 5, []string{`healthcheck h: source "localhost": expected a local IP address such as 127.0.0.2`}},
		{"source with a zone", "healthcheck h {\n protocol icmp\n source fe80::1%eth0\n}", 4, []string{`source "fe80::1%eth0"`, "local IP address"}},
		{"two sources in one", "healthcheck h {\n protocol icmp\n source 127.0.0.2 127.0.0.3\n}", 4, []string{"source: expected one argument, got 2"}},
		{"unknown healthcheck directive", "healthcheck h {\n protocol tcp\n sauce 127.0.0.2\n}", 4, []string{`"sauce"`, "tls_insecure, method, header, query, answer, count, loss, source, interval"}},
		{"bad rcode line", "healthcheck h {\n protocol dns\n query www.example.com\n expect NOERROR\n expect NOPE\n}", 6, []string{`expect "NOPE": unknown rcode "NOPE"`}},
		{"dns without query line", "healthcheck h {\n protocol dns\n}", 2, []string{"protocol dns needs a query"}},
		{"query without name", "healthcheck h {\n protocol dns\n query\n}", 4, []string{"healthcheck h: query: expected NAME [TYPE]"}},
		{"header without value", "healthcheck h {\n protocol http\n header X-A\n}", 4, []string{"healthcheck h: header: expected NAME VALUE"}},
		{"count zero", "healthcheck h {\n protocol icmp\n count 0\n}", 4, []string{`healthcheck h: count "0": expected a number from 1 to 100`}},
		{"loss word", "healthcheck h {\n protocol icmp\n loss some\n}", 4, []string{`healthcheck h: loss "some": expected a number`}},
		{"require not last", "healthcheck h {\n protocol icmp\n}\npool a {\n address 192.0.2.1\n healthcheck h require any h\n}", 7, []string{"pool a: healthcheck: require: expected require all|any|N at the end"}},
		{"require without names", "pool a {\n address 192.0.2.1\n healthcheck require any\n}", 4, []string{"pool a: healthcheck: expected NAME [NAME...] [require all|any|N]"}},
		{"require above checks", "healthcheck h {\n protocol icmp\n}\nhealthcheck g {\n protocol icmp\n}\npool a {\n address 192.0.2.1\n healthcheck h g require 3\n}", 10, []string{"pool a: require 3 exceeds its 2 healthchecks"}},
		{"fallback to an unknown pool", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default a\n fallback zz\n}", 7, []string{`fallback "zz"`, "pools: a"}},
		{"failback not a duration", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default a\n failback soon\n}", 7, []string{`failback "soon"`, "auto, manual or a duration"}},
		{"min_available share out of range", "pool a {\n address 192.0.2.1\n min_available 101%\n}", 4, []string{`min_available "101%"`, "1% to 100%"}},
		{"min_available not a share", "pool a {\n address 192.0.2.1\n min_available half\n}", 4, []string{`min_available "half"`, "50%"}},
		{"slow_start not a duration", "pool a {\n address 192.0.2.1\n slow_start 5\n}", 4, []string{`slow_start "5"`, "duration"}},
		{"ttl degraded not a number", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default a\n ttl 30 short\n}", 7, []string{`"short"`, "DEGRADED"}},
		{"ttl with three arguments", "pool a {\n address 192.0.2.1\n}\ndomain www.gtm.example.net {\n route default a\n ttl 30 5 1\n}", 7, []string{"ttl: expected SECONDS [DEGRADED]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := "gtm gtm.example.net {\n" + tc.body + "\n}"
			_, err := parse(caddy.NewTestController("dns", input))
			if err == nil {
				t.Fatalf("no error for\n%s", input)
			}
			msg := err.Error()
			want := append([]string{"Testfile:" + itoa(tc.line) + " "}, tc.want...)
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func FuzzParse(f *testing.F) {
	f.Add(goodConfig)
	f.Add(outsideConfig)
	f.Add("gtm {\n pool a {\n address 192.0.2.1\n }\n}")
	f.Add("gtm example.org {\n domain a.example.org {\n route default\n }\n}")
	f.Add("gtm . {\n healthcheck h {\n protocol https\n expect 200-299,304\n }\n}")
	f.Add("gtm . {\n healthcheck d {\n protocol dns\n query a.example AAAA\n expect NOERROR NXDOMAIN\n answer ^x$\n }\n healthcheck h {\n protocol http\n method HEAD\n header X-A 1 2\n }\n healthcheck i {\n protocol icmp\n count 3\n loss 33\n }\n pool p {\n address 192.0.2.1\n healthcheck d h i require 2\n }\n}")
	f.Add("gtm . {\n pool a {\n address 192.0.2.1\n min_available 50%\n slow_start 1s\n lb hashed\n }\n domain a. {\n route default a\n ttl 30 5\n fallback a\n failback manual\n }\n}")
	f.Fuzz(func(t *testing.T, input string) {
		// Must never panic; errors are fine.
		parse(caddy.NewTestController("dns", input))
	})
}

func TestShadowedRoutes(t *testing.T) {
	cfg, err := parse(caddy.NewTestController("dns", `gtm gtm.example.net {
    pool a {
        address 192.0.2.1
    }
    domain www.gtm.example.net {
        route net:203.0.113.0/24,net:2001:db8::/32 a
        route default a
        route net:203.0.113.7/24 a
        route net:2001:db8::/32,net:198.51.100.0/24 a
        route default a
        route net:198.51.100.0/24 a
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, w := range config.Warnings(cfg.res) {
		if strings.Contains(w.Message, "never answers") {
			got = append(got, w.Line)
		}
	}
	// Lines (from 1): the /24 written with host bits (8), the second default (10) and
	// 198.51.100.0/24 again (11); line 9 adds 198.51.100.0/24 and is live.
	want := []int{8, 10, 11}
	if len(got) != len(want) {
		t.Fatalf("shadowed routes on lines %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("shadowed routes on lines %v, want %v", got, want)
		}
	}
}

// Only an explicit timeout must be shorter than the interval; with a short interval and no
// timeout the default is half the interval instead of an error about a value nobody wrote.
func TestDefaultTimeoutFollowsShortInterval(t *testing.T) {
	for _, tc := range []struct {
		body string
		want time.Duration
	}{
		{"interval 1s", 500 * time.Millisecond},
		{"interval 2s", time.Second},
		{"interval 3s", 2 * time.Second},
		{"interval 1s\n timeout 900ms", 900 * time.Millisecond},
	} {
		cfg, err := parse(caddy.NewTestController("dns", "gtm gtm.example.net {\nhealthcheck h {\n protocol tcp\n port 80\n "+tc.body+"\n}\n}"))
		if err != nil {
			t.Fatalf("%q: %v", tc.body, err)
		}
		if got := time.Duration(cfg.res.HealthCheck("h").Timeout); got != tc.want {
			t.Errorf("%q: timeout %s, want %s", tc.body, got, tc.want)
		}
	}
}

// Relative FILE arguments are read below the server block's `root`, as the file plugin does.
func TestRelativeFilesUnderRoot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(" s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := caddy.NewTestController("dns", "gtm gtm.example.net {\napi 127.0.0.1:0 {\n token_file token\n state state.json\n}\n}")
	dnsserver.GetConfig(c).Root = dir
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.api.token != "s3cret" || cfg.api.state != filepath.Join(dir, "state.json") {
		t.Fatalf("token %q, state %q: relative paths not resolved under root %s", cfg.api.token, cfg.api.state, dir)
	}
}

// One validator: the same broken resource written in the Corefile and as API JSON fails with
// the same words (the Corefile adds file:line, the API names the resource).
func TestSameErrorsFromCorefileAndJSON(t *testing.T) {
	base := "healthcheck web {\n protocol http\n}\npool core {\n address 192.0.2.100\n}\n"
	for _, tc := range []struct {
		name     string
		corefile string // appended to base inside the gtm block
		kind     config.Kind
		resName  string
		json     string
		want     string
	}{
		{"bad address", "pool eu {\n address 300.1.1.1\n}", config.KindPool, "eu", `{"addresses":[{"address":"300.1.1.1"}]}`, `pool eu: address "300.1.1.1": not an IP address or domain name`},
		{"ip with a final dot", "pool eu {\n address 127.0.71.1.\n}", config.KindPool, "eu", `{"addresses":[{"address":"127.0.71.1."}]}`, `pool eu: address "127.0.71.1.": an IP address takes no final dot (write 127.0.71.1)`},
		{"ipv6 with a final dot", "pool eu {\n address 2001:db8::1.\n}", config.KindPool, "eu", `{"addresses":[{"address":"2001:db8::1."}]}`, `pool eu: address "2001:db8::1.": an IP address takes no final dot (write 2001:db8::1)`},
		{"mixed", "pool eu {\n address 192.0.2.1\n address x.example.org\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"},{"address":"x.example.org"}]}`, `pool eu: address "x.example.org": a pool holds either IP addresses or domain names, not both`},
		{"zero weight", "pool eu {\n address 192.0.2.1 weight 0\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1","weight":0}]}`, `pool eu: address 192.0.2.1: weight "0": expected a number from 1 to 1000000`},
		{"duplicate address", "pool eu {\n address 192.0.2.1\n address 192.0.2.1\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"},{"address":"192.0.2.1"}]}`, `pool eu: duplicate address "192.0.2.1"`},
		{"unknown template", "pool eu {\n address 192.0.2.1\n healthcheck nope\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"nope"}`, `pool eu: unknown healthcheck "nope" (healthchecks: web)`},
		{"min_available", "pool eu {\n address 192.0.2.1\n min_available 2\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"min_available":2}`, `pool eu: min_available 2 exceeds its 1 addresses`},
		{"cname answers", "pool eu {\n address x.example.org\n answers 2\n}", config.KindPool, "eu", `{"addresses":[{"address":"x.example.org"}],"answers":2}`, `pool eu: a pool of domain names answers one CNAME; answers must be 1`},
		{"bad lb", "pool eu {\n address 192.0.2.1\n lb roundrobin\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"lb":"roundrobin"}`, `pool eu: lb "roundrobin": expected all, weighted, priority, random, fastest or hashed`},
		{"tcp port", "healthcheck h {\n protocol tcp\n}", config.KindHealthCheck, "h", `{"protocol":"tcp"}`, `healthcheck h: protocol tcp needs a port`},
		{"timeout", "healthcheck h {\n protocol http\n interval 2s\n timeout 2s\n}", config.KindHealthCheck, "h", `{"protocol":"http","interval":"2s","timeout":"2s"}`, `healthcheck h: timeout 2s must be less than interval 2s`},
		{"bad protocol", "healthcheck h {\n protocol udp\n}", config.KindHealthCheck, "h", `{"protocol":"udp"}`, `healthcheck h: protocol "udp": expected http, https, tcp, icmp, dns, prometheus or push`},
		{"bad expect", "healthcheck h {\n protocol http\n expect 700\n}", config.KindHealthCheck, "h", `{"protocol":"http","expect":"700"}`, `healthcheck h: expect "700"`},
		{"body on tcp", "healthcheck h {\n protocol tcp\n port 1\n body ok\n}", config.KindHealthCheck, "h", `{"protocol":"tcp","port":1,"body":"ok"}`, `healthcheck h: path, host, expect and body apply only to http and https`},
		{"unknown pool", "domain www.gtm.test {\n route default nope\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"default","pools":["nope"]}]}`, `route: unknown pool "nope" (pools: core)`},
		{"bad selector", "domain www.gtm.test {\n route country:Germany core\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"country:Germany","pools":["core"]}]}`, `"country:Germany"`},
		{"geo without db", "domain www.gtm.test {\n route country:DE core\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"country:DE","pools":["core"]}]}`, `route country:DE: continent, country and region selectors need a geoip database`},
		{"bad select", "domain www.gtm.test {\n route default core select closest\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"default","pools":["core"],"select":"closest"}]}`, `select "closest": expected failover, weighted, nearest, fastest or all`},
		{"no route", "domain www.gtm.test {\n ttl 5\n}", config.KindDomain, "www.gtm.test.", `{"ttl":5,"routes":[]}`, `domain www.gtm.test.: no route`},
		{"dns without query", "healthcheck h {\n protocol dns\n}", config.KindHealthCheck, "h", `{"protocol":"dns"}`, `healthcheck h: protocol dns needs a query`},
		{"dns bad rcode", "healthcheck h {\n protocol dns\n query www.example.com\n expect NOERROR BOGUS\n}", config.KindHealthCheck, "h", `{"protocol":"dns","query":"www.example.com","expect":"NOERROR,BOGUS"}`, `healthcheck h: expect "NOERROR,BOGUS": unknown rcode "BOGUS": expected rcode names such as NOERROR, NXDOMAIN or SERVFAIL`},
		{"dns bad type", "healthcheck h {\n protocol dns\n query www.example.com BOGUS\n}", config.KindHealthCheck, "h", `{"protocol":"dns","query":"www.example.com BOGUS"}`, `healthcheck h: query "www.example.com BOGUS": unknown type "BOGUS"`},
		{"dns bad answer", "healthcheck h {\n protocol dns\n query www.example.com\n answer (\n}", config.KindHealthCheck, "h", `{"protocol":"dns","query":"www.example.com","answer":"("}`, `healthcheck h: answer "(": error parsing regexp`},
		{"query on http", "healthcheck h {\n protocol http\n query www.example.com\n}", config.KindHealthCheck, "h", `{"protocol":"http","query":"www.example.com"}`, `healthcheck h: query and answer apply only to dns`},
		{"bad method", "healthcheck h {\n protocol http\n method PUT\n}", config.KindHealthCheck, "h", `{"protocol":"http","method":"PUT"}`, `healthcheck h: method "PUT": expected GET, HEAD or POST`},
		{"method on tcp", "healthcheck h {\n protocol tcp\n port 1\n method GET\n}", config.KindHealthCheck, "h", `{"protocol":"tcp","port":1,"method":"GET"}`, `healthcheck h: method applies only to http and https`},
		{"head with body", "healthcheck h {\n protocol http\n method HEAD\n body ok\n}", config.KindHealthCheck, "h", `{"protocol":"http","method":"HEAD","body":"ok"}`, `healthcheck h: body does not apply to method HEAD`},
		{"bad header name", "healthcheck h {\n protocol http\n header X(A) 1\n}", config.KindHealthCheck, "h", `{"protocol":"http","header":[{"name":"X(A)","value":"1"}]}`, `healthcheck h: header "X(A)": not a valid header name`},
		{"two hosts", "healthcheck h {\n protocol http\n host a.example\n header Host b.example\n}", config.KindHealthCheck, "h", `{"protocol":"http","host":"a.example","header":[{"name":"Host","value":"b.example"}]}`, `healthcheck h: header Host and host both set the Host header: use one`},
		{"count on http", "healthcheck h {\n protocol http\n count 3\n}", config.KindHealthCheck, "h", `{"protocol":"http","count":3}`, `healthcheck h: count and loss apply only to icmp`},
		{"count too big", "healthcheck h {\n protocol icmp\n count 1000\n}", config.KindHealthCheck, "h", `{"protocol":"icmp","count":1000}`, `healthcheck h: count "1000": expected a number from 1 to 100`},
		{"loss 100", "healthcheck h {\n protocol icmp\n count 3\n loss 100\n}", config.KindHealthCheck, "h", `{"protocol":"icmp","count":3,"loss":100}`, `healthcheck h: loss "100": expected a percentage from 0 to 99`},
		{"unknown second check", "pool eu {\n address 192.0.2.1\n healthcheck web nope\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":["web","nope"]}`, `pool eu: unknown healthcheck "nope" (healthchecks: web)`},
		{"check listed twice", "pool eu {\n address 192.0.2.1\n healthcheck web web\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":["web","web"]}`, `pool eu: healthcheck "web" listed twice`},
		{"require too many", "pool eu {\n address 192.0.2.1\n healthcheck web require 2\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"web","require":2}`, `pool eu: require 2 exceeds its 1 healthchecks`},
		{"require zero", "pool eu {\n address 192.0.2.1\n healthcheck web require 0\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":["web"],"require":"0"}`, `pool eu: require "0": expected all, any or a number from 1 to the number of healthchecks`},
		{"require word", "pool eu {\n address 192.0.2.1\n healthcheck web require most\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"healthcheck":"web","require":"most"}`, `pool eu: require "most": expected all, any or a number`},
		{"min_available share above 100%", "pool eu {\n address 192.0.2.1\n min_available 150%\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"min_available":"150%"}`, `pool eu: min_available "150%": expected a count from 1 to 1000000 or a share from 1% to 100%`},
		{"min_available share 0%", "pool eu {\n address 192.0.2.1\n min_available 0%\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"min_available":"0%"}`, `pool eu: min_available "0%": expected a count from 1 to 1000000 or a share from 1% to 100%`},
		{"slow_start on lb all", "pool eu {\n address 192.0.2.1\n lb all\n slow_start 30s\n}", config.KindPool, "eu", `{"addresses":[{"address":"192.0.2.1"}],"lb":"all","slow_start":"30s"}`, `pool eu: slow_start applies to lb weighted and priority, not lb all`},
		{"unknown fallback pool", "domain www.gtm.test {\n route default core\n fallback nope\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"default","pools":["core"]}],"fallback":"nope"}`, `domain www.gtm.test.: fallback "nope": expected open, nodata, servfail or a pool (pools: core)`},
		{"bad failback", "domain www.gtm.test {\n route default core\n failback later\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"default","pools":["core"]}],"failback":"later"}`, `domain www.gtm.test.: failback "later": expected auto, manual or a duration such as 5m`},
		{"negative failback", "domain www.gtm.test {\n route default core\n failback -5m\n}", config.KindDomain, "www.gtm.test.", `{"routes":[{"selector":"default","pools":["core"]}],"failback":"-5m"}`, `failback "-5m": expected auto, manual or a duration such as 5m`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cerr := parse(caddy.NewTestController("dns", "gtm gtm.test {\n"+base+tc.corefile+"\n}"))
			if cerr == nil || !strings.Contains(cerr.Error(), tc.want) || !strings.Contains(cerr.Error(), "Testfile:") {
				t.Errorf("Corefile: %v, want file:line and %q", cerr, tc.want)
			}
			b, err := parse(caddy.NewTestController("dns", "gtm gtm.test {\n"+base+"\n}"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := config.Decode(tc.kind, tc.resName, []byte(tc.json), b.ttl)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			res := b.res.Clone()
			res.Put(r)
			jerr := config.Validate(res, b.env())
			if len(jerr) == 0 || !strings.Contains(jerr.Error(), tc.want) {
				t.Errorf("JSON: %v, want %q", jerr, tc.want)
			}
		})
	}
}

func TestParseFailoverDirectives(t *testing.T) {
	in := `gtm gtm.example.net {
    pool a {
        address 192.0.2.1
        address 192.0.2.2
        address 192.0.2.3
        min_available 50%
        slow_start 30s
    }
    pool b {
        address 192.0.2.9
        lb hashed
        min_available 1
    }
    domain www.gtm.example.net {
        route default a b
        ttl 60 5
        fallback b
        failback 2m
    }
    domain api.gtm.example.net {
        route default a
        fallback servfail
        failback manual
    }
}`
	b, err := parse(caddy.NewTestController("dns", in))
	if err != nil {
		t.Fatal(err)
	}
	a, p := b.res.Pool("a"), b.res.Pool("b")
	if a.MinAvailablePercent == nil || *a.MinAvailablePercent != 50 || time.Duration(a.SlowStart) != 30*time.Second || a.MinAvailableText() != "50%" {
		t.Errorf("pool a: %+v", a)
	}
	if p.LB != "hashed" || p.MinAvailablePercent != nil || p.MinAvailable != 1 {
		t.Errorf("pool b: %+v", p)
	}
	www := b.res.Domain("www.gtm.example.net.")
	if www.TTL != 60 || www.TTLDegraded == nil || *www.TTLDegraded != 5 || www.Fallback != "b" || www.Failback != "2m" {
		t.Errorf("www: %+v", www)
	}
	api := b.res.Domain("api.gtm.example.net.")
	if api.Fallback != "servfail" || api.Failback != "manual" || api.TTLDegraded != nil {
		t.Errorf("api: %+v", api)
	}
	// The JSON form says the same and reads back the same.
	for _, r := range []config.Resource{a, www} {
		js, err := config.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Decode(r.Kind(), config.MetaOf(r).Name, js, 30)
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		js2, _ := config.Encode(back)
		if string(js) != string(js2) {
			t.Errorf("round trip: %s != %s", js, js2)
		}
	}
	if errs := config.Validate(b.res, b.env()); len(errs) > 0 {
		t.Errorf("valid config: %v", errs)
	}
}
