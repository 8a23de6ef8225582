package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func overridesCorefile(dnsPort int, apiAddr, token, state string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool dc1 {
            address 127.0.40.1
            address 127.0.40.2
            lb all
        }
        pool dc2 {
            address 127.0.41.1
            address 127.0.41.2
            lb all
        }
        domain www.gtm.example.net {
            route default dc1 dc2
        }
        domain b.gtm.example.net {
            route default dc2
        }
        api %s {
            token_file %s
            state %s
        }
    }
}
`, dnsPort, apiAddr, token, state)
}

// statusAddr is an address of /api/v1/status with the override fields.
type statusAddr struct {
	Address    string     `json:"address"`
	Mode       string     `json:"mode"`
	ModeSource string     `json:"mode_source"`
	Until      *time.Time `json:"until"`
	Scheduled  *struct {
		Mode  string     `json:"mode"`
		From  time.Time  `json:"from"`
		Until *time.Time `json:"until"`
	} `json:"scheduled"`
}

type statusPool struct {
	Name      string       `json:"name"`
	Mode      string       `json:"mode"`
	Until     *time.Time   `json:"until"`
	Addresses []statusAddr `json:"addresses"`
}

func (c *apiClient) pools() map[string]statusPool {
	c.t.Helper()
	r := c.mustCall(200, "GET", "/api/v1/status", "")
	var doc struct{ Pools []statusPool }
	if err := json.Unmarshal(r.body, &doc); err != nil {
		c.t.Fatalf("status: %v", err)
	}
	out := map[string]statusPool{}
	for _, p := range doc.Pools {
		out[p.Name] = p
	}
	return out
}

func (p statusPool) addr(a string) statusAddr {
	for _, x := range p.Addresses {
		if x.Address == a {
			return x
		}
	}
	return statusAddr{}
}

// eventsSince returns "kind:action address|pool|domain" of the events after id.
func (c *apiClient) eventsSince(id uint64) []string {
	c.t.Helper()
	r := c.mustCall(200, "GET", fmt.Sprintf("/api/v1/events?since=%d", id), "")
	var doc struct {
		Events []struct{ Kind, Action, Address, Pool, Domain string }
	}
	json.Unmarshal(r.body, &doc)
	var out []string
	for _, e := range doc.Events {
		if e.Kind == "mode" || e.Kind == "pin" {
			out = append(out, fmt.Sprintf("%s:%s %s/%s%s", e.Kind, e.Action, e.Pool, e.Address, e.Domain))
		}
	}
	return out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TestBinaryTimedOverrides drives timed overrides and pool modes through the built binary:
// a timed drain ends by itself (the lag between until and the answer changing is measured),
// a scheduled window starts and ends by itself, both survive a SIGKILL restart (one that
// ended while the process was down is gone at startup), and a pool-wide drain leaves the
// address whose own mode is up in the answer.
func TestBinaryTimedOverrides(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "ov-token")
	stateFile := filepath.Join(dir, "state.json")
	dnsPort := freePort(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := writeFile(t, filepath.Join(dir, "Corefile"), overridesCorefile(dnsPort, apiAddr, token, stateFile))
	s := &server{t: t, udp: fmt.Sprintf("127.0.0.1:%d", dnsPort), tcp: fmt.Sprintf("127.0.0.1:%d", dnsPort)}
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "ov-token"}
	ask := func(name string) string {
		got := answers(s.ask(query{name: name, qtype: dns.TypeA}))
		slices.Sort(got)
		return strings.Join(got, " ")
	}
	up := func(p *proc) {
		t.Helper()
		eventually(t, 30*time.Second, func() string {
			if _, err := s.exchange(query{name: "www.gtm.example.net", qtype: dns.TypeA}); err != nil {
				return "DNS not answering: " + err.Error() + "\n" + p.out.String()
			}
			if r := c.call("GET", "/api/v1/status", ""); r.code != 200 {
				return fmt.Sprintf("API answers %d", r.code)
			}
			return ""
		})
	}
	// waitAnswer polls DNS every 5 ms until name answers want and returns when it did.
	waitAnswer := func(name, want string, within time.Duration) time.Time {
		t.Helper()
		limit := time.Now().Add(within)
		for time.Now().Before(limit) {
			if ask(name) == want {
				return time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%s did not answer %q within %v (answers %q)", name, want, within, ask(name))
		return time.Time{}
	}
	both, dc2 := "127.0.40.1 127.0.40.2", "127.0.41.1 127.0.41.2"

	p := startBinary(t, dir, conf)
	up(p)
	var mark struct{ Last uint64 }
	json.Unmarshal(c.mustCall(200, "GET", "/api/v1/events", "").body, &mark)

	// 1. A timed drain: out at once, back by itself at until.
	until := time.Now().Add(2 * time.Second)
	c.mustCall(200, "PUT", "/api/v1/pools/dc1/addresses/127.0.40.1/mode", `{"mode":"down","until":"`+rfc3339(until)+`"}`)
	if got := ask("www.gtm.example.net"); got != "127.0.40.2" {
		t.Fatalf("timed drain not in force: %s", got)
	}
	if a := c.pools()["dc1"].addr("127.0.40.1"); a.Mode != "down" || a.ModeSource != "address" || a.Until == nil || !a.Until.Equal(until.Truncate(0)) {
		t.Fatalf("status of the timed drain: %+v", a)
	}
	back := waitAnswer("www.gtm.example.net", both, 10*time.Second)
	if back.Before(until) {
		t.Fatalf("the drain ended %v before until", until.Sub(back))
	}
	t.Logf("timed drain: the answer changed %v after until", back.Sub(until).Round(time.Millisecond))
	if back.Sub(until) > time.Second {
		t.Errorf("the answer changed %v after until; want well under a second", back.Sub(until))
	}
	eventually(t, 5*time.Second, func() string {
		if b, _ := os.ReadFile(stateFile); strings.Contains(string(b), "modes/dc1/127.0.40.1") {
			return "the ended override is still in the state file"
		}
		return ""
	})

	// 2. A scheduled window: stored and shown at once, in force from from to until.
	from, until := time.Now().Add(1500*time.Millisecond), time.Now().Add(3500*time.Millisecond)
	c.mustCall(200, "PUT", "/api/v1/pools/dc1/addresses/127.0.40.2/mode", `{"mode":"down","from":"`+rfc3339(from)+`","until":"`+rfc3339(until)+`"}`)
	if got := ask("www.gtm.example.net"); got != both {
		t.Fatalf("a scheduled window is in force before from: %s", got)
	}
	if a := c.pools()["dc1"].addr("127.0.40.2"); a.Mode != "auto" || a.Scheduled == nil || a.Scheduled.Mode != "down" || !a.Scheduled.From.Equal(from.Truncate(0)) {
		t.Fatalf("status of the scheduled window: %+v", a)
	}
	started := waitAnswer("www.gtm.example.net", "127.0.40.1", 5*time.Second)
	if started.Before(from) {
		t.Fatalf("the window started %v before from", from.Sub(started))
	}
	t.Logf("scheduled window: started %v after from", started.Sub(from).Round(time.Millisecond))
	ended := waitAnswer("www.gtm.example.net", both, 5*time.Second)
	if ended.Before(until) {
		t.Fatalf("the window ended %v before until", until.Sub(ended))
	}
	t.Logf("scheduled window: ended %v after until", ended.Sub(until).Round(time.Millisecond))
	want := []string{
		"mode:set dc1/127.0.40.1", "mode:expired dc1/127.0.40.1",
		"mode:scheduled dc1/127.0.40.2", "mode:started dc1/127.0.40.2", "mode:expired dc1/127.0.40.2",
	}
	eventually(t, 3*time.Second, func() string {
		if got := c.eventsSince(mark.Last); !slices.Equal(got, want) {
			return fmt.Sprintf("events %v, want %v", got, want)
		}
		return ""
	})

	// 3. Across a SIGKILL: a drain that ends while the process is down is gone at startup;
	// a window whose from passes while it is down is in force at startup and ends by itself.
	gone := time.Now().Add(time.Second)
	from, until = time.Now().Add(time.Second), time.Now().Add(12*time.Second)
	c.mustCall(200, "PUT", "/api/v1/pools/dc1/addresses/127.0.40.1/mode", `{"mode":"down","until":"`+rfc3339(gone)+`"}`)
	c.mustCall(200, "PUT", "/api/v1/pools/dc2/addresses/127.0.41.2/mode", `{"mode":"down","from":"`+rfc3339(from)+`","until":"`+rfc3339(until)+`"}`)
	p.kill()
	time.Sleep(time.Until(gone.Add(200 * time.Millisecond)))
	p = startBinary(t, dir, conf)
	up(p)
	if got := ask("www.gtm.example.net"); got != both {
		t.Fatalf("a drain that ended while the process was down is in force after the restart: %s", got)
	}
	if time.Until(until) > 500*time.Millisecond {
		if got := ask("b.gtm.example.net"); got != "127.0.41.1" {
			t.Fatalf("a window whose from passed while the process was down is not in force: %s", got)
		}
	} else {
		t.Logf("the restart took until the window's end; its start is not checked")
	}
	eventually(t, 5*time.Second, func() string {
		if b, _ := os.ReadFile(stateFile); strings.Contains(string(b), "modes/dc1/127.0.40.1") {
			return "the drain that ended while down is still in the state file"
		}
		return ""
	})
	ended = waitAnswer("b.gtm.example.net", dc2, 15*time.Second)
	if ended.Before(until) {
		t.Fatalf("the window ended %v before until after the restart", until.Sub(ended))
	}
	t.Logf("after a restart: the window ended %v after until", ended.Sub(until).Round(time.Millisecond))

	// 4. A pool-wide drain: every address whose own mode is auto, not the one set up.
	c.mustCall(200, "PUT", "/api/v1/pools/dc1/addresses/127.0.40.1/mode", `{"mode":"up"}`)
	c.mustCall(200, "PUT", "/api/v1/pools/dc1/mode", `{"mode":"down"}`)
	if got := ask("www.gtm.example.net"); got != "127.0.40.1" {
		t.Fatalf("pool drain with one address's own up: %s", got)
	}
	pl := c.pools()["dc1"]
	if pl.Mode != "down" || pl.addr("127.0.40.1").ModeSource != "address" || pl.addr("127.0.40.2").ModeSource != "pool" || pl.addr("127.0.40.2").Mode != "down" {
		t.Fatalf("status of the pool drain: %+v", pl)
	}
	c.mustCall(200, "PUT", "/api/v1/pools/dc1/addresses/127.0.40.1/mode", `{"mode":"auto"}`)
	if got := ask("www.gtm.example.net"); got != dc2 {
		t.Fatalf("a drained pool still answers: %s", got)
	}
	// The pool mode survives a SIGKILL too, and DELETE clears it.
	p.kill()
	p = startBinary(t, dir, conf)
	up(p)
	if got := ask("www.gtm.example.net"); got != dc2 {
		t.Fatalf("the pool drain after a restart: %s", got)
	}
	c.mustCall(200, "DELETE", "/api/v1/pools/dc1/mode", "")
	if got := ask("www.gtm.example.net"); got != both {
		t.Fatalf("after the pool mode was cleared: %s", got)
	}
}
