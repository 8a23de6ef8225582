package test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// registryDNS is a real DNS server for member discovery: CoreDNS's file plugin serving a
// zone the test rewrites (the file plugin reloads it within a second of a new serial).
type registryDNS struct {
	t      *testing.T
	p      *proc // the built binary: CoreDNS's file plugin races its own reload under -race in-process
	udp    string
	file   string
	serial int
}

func startRegistryDNS(t *testing.T, records ...string) *registryDNS {
	t.Helper()
	r := &registryDNS{t: t, file: filepath.Join(t.TempDir(), "db.reg.test")}
	r.write(records...)
	port := freePort(t)
	r.udp = fmt.Sprintf("127.0.0.1:%d", port)
	conf := writeFile(t, filepath.Join(t.TempDir(), "Corefile"), fmt.Sprintf(`reg.test:%d {
    bind 127.0.0.1
    file %s {
        reload 200ms
    }
}`, port, r.file))
	r.p = startBinary(t, t.TempDir(), conf)
	waitUDP(t, r.udp)
	return r
}

// write replaces the zone's records (TTL 1s unless given), with a higher serial.
func (r *registryDNS) write(records ...string) {
	r.serial++
	zone := fmt.Sprintf("$ORIGIN reg.test.\n@ 1 IN SOA ns.reg.test. h.reg.test. %d 60 60 60 1\n@ 1 IN NS ns.reg.test.\nns 1 IN A 127.0.0.1\n", r.serial)
	zone += strings.Join(records, "\n") + "\n"
	writeFile(r.t, r.file, zone)
}

