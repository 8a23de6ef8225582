package test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coretest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
)

func reloadCorefile(addr string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool p {
            address %s
        }
        domain www.gtm.example.net {
            route default p
        }
    }
}`, addr)
}

// TestReloadUnderLoad reloads the Corefile 20 times while clients query as fast as they can:
// no SERVFAIL, every answer is one of the configurations in force, and lost UDP answers are
// reported (they are bounded, not zero: a reload swaps the handler under packets in flight).
func TestReloadUnderLoad(t *testing.T) {
	s := start(t, reloadCorefile("192.0.2.1"))
	var sent, answered, servfail, wrong, lost atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: 500 * time.Millisecond}
			m := new(dns.Msg)
			m.SetQuestion("www.gtm.example.net.", dns.TypeA)
			deadline := time.Now().Add(20 * time.Second) // bounded whatever happens
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				r, _, err := c.Exchange(m, s.udp)
				switch {
				case err != nil:
					lost.Add(1)
				case r.Rcode == dns.RcodeServerFailure:
					servfail.Add(1)
				case len(r.Answer) != 1:
					wrong.Add(1)
				default:
					if a := r.Answer[0].(*dns.A).A.String(); a != "192.0.2.1" && a != "192.0.2.2" {
						wrong.Add(1)
					} else {
						answered.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	for i := range 20 {
		addr := []string{"192.0.2.2", "192.0.2.1"}[i%2]
		if err := s.reload(reloadCorefile(addr)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("queries %d, answered %d, SERVFAIL %d, wrong %d, lost (UDP timeouts) %d", sent.Load(), answered.Load(), servfail.Load(), wrong.Load(), lost.Load())
	if servfail.Load() != 0 || wrong.Load() != 0 {
		t.Fatalf("%d SERVFAIL and %d wrong answers during reloads", servfail.Load(), wrong.Load())
	}
	if lost.Load()*100 > sent.Load() {
		t.Fatalf("more than 1%% of queries lost during reloads: %d of %d", lost.Load(), sent.Load())
	}
	if answered.Load() < 1000 {
		t.Fatalf("only %d answers: the load did not run", answered.Load())
	}
	// The last configuration is in force (20 reloads end on 192.0.2.1).
	if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.1" {
		t.Fatalf("after the reloads: %s", got)
	}
}

// TestAPIWritesDuringReloads: overrides written through the API while the Corefile is
// reloaded and clients query, all under -race: every write is answered 200 (the listener is
// handed from instance to instance, never closed), no query gets SERVFAIL, and when it is
// over the last write is both in force and in the state file.
func TestAPIWritesDuringReloads(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok\n")
	state := filepath.Join(dir, "state.json")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	corefile := func(ttl int) string {
		return strings.Replace(apiCorefile(apiAddr, token, state, false), "        domain www.gtm.example.net {", fmt.Sprintf("        ttl %d\n        domain www.gtm.example.net {", ttl), 1)
	}
	s := start(t, corefile(30))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var servfail, writes, badWrites atomic.Int64
	wg.Add(1)
	go func() { // DNS clients
		defer wg.Done()
		c := &dns.Client{Timeout: 500 * time.Millisecond}
		m := new(dns.Msg)
		m.SetQuestion("www.gtm.example.net.", dns.TypeA)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			select {
			case <-stop:
				return
			default:
			}
			if r, _, err := c.Exchange(m, s.udp); err == nil && r.Rcode == dns.RcodeServerFailure {
				servfail.Add(1)
			}
		}
	}()
	last := make(chan string, 1)
	wg.Add(1)
	go func() { // an operator flipping a maintenance mode and a pin
		defer wg.Done()
		client := &http.Client{Timeout: 2 * time.Second}
		put := func(path, body string) {
			req, _ := http.NewRequest("PUT", "http://"+apiAddr+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := client.Do(req)
			writes.Add(1)
			if err != nil {
				badWrites.Add(1)
				t.Logf("PUT %s: %v", path, err)
				return
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				badWrites.Add(1)
				t.Logf("PUT %s: %s %s", path, resp.Status, msg)
			}
		}
		mode := ""
		for i := 0; ; i++ {
			select {
			case <-stop:
				last <- mode
				return
			default:
			}
			mode = []string{"down", "auto"}[i%2]
			put("/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"`+mode+`"}`)
			put("/api/v1/domains/www.gtm.example.net/pin", []string{`{"pool":"sg"}`, `{"pool":""}`}[i%2])
		}
	}()
	// At least 10 reloads and 20 writes among them, however slow the machine (bounded).
	reloads := 0
	for deadline := time.Now().Add(15 * time.Second); reloads < 10 || writes.Load() < 20 && time.Now().Before(deadline); reloads++ {
		if err := s.reload(corefile(30 + reloads%10)); err != nil {
			t.Fatalf("reload %d: %v", reloads, err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	mode := <-last
	t.Logf("%d API writes during %d reloads, %d failed; %d SERVFAIL", writes.Load(), reloads, badWrites.Load(), servfail.Load())
	if writes.Load() < 20 || badWrites.Load() != 0 || servfail.Load() != 0 {
		t.Fatalf("%d of %d API writes failed, %d SERVFAIL", badWrites.Load(), writes.Load(), servfail.Load())
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	// The last round wrote mode and pin together: "down" with pin sg, "auto" with no pin.
	inFile := strings.Contains(string(b), `"down"`)
	if inFile != (mode == "down") {
		t.Fatalf("last mode written %q, state file: %s", mode, b)
	}
	want := "192.0.2.1 192.0.2.2"
	if mode == "down" {
		want = "198.51.100.1" // pinned to sg
	}
	r := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})
	got := answers(r)
	slices.Sort(got)
	if join(got) != want {
		t.Fatalf("after the reloads with mode %s: %s, want %s; state file %s\n%v", mode, got, want, b, r)
	}
}

// Issue 19 item 13: two gtm blocks naming one state file would share overrides silently:
// the second is refused at startup, naming the first. Issue 25 item 7: also when the two
// names differ (a symlink to the file, to its directory, a dangling link, a hard link).
func TestTwoBlocksOneStateFileRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other func(dir, state string) string // the second block's name of the file
	}{
		{"same name", func(dir, state string) string { return state }},
		{"symlink to the file", func(dir, state string) string {
			os.WriteFile(state, []byte(`{"version":1}`), 0o600)
			noErr(t, os.Symlink(state, dir+"/link.json"))
			return dir + "/link.json"
		}},
		{"dangling symlink", func(dir, state string) string {
			noErr(t, os.Symlink("state.json", dir+"/link.json"))
			return dir + "/link.json"
		}},
		{"symlinked directory", func(dir, state string) string {
			noErr(t, os.Symlink(dir, dir+"-alias"))
			t.Cleanup(func() { os.Remove(dir + "-alias") })
			return dir + "-alias/state.json"
		}},
		{"hard link", func(dir, state string) string {
			os.WriteFile(state, []byte(`{"version":1}`), 0o600)
			noErr(t, os.Link(state, dir+"/hard.json"))
			return dir + "/hard.json"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			state := dir + "/state.json"
			other := tc.other(dir, state)
			block := func(zone, api, file string) string {
				return `gtm ` + zone + ` {
        api ` + api + ` {
            state ` + file + `
        }
        pool p-` + zone + ` {
            address 192.0.2.1
        }
        domain www.` + zone + ` {
            route default p-` + zone + `
        }
    }`
			}
			corefile := "a.test:0 {\n    bind 127.0.0.1\n    " + block("a.test", "127.0.0.1:0", state) + "\n}\nb.test:0 {\n    bind 127.0.0.1\n    " + block("b.test", "127.0.0.1:0", other) + "\n}\n"
			inst, _, _, err := coretest.CoreDNSServerAndPorts(corefile)
			if err == nil {
				inst.ShutdownCallbacks()
				inst.Stop()
				t.Fatalf("two blocks sharing one state file (%s and %s) started", state, other)
			}
			if !strings.Contains(err.Error(), "already used by the gtm block") || !strings.Contains(err.Error(), other) {
				t.Fatalf("error %v does not name the shared state file and the other block", err)
			}
		})
	}
}

// Issue 19 item 18: pool names label the pool gauges, so two blocks may not both define one
// (the series would flip between their values from scrape to scrape).
func TestPoolNameUniqueAcrossBlocks(t *testing.T) {
	block := func(zone string) string {
		return "gtm " + zone + " {\n        pool web {\n            address 192.0.2.1\n        }\n    }"
	}
	corefile := "a.test:0 {\n    bind 127.0.0.1\n    " + block("a.test") + "\n}\nb.test:0 {\n    bind 127.0.0.1\n    " + block("b.test") + "\n}\n"
	inst, _, _, err := coretest.CoreDNSServerAndPorts(corefile)
	if err == nil {
		inst.ShutdownCallbacks()
		inst.Stop()
		t.Fatal("two blocks with pool web started")
	}
	if !strings.Contains(err.Error(), `"web" is also defined in another gtm block`) {
		t.Fatalf("error %v does not say the pool name is taken", err)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
