package test

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The two state-handling bugs of the control-layer redesign (issue 12), end to end.

// TestOverrideSurvivesReloadWithoutStateFile: with `api` but no `state FILE`, an address set
// down through the API stays down over a Corefile reload, and its mode still reads down.
func TestOverrideSurvivesReloadWithoutStateFile(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	corefile := func(ttl int) string {
		return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        ttl %d
        api %s {
            token_file %s
        }
        pool hz {
            address 192.0.2.1
            address 192.0.2.2
            lb all
        }
        domain www.gtm.example.net {
            route default hz
        }
    }
}`, ttl, apiAddr, token)
	}
	s := start(t, corefile(30))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	if code, body := c.do("PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"down"}`, true); code != 200 {
		t.Fatalf("mode down: %d %v", code, body)
	}
	if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.2" {
		t.Fatalf("after setting 192.0.2.1 down: %s", got)
	}
	if err := s.reload(corefile(31)); err != nil {
		t.Fatal(err)
	}
	m := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})
	if len(m.Answer) == 0 || m.Answer[0].Header().Ttl != 31 {
		t.Fatalf("the reload is not in force: %v", m.Answer)
	}
	if got := join(answers(m)); got != "192.0.2.2" {
		t.Fatalf("after a reload without a state file the override is lost: %s", got)
	}
	if mode := addressMode(t, c, "hz", "192.0.2.1"); mode != "down" {
		t.Fatalf("after a reload without a state file 192.0.2.1 reads mode %q, want down", mode)
	}
}

func addressMode(t *testing.T, c *apiClient, pool, addr string) string {
	t.Helper()
	r := c.mustCall(200, "GET", "/api/v1/status", "")
	var st struct {
		Pools []struct {
			Name      string
			Addresses []struct{ Address, Mode string }
		}
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Pools {
		for _, a := range p.Addresses {
			if p.Name == pool && a.Address == addr {
				return a.Mode
			}
		}
	}
	t.Fatalf("no address %s in pool %s: %s", addr, pool, r.body)
	return ""
}

// TestFailedReloadKeepsRunningConfig: a reload whose new instance fails to start after gtm's
// setup and startup ran (a second server block on a UDP port that is taken) leaves the old
// configuration serving DNS, reported by the API, and the discarded configuration's probers
// stopped.
func TestFailedReloadKeepsRunningConfig(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	backPort := freePort(t)
	probed := newBackend(t, "127.0.40.1", backPort) // counts the discarded config's probes
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.LocalAddr().(*net.UDPAddr).Port

	old := fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        pool old {
            address 192.0.2.1
        }
        domain www.gtm.example.net {
            route default old
        }
    }
}`, apiAddr, token)
	discarded := fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        healthcheck h {
            protocol http
            port %d
            interval 100ms
            timeout 50ms
        }
        pool new {
            address 127.0.40.1
            healthcheck h
        }
        domain www.gtm.example.net {
            route default new
        }
    }
}
.:%d {
    bind 127.0.0.1
    whoami
}`, apiAddr, token, backPort, takenPort)

	s := start(t, old)
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	ask := func() string { return join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))) }
	if got := ask(); got != "192.0.2.1" {
		t.Fatalf("before the reload: %s", got)
	}
	if err := s.reload(discarded); err == nil {
		t.Fatal("the reload onto a taken UDP port succeeded: the test cannot provoke a failed restart")
	} else {
		t.Logf("reload failed as intended: %v", err)
	}

	// The old DNS configuration serves...
	if got := ask(); got != "192.0.2.1" {
		t.Fatalf("after the failed reload DNS answers %s, want the running config's 192.0.2.1", got)
	}
	// ...and the API reports it, not the discarded one.
	r := c.mustCall(200, "GET", "/api/v1/status", "")
	var st struct {
		Pools   []struct{ Name string }
		Domains []struct {
			Name   string
			Routes []struct{ Pools []string }
		}
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Pools) != 1 || st.Pools[0].Name != "old" || len(st.Domains) != 1 || strings.Join(st.Domains[0].Routes[0].Pools, ",") != "old" {
		t.Fatalf("after the failed reload the API reports %s, want the running config (pool old)", r.body)
	}
	if cfg := c.config(); cfg.Pools["old"] == nil || cfg.Pools["new"] != nil || cfg.HealthChecks["h"] != nil {
		t.Fatalf("after the failed reload GET /api/v1/config reports %+v", cfg)
	}
	// Overrides act on the running configuration.
	if code, body := c.do("PUT", "/api/v1/pools/old/addresses/192.0.2.1/mode", `{"mode":"up"}`, true); code != 200 {
		t.Fatalf("mode on the running config's pool after the failed reload: %d %v", code, body)
	}
	if code, _ := c.do("PUT", "/api/v1/pools/new/addresses/127.0.40.1/mode", `{"mode":"down"}`, true); code != 404 {
		t.Fatalf("mode on the discarded config's pool: %d, want 404", code)
	}

	// The discarded configuration's prober is released: its target's count stops growing
	// (allow a probe in flight to land).
	time.Sleep(300 * time.Millisecond)
	hits := probed.hits.Load()
	time.Sleep(600 * time.Millisecond) // six intervals of the discarded template
	if now := probed.hits.Load(); now != hits {
		t.Fatalf("the discarded config's prober still runs: %d probes, then %d", hits, now)
	}

	// A later good reload still works.
	if err := s.reload(strings.Replace(old, "192.0.2.1", "192.0.2.9", 1)); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "192.0.2.9" {
		t.Fatalf("after a good reload: %s", got)
	}
}
