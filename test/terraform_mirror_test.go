package test

// Acceptance tests of the provider's newer attributes (PRODUCT.md Part 3: "Attributes mirror
// the JSON forms"): a pool's members and flatten, an address's check_address, a template's
// max_rtt and vantage, and the provider's wait_synced, with a real OpenTofu, the built
// provider and the built coredns-gtm (test/terraform_test.go has the harness).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tfMembers is a configuration with a pool that discovers members through a registry DNS
// server, an apex-style ALIAS pool (flatten), and a pool whose first address is probed at
// another address (check_address) by a template with max_rtt.
func tfMembers(reg string, checkPort int, refresh string) string {
	return fmt.Sprintf(`
resource "gtm_healthcheck" "rtt" {
  name     = "rtt"
  protocol = "tcp"
  port     = %d
  interval = "2s"
  fall     = 1
  rise     = 1
  max_rtt  = "800ms"
}

# Templates of the newer protocols, their members spelled as the JSON's (no pool uses them:
# nothing is probed, the plan must still be empty after apply).
resource "gtm_healthcheck" "errors" {
  name     = "errors"
  protocol = "prometheus"
  url      = "http://127.0.0.1:9"
  query    = "sum(rate(errors_total{instance=\"{{address}}\"}[1m]))"
  expect   = "< 0.05"
  max_rtt  = "1s"
}

resource "gtm_healthcheck" "pushed" {
  name     = "pushed"
  protocol = "push"
}

resource "gtm_pool" "disc" {
  name = "disc"
  lb   = "all"
  addresses {
    address = "192.0.2.1"
  }
  members {
    dns      = ["app.reg.test"]
    resolver = %q
    refresh  = [%s]
  }
}

resource "gtm_pool" "alias" {
  name = "alias"
  addresses {
    address = "edge.reg.test"
  }
  flatten {
    resolver = %q
  }
}

resource "gtm_pool" "nat" {
  name        = "nat"
  lb          = "all"
  healthcheck = gtm_healthcheck.rtt.name
  addresses {
    address       = "192.0.2.80"
    check_address = "127.0.0.1"
  }
  addresses {
    address = "192.0.2.81"
  }
}

resource "gtm_domain" "disc" {
  name = "disc.gtm.example.net"
  routes {
    selector = "default"
    pools    = [gtm_pool.disc.name]
  }
  https {}
}

resource "gtm_domain" "alias" {
  name = "gtm.example.net"
  routes {
    selector = "default"
    pools    = [gtm_pool.alias.name]
  }
}

resource "gtm_domain" "nat" {
  name = "nat.gtm.example.net"
  routes {
    selector = "default"
    pools    = [gtm_pool.nat.name]
  }
}
`, checkPort, reg, refresh, reg)
}