func membersCorefile(apiAddr, token, resolver string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.test {
        api %s {
            token_file %s
        }
        pool discovered {
            address 192.0.2.1
            members dns app.reg.test {
                resolver %s
                refresh 1s 2s
            }
            members srv _http._tcp.reg.test {
                resolver %s
                refresh 1s 2s
            }
            lb all
            answers 16
        }
        pool alias {
            address edge.reg.test
            flatten {
                resolver %s
                refresh 1s 2s
            }
        }
        domain www.gtm.test {
            route default discovered
        }
        domain gtm.test {
            route default alias
        }
    }
}`, apiAddr, token, resolver, resolver, resolver)
}

func TestMembersDNSAndFlatten(t *testing.T) {
	reg := startRegistryDNS(t,
		"app 1 IN A 127.0.0.21",
		"app 1 IN A 127.0.0.22",
		"_http._tcp 1 IN SRV 10 5 8080 t1",
		"t1 1 IN A 127.0.0.31",
		"edge 1 IN A 203.0.113.10",
		"edge 1 IN AAAA 2001:db8::10",
	)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, membersCorefile(apiAddr, token, reg.udp))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	ask := func(name string, qtype uint16) string {
		got := answers(s.ask(query{name: name, qtype: qtype}))
		slices.Sort(got)
		return join(got)
	}

	// Static and discovered members answer together.
	eventually(t, 10*time.Second, func() string {
		if got := ask("www.gtm.test", dns.TypeA); got != "127.0.0.21 127.0.0.22 127.0.0.31 192.0.2.1" {
			return "answer " + got
		}
		return ""
	})
	// Status names each address's source, the SRV member carries its weight.
	_, st := c.do("GET", "/api/v1/status", "", true)
	sources := map[string]string{}
	for _, p := range st["pools"].([]any) {
		pm := p.(map[string]any)
		if pm["name"] != "discovered" {
			continue
		}
		if pm["members_stale"] != false {
			t.Fatalf("members_stale: %v", pm)
		}
		for _, a := range pm["addresses"].([]any) {
			am := a.(map[string]any)
			sources[am["address"].(string)] = fmt.Sprint(am["source"], " w", am["weight"])
		}
	}
	want := map[string]string{"192.0.2.1": "static w1", "127.0.0.21": "dns:app.reg.test w1", "127.0.0.22": "dns:app.reg.test w1", "127.0.0.31": "srv:_http._tcp.reg.test w5"}
	for a, w := range want {
		if sources[a] != w {
			t.Fatalf("status sources %v; want %v", sources, want)
		}
	}
	// Flatten at the apex: A and AAAA of the name, no CNAME.
	if got := ask("gtm.test", dns.TypeA); got != "203.0.113.10" {
		t.Fatalf("flatten A at the apex: %q", got)
	}
	if got := ask("gtm.test", dns.TypeAAAA); got != "2001:db8::10" {
		t.Fatalf("flatten AAAA at the apex: %q", got)
	}

	// A member leaves and another joins; the flattened name moves.
	reg.write(
		"app 1 IN A 127.0.0.22",
		"app 1 IN A 127.0.0.23",
		"_http._tcp 1 IN SRV 10 5 8080 t1",
		"t1 1 IN A 127.0.0.31",
		"edge 1 IN A 203.0.113.11",
	)
	took := eventually(t, 8*time.Second, func() string {
		if got := ask("www.gtm.test", dns.TypeA); got != "127.0.0.22 127.0.0.23 127.0.0.31 192.0.2.1" {
			return "after the change: " + got
		}
		if got := ask("gtm.test", dns.TypeA); got != "203.0.113.11" {
			return "flatten after the change: " + got
		}
		return ""
	})
	t.Logf("membership change in force after %s (reload 200ms, TTL 1s, refresh 1s 2s)", took)
	if got := ask("gtm.test", dns.TypeAAAA); got != "" {
		t.Fatalf("flatten AAAA once the name has none: %q", got)
	}

	// NXDOMAIN for the name is believed: its members leave, the others stay.
	reg.write(
		"_http._tcp 1 IN SRV 10 5 8080 t1",
		"t1 1 IN A 127.0.0.31",
		"edge 1 IN A 203.0.113.11",
	)
	eventually(t, 8*time.Second, func() string {
		if got := ask("www.gtm.test", dns.TypeA); got != "127.0.0.31 192.0.2.1" {
			return "after NXDOMAIN: " + got
		}
		return ""
	})

	// The registry goes away: the last members stay, the pool says stale, an event and the
	// error counter record it.
	reg.write(
		"app 1 IN A 127.0.0.24",
		"_http._tcp 1 IN SRV 10 5 8080 t1",
		"t1 1 IN A 127.0.0.31",
		"edge 1 IN A 203.0.113.11",
	)
	eventually(t, 8*time.Second, func() string {
		if got := ask("www.gtm.test", dns.TypeA); got != "127.0.0.24 127.0.0.31 192.0.2.1" {
			return "before the registry stops: " + got
		}
		return ""
	})
	reg.p.kill() // the registry is gone: its port refuses
	eventually(t, 15*time.Second, func() string {
		_, st := c.do("GET", "/api/v1/status", "", true)
		for _, p := range st["pools"].([]any) {
			pm := p.(map[string]any)
			if pm["name"] == "discovered" {
				if pm["members_stale"] != true || !strings.Contains(fmt.Sprint(pm["members_error"]), "dns:app.reg.test") {
					return fmt.Sprintf("not stale yet: %v %v", pm["members_stale"], pm["members_error"])
				}
			}
		}
		return ""
	})
	if got := ask("www.gtm.test", dns.TypeA); got != "127.0.0.24 127.0.0.31 192.0.2.1" {
		t.Fatalf("a stale registry emptied the pool: %q", got)
	}
	if got := ask("gtm.test", dns.TypeA); got != "203.0.113.11" {
		t.Fatalf("a stale flatten lost its addresses: %q", got)
	}
	_, ev := c.do("GET", "/api/v1/events", "", true)
	if !strings.Contains(fmt.Sprint(ev), "stale") {
		t.Fatalf("no stale event: %v", ev)
	}
}

// waitUDP waits until a DNS server answers on addr.
func waitUDP(t *testing.T, addr string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("reg.test.", dns.TypeSOA)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, _, err := c.Exchange(m, addr); err == nil {
			return
		}
	}
	t.Fatalf("registry DNS on %s did not answer within 20s", addr)
}
