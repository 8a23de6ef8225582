package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/webhook"
)

// delivery is one request a test receiver got.
type delivery struct {
	at                   time.Time
	kind, id, sig, ctype string
	sigOK                bool
	event                map[string]any
}

// hookReceiver is a webhook receiver on loopback that behaves as told.
type hookReceiver struct {
	url      string
	mu       sync.Mutex
	got      []delivery
	requests atomic.Int64
	inFlight atomic.Int64
}

func (r *hookReceiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// newReceiver serves behave ("ok", "hang", "500", "reset") on a loopback port; ok verifies
// each signature with secret.
func newReceiver(t *testing.T, behave string, secret []byte) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{url: "http://" + ln.Addr().String() + "/hook"}
	stop := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		body, _ := io.ReadAll(req.Body)
		switch behave {
		case "hang":
			select { // until the sender gives up (or the test ends)
			case <-req.Context().Done():
			case <-stop:
			}
			return
		case "500":
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		case "reset":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0) // close with a RST
				conn.Close()
			}
			return
		}
		d := delivery{at: time.Now(), kind: req.Header.Get(webhook.EventHeader), id: req.Header.Get(webhook.DeliveryHeader),
			sig: req.Header.Get(webhook.SignatureHeader), ctype: req.Header.Get("Content-Type")}
		d.sigOK = webhook.Verify(secret, body, d.sig)
		json.Unmarshal(body, &d.event)
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(stop); srv.Close() })
	return r
}

// loadResult is what a bounded query load saw.
type loadResult struct {
	lat    []time.Duration // sorted
	errors int
}

func (l loadResult) pct(p float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	return l.lat[min(len(l.lat)-1, int(float64(len(l.lat))*p))]
}

// queryLoad sends n queries for name over about d from 4 paced workers.
func queryLoad(addr, name string, n int, d time.Duration) loadResult {
	const workers = 4
	per := n / workers
	gap := d / time.Duration(per)
	var mu sync.Mutex
	var res loadResult
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(name), dns.TypeA)
			next := time.Now()
			for range per {
				time.Sleep(time.Until(next))
				next = next.Add(gap)
				t0 := time.Now()
				_, _, err := c.Exchange(m, addr)
				lat := time.Since(t0)
				mu.Lock()
				res.lat = append(res.lat, lat)
				if err != nil {
					res.errors++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(res.lat)
	return res
}

// metricSum adds the values of the series of name whose labels contain every want pair.
func metricSum(t *testing.T, addr, name string, want ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		labels, value, _ := strings.Cut(line[len(name):], " ")
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(labels, w)
		}
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}