// TestTerraformMembersAndFlatten applies pools with members dns, flatten and check_address and
// a template with max_rtt; checks the DNS answers they make; a plan after apply is empty
// (no diff from the defaults the server spells out: refresh, an empty flatten, an empty
// https); a change made through the API is drift that apply puts back; and resources made
// through the API import with an empty plan.
func TestTerraformMembersAndFlatten(t *testing.T) {
	tofuBinary(t)
	reg := startRegistryDNS(t,
		"app 1 IN A 127.0.0.21",
		"app 1 IN A 127.0.0.22",
		"edge 1 IN A 203.0.113.10",
	)
	checkPort := tfCheckTarget(t)
	n := startTFNode(t)
	w := newWorkspace(t, n.url, tfToken)
	w.write(tfMembers(reg.udp, checkPort, `"1s", "2s"`))
	w.apply()
	wait := func(name, want string) {
		t.Helper()
		eventually(t, 10*time.Second, func() string {
			if got := n.answer(name); got != want {
				return fmt.Sprintf("%s: %q, want %q", name, got, want)
			}
			return ""
		})
	}
	// Static and discovered addresses together; the ALIAS answers the name's A, no CNAME;
	// only the address whose probes go to check_address (a listener) is up.
	wait("disc.gtm.example.net", "127.0.0.21 127.0.0.22 192.0.2.1")
	wait("gtm.example.net", "203.0.113.10")
	wait("nat.gtm.example.net", "192.0.2.80")
	if m := n.dns.ask(query{name: "disc.gtm.example.net", qtype: dns.TypeHTTPS}); len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), "ipv4hint=") {
		t.Fatalf("HTTPS answer of https {}: %v", m.Answer)
	}
	if m := n.dns.ask(query{name: "nat.gtm.example.net", qtype: dns.TypeHTTPS}); len(m.Answer) != 0 {
		t.Fatalf("HTTPS answer of a domain without https: %v", m.Answer)
	}
	body, _ := n.api.must(200, "GET", "/api/v1/status", "")
	var st struct {
		Pools []struct {
			Name      string
			Addresses []struct {
				Address      string
				CheckAddress string `json:"check_address"`
				Healthy      bool
				Source       string
			}
		}
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range st.Pools {
		for _, a := range p.Addresses {
			switch {
			case p.Name == "nat" && a.Address == "192.0.2.80" && a.CheckAddress == "127.0.0.1" && a.Healthy,
				p.Name == "disc" && a.Address == "127.0.0.21" && a.Source == "dns:app.reg.test":
				seen++
			}
		}
	}
	if seen != 2 {
		t.Fatalf("status: check_address and a member's source not as configured: %s", body)
	}
	w.planEmpty()

	// Drift: the members' refresh changed and flatten removed through the API.
	for _, c := range []struct{ path, body string }{
		{"/api/v1/config/pools/disc", fmt.Sprintf(`{"lb":"all","addresses":[{"address":"192.0.2.1"}],"members":[{"dns":["app.reg.test"],"resolver":%q,"refresh":["1s","3s"]}]}`, reg.udp)},
		{"/api/v1/config/pools/alias", `{"addresses":[{"address":"edge.reg.test"}]}`},
	} {
		_, hdr := n.api.must(200, "GET", c.path, "")
		n.api.must(200, "PUT", c.path, c.body, "If-Match", hdr.Get("ETag"))
	}
	wait("gtm.example.net", "edge.reg.test.")
	out := w.planChanges()
	mustContain(t, out, "gtm_pool.disc will be updated in-place", `- "3s", + "2s",`, "gtm_pool.alias will be updated in-place", "+ flatten {")
	w.apply()
	wait("gtm.example.net", "203.0.113.10")
	w.planEmpty()
	// A change of the configuration goes through as an update.
	w.write(tfMembers(reg.udp, checkPort, `"1s", "4s"`))
	mustContain(t, w.apply(), "1 changed")
	body, _ = n.api.must(200, "GET", "/api/v1/config/pools/disc", "")
	if !strings.Contains(strings.Join(strings.Fields(string(body)), ""), `"refresh":["1s","4s"]`) {
		t.Fatalf("members after the update: %s", body)
	}
	w.planEmpty()

	// Import: a template with max_rtt, a pool with members and check_address, a flatten pool
	// with the defaults, all made through the API.
	n.api.must(201, "PUT", "/api/v1/config/healthchecks/imp_rtt", fmt.Sprintf(`{"protocol":"tcp","port":%d,"interval":"2s","max_rtt":"700ms"}`, checkPort))
	n.api.must(201, "PUT", "/api/v1/config/pools/imp_m", fmt.Sprintf(`{"lb":"all","healthcheck":"imp_rtt","addresses":[{"address":"192.0.2.90","check_address":"127.0.0.1"}],"members":[{"dns":["app.reg.test"],"resolver":%q}]}`, reg.udp))
	n.api.must(201, "PUT", "/api/v1/config/pools/imp_f", `{"addresses":[{"address":"edge.reg.test"}],"flatten":true}`)
	imp := tfMembers(reg.udp, checkPort, `"1s", "4s"`) + fmt.Sprintf(`
resource "gtm_healthcheck" "imp_rtt" {
  name     = "imp_rtt"
  protocol = "tcp"
  port     = %d
  interval = "2s"
  max_rtt  = "700ms"
}

resource "gtm_pool" "imp_m" {
  name        = "imp_m"
  lb          = "all"
  healthcheck = gtm_healthcheck.imp_rtt.name # a reference: destroy removes the pool first
  addresses {
    address       = "192.0.2.90"
    check_address = "127.0.0.1"
  }
  members {
    dns      = ["app.reg.test"]
    resolver = %q
  }
}

resource "gtm_pool" "imp_f" {
  name = "imp_f"
  addresses {
    address = "edge.reg.test"
  }
  flatten {}
}
`, checkPort, reg.udp)
	w.write(imp)
	for _, r := range []string{"gtm_healthcheck.imp_rtt imp_rtt", "gtm_pool.imp_m imp_m", "gtm_pool.imp_f imp_f"} {
		args := append([]string{"import", "-input=false", "-no-color"}, strings.Fields(r)...)
		if out, code := w.run(args...); code != 0 {
			t.Fatalf("import %s: exit %d\n%s", r, code, out)
		}
	}
	w.planEmpty()

	// A refused member: the server's 400 on the member's attribute.
	w.write(imp + `
resource "gtm_pool" "bad" {
  name = "bad"
  addresses {
    address = "192.0.2.95"
  }
  members {
    dns = ["not a name"]
  }
}
`)
	out = w.applyFails()
	mustContain(t, out, "400 Bad Request", `members dns "not a name": expected a fully qualified domain name`)

	w.write(imp)
	if out, code := w.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	wait("disc.gtm.example.net", "NXDOMAIN")
}

