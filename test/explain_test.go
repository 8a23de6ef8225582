package test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/geo/geotest"
)

// explainDoc is the part of GET /api/v1/explain the test compares with real answers.
type explainDoc struct {
	Scope  int      `json:"scope"`
	ECS    bool     `json:"ecs"`
	Answer []string `json:"answer"`
	Rcode  string   `json:"rcode"`
	Geo    struct {
		Country, Continent, Network string
	} `json:"geo"`
	Steps []struct {
		Pool       string   `json:"pool"`
		Pinned     string   `json:"pinned"`
		Route      *string  `json:"route"`
		GeoFenced  bool     `json:"geo_fenced"`
		FailOpen   bool     `json:"fail_open"`
		Candidates []string `json:"candidates"`
		Chosen     []string `json:"chosen"`
		Overrides  []string `json:"overrides"`
		Pools      []struct {
			Name      string `json:"name"`
			Available bool   `json:"available"`
		} `json:"pools"`
		Routes []struct {
			Selector  string `json:"selector"`
			MatchedBy string `json:"matched_by"`
		} `json:"routes"`
	} `json:"steps"`
}

// TestExplainMatchesQueries asks explain and the DNS server the same questions, for many
// clients and in every state (normal, failed over, fail-open, pinned, geo-fenced): explain's
// pool and addresses are the ones the query gets.
func TestExplainMatchesQueries(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	token := writeFile(t, filepath.Join(dir, "token"), "ex-token")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        geoip %s
        asn %s
        api %s {
            token_file %s
            state %s
        }
        pool asia {
            address 192.0.2.10
            address 192.0.2.11
            lb all
        }
        pool europe {
            address 192.0.2.20 priority 0
            address 192.0.2.21 priority 1
            lb priority
        }
        pool america {
            address 192.0.2.30
            address 2001:db8::30
        }
        pool standby {
            address 192.0.2.50
        }
        pool wpool {
            address 192.0.2.60 weight 1
            address 192.0.2.61 weight 2
            address 192.0.2.62 weight 3
        }
        domain www.gtm.example.net {
            route continent:AS asia standby
            route continent:EU europe standby
            route country:US america standby
        }
        domain w.gtm.example.net {
            route country:GB,country:DE wpool
            route default america
        }
    }
}`, city, asn, apiAddr, token, filepath.Join(dir, "state.json")))
	api := &apiClient{t: t, base: "http://" + apiAddr, token: "ex-token"}
	poolOf := map[string]string{}
	for addr, p := range map[string]string{"192.0.2.10": "asia", "192.0.2.11": "asia", "192.0.2.20": "europe", "192.0.2.21": "europe",
		"192.0.2.30": "america", "2001:db8::30": "america", "192.0.2.50": "standby", "192.0.2.60": "wpool", "192.0.2.61": "wpool", "192.0.2.62": "wpool"} {
		poolOf[addr] = p
	}
	explain := func(name string, qtype uint16, subnet string) explainDoc {
		t.Helper()
		code, _ := api.do("GET", "/api/v1/explain?domain="+name+"&type="+dns.TypeToString[qtype]+"&subnet="+url.QueryEscape(subnet), "", true)
		if code != 200 {
			t.Fatalf("explain %s from %s: %d", name, subnet, code)
		}
		var doc explainDoc
		if err := json.Unmarshal([]byte(get(t, api.base+"/api/v1/explain?domain="+name+"&type="+dns.TypeToString[qtype]+"&subnet="+url.QueryEscape(subnet), "ex-token")), &doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	pools := func(addrs []string) []string {
		var out []string
		for _, a := range addrs {
			if p := poolOf[a]; !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	subnets := []string{"1.0.16.0/24", "81.2.69.0/24", "4.2.2.0/24", "8.8.8.0/24", "2001:db8:2::/48", "1.1.1.0/24", "85.214.0.0/24", "24.48.0.0/24", "10.9.0.0/16", "0.0.0.0/0"}
	// compare checks explain against a real query; weighted pools compare by pool.
	compare := func(label, name string, qtype uint16, subnet string) explainDoc {
		t.Helper()
		doc := explain(name, qtype, subnet)
		m := s.ask(query{name: name, qtype: qtype, subnet: subnet})
		got := answers(m)
		if doc.Scope != scope(m) || !doc.ECS {
			t.Errorf("%s: %s %s from %s: explain scope %d, query scope %d", label, name, dns.TypeToString[qtype], subnet, doc.Scope, scope(m))
		}
		if doc.Rcode != dns.RcodeToString[m.Rcode] {
			t.Errorf("%s: %s from %s: explain rcode %s, query %s", label, name, subnet, doc.Rcode, dns.RcodeToString[m.Rcode])
		}
		if wp := slices.ContainsFunc(got, func(a string) bool { return poolOf[a] == "wpool" }); wp {
			if fmt.Sprint(pools(doc.Answer)) != fmt.Sprint(pools(got)) || len(doc.Answer) != len(got) {
				t.Errorf("%s: %s from %s: explain %v (pools %v), query %v (pools %v)", label, name, subnet, doc.Answer, pools(doc.Answer), got, pools(got))
			}
			for _, a := range got {
				if !slices.Contains(doc.Steps[0].Candidates, a) {
					t.Errorf("%s: %s from %s: query answered %s, not among explain's candidates %v", label, name, subnet, a, doc.Steps[0].Candidates)
				}
			}
		} else if fmt.Sprint(sorted(doc.Answer)) != fmt.Sprint(sorted(got)) {
			t.Errorf("%s: %s %s from %s: explain %v, query %v", label, name, dns.TypeToString[qtype], subnet, doc.Answer, got)
		}
		if len(doc.Steps) != 1 {
			t.Fatalf("%s: %d steps", label, len(doc.Steps))
		}
		return doc
	}
	all := func(label string) map[string]explainDoc {
		out := map[string]explainDoc{}
		for _, sn := range subnets {
			for _, name := range []string{"www.gtm.example.net", "w.gtm.example.net"} {
				for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
					for range 3 { // lb all rotates, weighted draws: ask a few times
						doc := compare(label, name, qt, sn)
						if qt == dns.TypeA {
							out[name+" "+sn] = doc
						}
					}
				}
			}
		}
		return out
	}

	docs := all("normal")
	if d := docs["www.gtm.example.net 81.2.69.0/24"]; d.Geo.Country != "GB" || d.Steps[0].Pool != "europe" || *d.Steps[0].Route != "continent:EU" || fmt.Sprint(d.Answer) != "[192.0.2.20]" {
		t.Errorf("GB client: %+v", d)
	}
	if d := docs["www.gtm.example.net 24.48.0.0/24"]; !d.Steps[0].GeoFenced || d.Steps[0].Route != nil || len(d.Answer) != 0 || d.Geo.Country != "CA" {
		t.Errorf("Canadian client is geo-fenced: %+v", d)
	}
	if d := docs["www.gtm.example.net 1.0.16.0/24"]; d.Steps[0].Pool != "asia" || fmt.Sprint(sorted(d.Steps[0].Candidates)) != "[192.0.2.10 192.0.2.11]" {
		t.Errorf("Asian client: %+v", d)
	}
	if d := docs["w.gtm.example.net 85.214.0.0/24"]; d.Steps[0].Pool != "wpool" || len(d.Steps[0].Candidates) != 3 || d.Steps[0].Routes[0].MatchedBy != "country" {
		t.Errorf("German client of w: %+v", d)
	}

	// Failed over: Europe's addresses are down, Europe answers from standby.
	for _, a := range []string{"192.0.2.20", "192.0.2.21"} {
		if code, _ := api.do("PUT", "/api/v1/pools/europe/addresses/"+a+"/mode", `{"mode":"down"}`, true); code != 200 {
			t.Fatal(code)
		}
	}
	docs = all("failed over")
	if d := docs["www.gtm.example.net 85.214.0.0/24"]; d.Steps[0].Pool != "standby" || d.Steps[0].Pools[0].Available || d.Steps[0].FailOpen || len(d.Steps[0].Overrides) != 2 {
		t.Errorf("failed over: %+v", d)
	}
	// Fail-open: standby down too; the route answers its first pool's enabled addresses.
	if code, _ := api.do("PUT", "/api/v1/pools/standby/addresses/192.0.2.50/mode", `{"mode":"down"}`, true); code != 200 {
		t.Fatal(code)
	}
	docs = all("fail-open")
	if d := docs["www.gtm.example.net 85.214.0.0/24"]; d.Steps[0].Pool != "europe" || !d.Steps[0].FailOpen {
		t.Errorf("fail-open: %+v", d)
	}
	// Pinned: every client gets the pinned pool, with scope 0.
	if code, _ := api.do("PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"america"}`, true); code != 200 {
		t.Fatal(code)
	}
	docs = all("pinned")
	for _, sn := range subnets {
		if d := docs["www.gtm.example.net "+sn]; d.Steps[0].Pinned != "america" || d.Steps[0].Pool != "america" || d.Scope != 0 {
			t.Errorf("pinned, from %s: %+v", sn, d)
		}
	}

	// Bad questions.
	for q, want := range map[string]int{
		"domain=nope.gtm.example.net&subnet=1.2.3.0/24":     404,
		"domain=www.example.org&subnet=1.2.3.0/24":          404,
		"domain=www.gtm.example.net&subnet=1.2.3":           400,
		"domain=www.gtm.example.net&client=x":               400,
		"domain=www.gtm.example.net":                        400,
		"domain=www.gtm.example.net&type=MX&client=1.2.3.4": 400,
		"subnet=1.2.3.0/24":                                 400,
		"domain=www.gtm.example.net&client=1.2.3.4":         200,
	} {
		if code, _ := api.do("GET", "/api/v1/explain?"+q, "", true); code != want {
			t.Errorf("explain?%s: %d, want %d", q, code, want)
		}
	}
	if code, _ := api.do("GET", "/api/v1/explain?domain=www.gtm.example.net&client=1.2.3.4", "", false); code != 401 {
		t.Errorf("explain without the token: %d", code)
	}
}