func webhookCorefile(dnsPort, backPort int, metrics, apiAddr, token, hooks string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    prometheus %s
    gtm gtm.example.net {
        healthcheck web {
            protocol http
            port %d
            path /health
            interval 200ms
            timeout 150ms
            fall 2
            rise 2
        }
        pool primary {
            address 127.0.40.1
            healthcheck web
        }
        pool standby {
            address 127.0.41.1
            healthcheck web
        }
        domain www.gtm.example.net {
            route default primary standby
        }
        api %s {
            token_file %s
%s
        }
    }
}
`, dnsPort, metrics, backPort, apiAddr, token, hooks)
}

// webhookRun is one binary under load: its DNS latencies and how soon it saw the primary go.
type webhookRun struct {
	load        loadResult
	dnsDetect   time.Duration // target failing -> DNS answers the standby
	hookDetect  time.Duration // target failing -> the good receiver has the health event
	flippedAt   time.Time
	metrics     string
	api         *apiClient
	burstEvents int
}

// TestWebhooksUnderLoad runs the binary twice under the same bounded query load while the
// primary's target goes down: without webhooks (the baseline), then with four receivers:
// one that verifies signatures, one that hangs, one that answers 500, one that resets the
// connection, their queues filled by a burst of override events. The DNS latency must not
// degrade and the health change must be seen (and delivered) on time.
func TestWebhooksUnderLoad(t *testing.T) {
	dir := t.TempDir()
	backPort := freePort(t)
	primary := newBackend(t, "127.0.40.1", backPort)
	newBackend(t, "127.0.41.1", backPort)
	token := writeFile(t, filepath.Join(dir, "token"), "hook-token\n")
	secret := "whsec-0123456789\n"
	secretFile := writeFile(t, filepath.Join(dir, "secret"), secret)
	key := []byte(strings.TrimRight(secret, "\n"))
	good := newReceiver(t, "ok", key)
	hang, fail, reset := newReceiver(t, "hang", key), newReceiver(t, "500", key), newReceiver(t, "reset", key)

	run := func(name, hooks string, burst int) webhookRun {
		t.Helper()
		primary.status.Store(200)
		dnsPort, metrics := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		conf := writeFile(t, filepath.Join(dir, "Corefile."+name), webhookCorefile(dnsPort, backPort, metrics, apiAddr, token, hooks))
		p := startBinary(t, dir, conf)
		defer p.kill()
		s := &server{t: t, udp: fmt.Sprintf("127.0.0.1:%d", dnsPort)}
		c := &apiClient{t: t, base: "http://" + apiAddr, token: "hook-token"}
		eventually(t, 30*time.Second, func() string {
			m, err := s.exchange(query{name: "www.gtm.example.net", qtype: dns.TypeA})
			if err != nil {
				return "DNS not answering: " + err.Error() + "\n" + p.out.String()
			}
			if got := join(answers(m)); got != "127.0.40.1" {
				return "www answers " + got
			}
			return ""
		})
		r := webhookRun{api: c}
		// A burst of override events, more than a queue holds: the receivers that never
		// accept fill theirs, and the rest is dropped.
		for i := range burst {
			mode := []string{"up", "auto"}[i%2]
			c.mustCall(200, "PUT", "/api/v1/pools/standby/addresses/127.0.41.1/mode", `{"mode":"`+mode+`"}`)
		}
		r.burstEvents = burst
		var wg sync.WaitGroup
		wg.Go(func() { r.load = queryLoad(s.udp, "www.gtm.example.net", 2000, 5*time.Second) })
		time.Sleep(1500 * time.Millisecond)
		r.flippedAt = time.Now()
		primary.status.Store(503)
		wg.Go(func() {
			for time.Since(r.flippedAt) < 10*time.Second {
				if m, err := s.exchange(query{name: "www.gtm.example.net", qtype: dns.TypeA}); err == nil && join(answers(m)) == "127.0.41.1" {
					r.dnsDetect = time.Since(r.flippedAt)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
		if hooks != "" {
			wg.Go(func() {
				for time.Since(r.flippedAt) < 10*time.Second {
					for _, d := range good.deliveries() {
						if d.kind == "health" && d.event["address"] == "127.0.40.1" && d.event["healthy"] == false {
							r.hookDetect = d.at.Sub(r.flippedAt)
							return
						}
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r.metrics = string(b)
		}
		// Checked while the binary runs.
		if hooks != "" {
			for _, w := range []struct {
				what string
				v    float64
			}{
				{"hang: queue_full drops", metricSum(t, metrics, "coredns_gtm_webhook_dropped_total", `webhook="hang"`, `reason="queue_full"`)},
				{"fail: status attempts", metricSum(t, metrics, "coredns_gtm_webhook_deliveries_total", `webhook="fail"`, `result="status"`)},
				{"reset: error attempts", metricSum(t, metrics, "coredns_gtm_webhook_deliveries_total", `webhook="reset"`, `result="error"`)},
				{"good: ok deliveries", metricSum(t, metrics, "coredns_gtm_webhook_deliveries_total", `webhook="good"`, `result="ok"`)},
			} {
				if w.v == 0 {
					t.Errorf("metric %s is 0", w.what)
				}
			}
			st := c.mustCall(200, "GET", "/api/v1/status", "")
			var doc struct {
				Webhooks []webhook.Status `json:"webhooks"`
			}
			json.Unmarshal(st.body, &doc)
			byName := map[string]webhook.Status{}
			for _, w := range doc.Webhooks {
				byName[w.Name] = w
			}
			if w := byName["fail"]; !strings.Contains(w.LastError, "500") || w.LastErrorTime == nil {
				t.Errorf("status of webhook fail: %+v; want its last error naming the 500", w)
			}
			if w := byName["hang"]; w.Dropped == 0 || w.Queued == 0 {
				t.Errorf("status of webhook hang: %+v; want a full queue and drops", w)
			}
			if w := byName["good"]; w.Delivered == 0 || w.LastDelivery == nil {
				t.Errorf("status of webhook good: %+v", w)
			}
			if strings.Contains(string(st.body), "127.0.0.1") && strings.Contains(string(st.body), "/hook") {
				t.Errorf("the status shows a webhook URL: %s", st.body)
			}
		}
		return r
	}

	base := run("base", "", 0)
	hooks := fmt.Sprintf(`            webhook %s {
                name good
                secret %s
                events health failover failopen
            }
            webhook %s {
                name hang
            }
            webhook %s {
                name fail
                secret %s
            }
            webhook %s {
                name reset
            }`, good.url, secretFile, hang.url, fail.url, secretFile, reset.url)
	with := run("hooks", hooks, 1100)

	t.Logf("baseline:      %d queries, %d errors, p50 %v p99 %v max %v; down seen in DNS after %v",
		len(base.load.lat), base.load.errors, base.load.pct(.5), base.load.pct(.99), base.load.pct(1), base.dnsDetect)
	t.Logf("with webhooks: %d queries, %d errors, p50 %v p99 %v max %v; down seen in DNS after %v, delivered after %v",
		len(with.load.lat), with.load.errors, with.load.pct(.5), with.load.pct(.99), with.load.pct(1), with.dnsDetect, with.hookDetect)
	t.Logf("receivers: good %d deliveries, hang %d requests, fail %d requests, reset %d requests",
		len(good.deliveries()), hang.requests.Load(), fail.requests.Load(), reset.requests.Load())

	// A generous bound: the machine is shared, but a receiver that blocked the event path
	// would cost seconds (a hung request is 5 s), not milliseconds.
	if limit := 5*base.load.pct(.99) + 50*time.Millisecond; with.load.pct(.99) > limit {
		t.Errorf("p99 with webhooks %v, baseline %v: above %v", with.load.pct(.99), base.load.pct(.99), limit)
	}
	if with.load.errors > base.load.errors+20 {
		t.Errorf("%d failed queries with webhooks, %d without", with.load.errors, base.load.errors)
	}
	if base.dnsDetect == 0 || with.dnsDetect == 0 || with.dnsDetect > base.dnsDetect+2*time.Second {
		t.Errorf("the target's failure answered in DNS after %v with webhooks, %v without (0: never)", with.dnsDetect, base.dnsDetect)
	}
	if with.hookDetect == 0 || with.hookDetect > with.dnsDetect+2*time.Second {
		t.Errorf("the health event reached the receiver after %v (0: never), DNS saw it after %v", with.hookDetect, with.dnsDetect)
	}

	kinds := map[string]int{}
	for _, d := range good.deliveries() {
		kinds[d.kind]++
		if !d.sigOK || d.ctype != "application/json" || d.id == "" || d.event["kind"] != d.kind || d.event["node"] == "" || d.event["node"] == nil || d.event["id"] == nil {
			t.Errorf("delivery %+v: want a valid signature, JSON, a delivery id, and the event with its node", d)
		}
	}
	if kinds["health"] == 0 || kinds["failover"] == 0 || kinds["mode"] != 0 || kinds["reload"] != 0 {
		t.Errorf("the good receiver got %v: want health and failover, and nothing its events filter leaves out", kinds)
	}
	for _, name := range []string{"coredns_gtm_webhook_deliveries_total", "coredns_gtm_webhook_dropped_total"} {
		if !strings.Contains(with.metrics, name+"{") {
			t.Errorf("the dashboard queries %s, which the server with webhooks does not export", name)
		}
	}
	if n := hang.requests.Load(); n > 6 {
		t.Errorf("the hanging receiver got %d requests within the test: want one at a time, each waiting out its 5 s timeout", n)
	}
}

// hookGoroutines counts the webhook delivery goroutines of this process.
func hookGoroutines() int {
	buf := make([]byte, 8<<20)
	n := runtime.Stack(buf, true)
	return len(regexp.MustCompile(`webhook\.\(\*Hook\)\.run\(`).FindAll(buf[:n], -1))
}

// TestWebhookLifecycle: every reload stops the old block's webhooks (cancelling a request in
// flight) and starts the new block's, no event is delivered twice across the handover, and
// the last shutdown leaves no delivery goroutine.
func TestWebhookLifecycle(t *testing.T) {
	if n := hookGoroutines(); n != 0 {
		t.Fatalf("%d webhook goroutines before the test", n)
	}
	dir := t.TempDir()
	key := []byte("k")
	secret := writeFile(t, filepath.Join(dir, "secret"), "k\n")
	good, hang := newReceiver(t, "ok", key), newReceiver(t, "hang", key)
	t.Cleanup(func() { // runs after the server's cleanup (registered later) shut it down
		eventually(t, 5*time.Second, func() string {
			if n := hookGoroutines(); n != 0 {
				return fmt.Sprintf("%d webhook goroutines after shutdown", n)
			}
			if n := hang.inFlight.Load(); n != 0 {
				return fmt.Sprintf("%d requests still open on the hanging receiver", n)
			}
			return ""
		})
	})
	port := freePort(t)
	newBackend(t, "127.0.20.1", port)
	newBackend(t, "127.0.20.2", port)
	newBackend(t, "127.0.21.1", port)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := healthCorefile(port, fmt.Sprintf(`api %s {
            webhook %s {
                secret %s
                events reload
            }
            webhook %s
        }`, apiAddr, good.url, secret, hang.url))
	s := start(t, conf)
	reloads := func(want int) {
		t.Helper()
		eventually(t, 5*time.Second, func() string {
			if n := hookGoroutines(); n != 2 {
				return fmt.Sprintf("%d webhook goroutines, want 2", n)
			}
			n := 0
			for _, d := range good.deliveries() {
				if d.kind == "reload" && d.sigOK {
					n++
				}
			}
			if n != want {
				return fmt.Sprintf("%d signed reload events delivered, want %d", n, want)
			}
			return ""
		})
	}
	reloads(1)
	eventually(t, 5*time.Second, func() string {
		if hang.inFlight.Load() != 1 {
			return "no request open on the hanging receiver"
		}
		return ""
	})
	for i := 2; i <= 4; i++ {
		if err := s.reload(conf); err != nil {
			t.Fatal(err)
		}
		reloads(i)
	}
	time.Sleep(300 * time.Millisecond)
	reloads(4) // and not more: the old block's webhook did not deliver the new block's event
	if n := hang.requests.Load(); n < 4 {
		t.Errorf("the hanging receiver got %d requests: want one per instance, each cancelled by the reload", n)
	}
	// A reload without webhooks: the old ones stop at once and do not send its reload event.
	if err := s.reload(healthCorefile(port, "api "+apiAddr)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if n := hookGoroutines(); n != 0 {
			return fmt.Sprintf("%d webhook goroutines after a reload without webhooks", n)
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(good.deliveries()); n != 4 {
		t.Errorf("%d deliveries, want 4: the reload without webhooks was delivered by the old ones", n)
	}
}

// TestBinaryRejectsBrokenWebhooks: a webhook the binary cannot use stops startup with the
// Corefile's file and line.
func TestBinaryRejectsBrokenWebhooks(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"missing secret": {"webhook http://127.0.0.1:9/ {\n            secret " + dir + "/nope\n        }",
			"Corefile:5 - Error during parsing: api: webhook http://127.0.0.1:9/: secret: open " + dir + "/nope: no such file or directory"},
		"not http": {"webhook ftp://127.0.0.1:9/", `Corefile:4 - Error during parsing: api: webhook: bad URL "ftp://127.0.0.1:9/": expected http:// or https://`},
		"unknown kind": {"webhook http://127.0.0.1:9/ {\n            events health outage\n        }",
			`Corefile:5 - Error during parsing: api: webhook http://127.0.0.1:9/: events: unknown kind "outage"`},
	} {
		t.Run(name, func(t *testing.T) {
			conf := writeFile(t, filepath.Join(dir, "Corefile"), ".:0 {\n  gtm gtm.example.net {\n    api 127.0.0.1:0 {\n        "+tc.body+"\n    }\n  }\n}\n")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "-conf", conf).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("exit: %v (ctx %v), output:\n%s", err, ctx.Err(), out)
			}
			if !strings.Contains(string(out), dir+"/"+tc.want) {
				t.Fatalf("output does not contain %q:\n%s", tc.want, out)
			}
		})
	}
}