// TestTerraformFleetWaitSynced: with wait_synced, apply through one node returns only once the
// other answers the change (checked with one query, no polling); a template with vantage
// and max_rtt is managed like any other; a node that does not follow in time fails the
// apply naming it, and the write that stands is in state (a plan after it is empty).
func TestTerraformFleetWaitSynced(t *testing.T) {
	tofuBinary(t)
	providerBinary(t)
	checkPort := tfCheckTarget(t)
	f := newFleet(t, "a:eu", "b:us")
	a, b := f.node("a"), f.node("b")
	w := newWorkspace(t, "http://"+a.api, fleetToken)
	conf := func(timeout string, addrs ...string) string {
		return fmt.Sprintf(`
provider "gtm" {
  wait_synced  = true
  wait_timeout = %q
}

resource "gtm_healthcheck" "eu_only" {
  name     = "eu_only"
  protocol = "tcp"
  port     = %d
  interval = "2s"
  max_rtt  = "900ms"
  vantage  = ["eu"]
}

resource "gtm_pool" "p" {
  name        = "p"
  lb          = "all"
  healthcheck = gtm_healthcheck.eu_only.name
%s}

resource "gtm_domain" "app" {
  name = "app.gtm.example.net"
  routes {
    selector = "default"
    pools    = [gtm_pool.p.name]
  }
}
`, timeout, checkPort, checkedAddressBlocks(addrs...))
	}
	w.write(conf("20s", "192.0.2.71"))
	w.apply()
	// No polling: the apply returned, so b has applied every write.
	if got := b.answer("app.gtm.example.net"); got != "192.0.2.71" {
		t.Fatalf("node b right after apply with wait_synced: %q", got)
	}
	body, _ := (&tfAPI{t: t, base: "http://" + b.api, token: fleetToken}).must(200, "GET", "/api/v1/config/healthchecks/eu_only", "")
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatalf("the template on node b is not JSON: %v: %s", err, body)
	}
	if !strings.Contains(compact.String(), `"vantage":["eu"]`) || !strings.Contains(compact.String(), `"max_rtt":"900ms"`) {
		t.Fatalf("the template on node b: %s", body)
	}
	wb := newWorkspace(t, "http://"+b.api, fleetToken)
	wb.dir = w.dir
	wb.planEmpty()

	w.write(conf("20s", "192.0.2.71", "192.0.2.72"))
	w.apply()
	if got := b.answer("app.gtm.example.net"); got != "192.0.2.71 192.0.2.72" {
		t.Fatalf("node b right after the update: %q", got)
	}

	// b stops (SIGSTOP: still in the node list until its lease ends) and the next write
	// waits for it in vain: the apply fails naming b; the write stands, and state has it.
	b.mu.Lock()
	proc := b.cmd.Process
	b.mu.Unlock()
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := func() { proc.Signal(syscall.SIGCONT) }
	t.Cleanup(cont)
	w.write(conf("1s", "192.0.2.71", "192.0.2.73"))
	out := w.applyFails()
	cont()
	mustContain(t, out, "update pool p: written, but not yet in force on every node", "b (at revision")
	if got := a.answer("app.gtm.example.net"); got != "192.0.2.71 192.0.2.73" {
		t.Fatalf("node a after the write that stands: %q", got)
	}
	answersOn(t, 15*time.Second, "app.gtm.example.net", "192.0.2.71 192.0.2.73", b)
	w.planEmpty()

	w.write(conf("20s", "192.0.2.71", "192.0.2.73"))
	if out, code := w.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	if got := b.answer("app.gtm.example.net"); got != "NXDOMAIN" {
		t.Fatalf("node b right after destroy with wait_synced: %q", got)
	}
}

// TestTerraformREADMEDiscovery applies the README's discovery example (members, flatten,
// check_address, max_rtt, wait_synced) with the registry's zone and resolver put in, and
// checks its answers and an empty plan.
func TestTerraformREADMEDiscovery(t *testing.T) {
	tofuBinary(t)
	ex := readmeHCL(t, "# Discovery")
	reg := startRegistryDNS(t,
		"app 1 IN A 127.0.0.21",
		"app 1 IN A 127.0.0.22",
		"edge 1 IN A 203.0.113.10",
	)
	ex = strings.ReplaceAll(strings.ReplaceAll(ex, "reg.example.net", "reg.test"), `"10.0.0.53"`, fmt.Sprintf("%q", reg.udp))
	n := startTFNode(t)
	w := newWorkspace(t, n.url, tfToken)
	w.write(ex)
	w.apply()
	// The apex answers the flattened name's A; the registry's addresses joined pool app (their
	// probes to port 443 fail here, so the status is asked, not DNS).
	eventually(t, 10*time.Second, func() string {
		if got := n.answer("gtm.example.net"); got != "203.0.113.10" {
			return "apex: " + got
		}
		body, _ := n.api.must(200, "GET", "/api/v1/status", "")
		flat := strings.ReplaceAll(string(body), " ", "")
		for _, a := range []string{"127.0.0.21", "127.0.0.22"} {
			if !strings.Contains(flat, `"address":"`+a+`"`) || !strings.Contains(flat, `"source":"dns:app.reg.test"`) {
				return "pool app has no member " + a + ": " + string(body)
			}
		}
		if !strings.Contains(flat, `"check_address":"10.1.0.7"`) {
			return "no check_address in the status: " + string(body)
		}
		return ""
	})
	if m := n.dns.ask(query{name: "app.gtm.example.net", qtype: dns.TypeHTTPS}); len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), `alpn="h2"`) {
		t.Fatalf("HTTPS answer of the example's app domain: %v", m.Answer)
	}
	w.planEmpty()

	// The status data source shows each address's source and check_address.
	w.write(ex + `
data "gtm_status" "now" {
  depends_on = [gtm_pool.app]
}

output "app_addresses" {
  value = sort([for a in one([for p in data.gtm_status.now.pools : p if p.name == "app"]).addresses : "${a.address} ${a.source} ${a.check_address}"])
}

output "app_stale" {
  value = one([for p in data.gtm_status.now.pools : p.members_stale if p.name == "app"])
}
`)
	w.apply()
	outs, code := w.run("output", "-json")
	if code != 0 {
		t.Fatalf("output: exit %d\n%s", code, outs)
	}
	var got map[string]struct{ Value any }
	if err := json.Unmarshal([]byte(outs), &got); err != nil {
		t.Fatalf("output -json: %v\n%s", err, outs)
	}
	if v := fmt.Sprint(got["app_addresses"].Value); v != "[127.0.0.21 dns:app.reg.test  127.0.0.22 dns:app.reg.test  203.0.113.7 static 10.1.0.7]" {
		t.Errorf("gtm_status addresses of pool app: %s", v)
	}
	if v := fmt.Sprint(got["app_stale"].Value); v != "false" {
		t.Errorf("gtm_status members_stale of pool app: %s", v)
	}
	w.planEmpty()
}

// checkedAddressBlocks are gtm_pool addresses blocks probed at 127.0.0.1 (tfCheckTarget), so
// their checks pass however long the test runs (192.0.2.x itself is unreachable: its probes
// would fail after fall × interval and take the addresses out of the answers).
func checkedAddressBlocks(addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "  addresses {\n    address       = %q\n    check_address = \"127.0.0.1\"\n  }\n", a)
	}
	return b.String()
}
