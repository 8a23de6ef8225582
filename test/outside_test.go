package test

// End-to-end tests of health from outside (PRODUCT.md Part 3): a real Prometheus server
// scraping an exporter whose values the test changes, check_address, max_rtt.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// exporter serves Prometheus text metrics whose values the test sets.
type exporter struct {
	mu     sync.Mutex
	series map[string]string // `name{labels}` -> value
	addr   string
}

func newExporter(t *testing.T) *exporter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &exporter{series: map[string]string{}, addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		keys := make([]string, 0, len(e.series))
		for k := range e.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		for _, k := range keys {
			fmt.Fprintf(w, "%s %s\n", k, e.series[k])
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return e
}

func (e *exporter) set(series, value string) {
	e.mu.Lock()
	e.series[series] = value
	e.mu.Unlock()
}

// scrapeInterval is the test Prometheus's scrape interval.
const scrapeInterval = time.Second

// startPrometheus runs Debian's prometheus scraping target every second and returns its URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin := requireTool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	conf := writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: backends
    static_configs:
      - targets: ["%s"]
`, scrapeInterval, scrapeInterval, target))
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	url := "http://" + listen
	eventually(t, 30*time.Second, func() string {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return ""
	})
	return url
}

func outsideCorefile(apiAddr, token, promURL string, checkPort int) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
        }
        healthcheck errors {
            protocol prometheus
            url %s
            query backend_error_ratio{address="{{address}}"}
            expect < 0.05
            interval 500ms
            timeout 400ms
            fall 1
            rise 1
        }
        healthcheck up {
            protocol prometheus
            url %s
            query backend_up
            expect == 1
            interval 500ms
            timeout 400ms
            fall 1
            rise 1
        }
        healthcheck broken {
            protocol prometheus
            url %s
            query "sum(backend_up"
            expect > 0
            interval 500ms
            timeout 400ms
        }
        healthcheck tcp {
            protocol tcp
            port %d
            interval 300ms
            timeout 250ms
            fall 1
            rise 1
        }
        pool primary {
            address 127.0.50.1
            healthcheck errors
        }
        pool shared {
            address 127.0.50.3
            address 127.0.50.4
            lb all
            healthcheck up
        }
        pool broken {
            address 127.0.50.5
            healthcheck broken
        }
        pool nat {
            address 127.0.50.10 check_address 127.0.50.11
            healthcheck tcp
        }
        pool standby {
            address 127.0.50.2
        }
        domain www.gtm.example.net {
            route default primary standby
        }
        domain shared.gtm.example.net {
            route default shared standby
        }
        domain broken.gtm.example.net {
            route default broken standby
        }
        domain nat.gtm.example.net {
            route default nat standby
        }
    }
}`, apiAddr, token, promURL, promURL, promURL, checkPort)
}

// addressStatus finds an address's status in GET /api/v1/status.
func addressStatus(t *testing.T, api *apiClient, pool, addr string) map[string]any {
	t.Helper()
	_, st := api.do("GET", "/api/v1/status", "", true)
	pools, _ := st["pools"].([]any)
	for _, p := range pools {
		pm := p.(map[string]any)
		if pm["name"] != pool {
			continue
		}
		for _, a := range pm["addresses"].([]any) {
			if am := a.(map[string]any); am["address"] == addr {
				return am
			}
		}
	}
	t.Fatalf("no address %s in pool %s", addr, pool)
	return nil
}

// The answer follows a metric in a real Prometheus: within interval x fall + the scrape
// interval of a change, per address ({{address}}) and for a shared query whose samples carry
// an address label. A query Prometheus refuses is a failed check naming its error.
func TestPrometheusCheckFollowsMetric(t *testing.T) {
	exp := newExporter(t)
	exp.set(`backend_error_ratio{address="127.0.50.1"}`, "0.01")
	exp.set(`backend_up{address="127.0.50.3"}`, "1")
	exp.set(`backend_up{address="127.0.50.4"}`, "1")
	prom := startPrometheus(t, exp.addr)
	// The first scrape must have happened before gtm's first probe decides.
	eventually(t, 15*time.Second, func() string {
		resp, err := http.Get(prom + "/api/v1/query?query=backend_up")
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "127.0.50.4") {
			return "not scraped yet: " + string(b)
		}
		return ""
	})
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	api := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	s := start(t, outsideCorefile(apiAddr, token, prom, freePort(t)))
	ask := func(name string) string {
		return join(answers(s.ask(query{name: name, qtype: dns.TypeA})))
	}
	// interval 500ms x fall 1 + scrape 1s, with room for a loaded machine.
	const within = 500*time.Millisecond + scrapeInterval + 3*time.Second
	eventually(t, within, func() string {
		if got := ask("www.gtm.example.net"); got != "127.0.50.1" {
			return "answers " + got + " while the error ratio is 0.01"
		}
		return ""
	})
	exp.set(`backend_error_ratio{address="127.0.50.1"}`, "0.2")
	took := eventually(t, within, func() string {
		if got := ask("www.gtm.example.net"); got != "127.0.50.2" {
			return "answers " + got + " while the error ratio is 0.2, want the standby"
		}
		return ""
	})
	t.Logf("the answer followed the metric down in %s", took)
	st := addressStatus(t, api, "primary", "127.0.50.1")
	if st["last_result"] != "value" || !strings.Contains(fmt.Sprint(st["last_error"]), "0.2 does not meet expect < 0.05") {
		t.Fatalf("status of the primary: %v", st)
	}
	exp.set(`backend_error_ratio{address="127.0.50.1"}`, "0.001")
	eventually(t, within, func() string {
		if got := ask("www.gtm.example.net"); got != "127.0.50.1" {
			return "answers " + got + " after the ratio fell back"
		}
		return ""
	})

	// The shared query: one sample per address by its label.
	eventually(t, within, func() string {
		got := strings.Fields(ask("shared.gtm.example.net"))
		sort.Strings(got)
		if strings.Join(got, " ") != "127.0.50.3 127.0.50.4" {
			return fmt.Sprintf("shared answers %v", got)
		}
		return ""
	})
	exp.set(`backend_up{address="127.0.50.4"}`, "0")
	eventually(t, within, func() string {
		if got := ask("shared.gtm.example.net"); got != "127.0.50.3" {
			return "shared answers " + got + " with 127.0.50.4 at 0"
		}
		return ""
	})
	// A sample that is gone (the series no longer exported goes stale) is a failed check.
	exp.mu.Lock()
	delete(exp.series, `backend_up{address="127.0.50.3"}`)
	exp.mu.Unlock()
	eventually(t, within+2*scrapeInterval, func() string {
		st := addressStatus(t, api, "shared", "127.0.50.3")
		if st["healthy"] != false || !strings.Contains(fmt.Sprint(st["last_error"]), `no sample with address="127.0.50.3"`) {
			return fmt.Sprintf("a vanished series: %v %v", st["healthy"], st["last_error"])
		}
		return ""
	})

	// A query Prometheus refuses: failed, with Prometheus's message, and gtm goes on.
	eventually(t, within, func() string {
		st := addressStatus(t, api, "broken", "127.0.50.5")
		if st["healthy"] != false || st["last_result"] != "query" || !strings.Contains(fmt.Sprint(st["last_error"]), "bad_data") {
			return fmt.Sprintf("broken PromQL: %v %v %v", st["healthy"], st["last_result"], st["last_error"])
		}
		return ""
	})
	if got := ask("broken.gtm.example.net"); got != "127.0.50.2" {
		t.Fatalf("a domain over a broken query answers %s, want the standby", got)
	}
}

// check_address: probes go to the check address; the answer carries the address; the status
// and the events name both.
func TestCheckAddressAnswersTheOther(t *testing.T) {
	port := freePort(t)
	var ln net.Listener
	listen := func() {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.50.11:%d", port)); err != nil {
			t.Fatal(err)
		}
		go func(l net.Listener) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}(ln)
	}
	listen()
	t.Cleanup(func() { ln.Close() })
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok\n")
	api := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	s := start(t, outsideCorefile(apiAddr, token, "http://127.0.0.1:1", port))
	ask := func() string { return join(answers(s.ask(query{name: "nat.gtm.example.net", qtype: dns.TypeA}))) }
	eventually(t, 3*time.Second, func() string {
		st := addressStatus(t, api, "nat", "127.0.50.10")
		if st["checked"] != true || st["healthy"] != true {
			return fmt.Sprintf("not judged healthy yet: %v", st)
		}
		return ""
	})
	// Nothing listens on 127.0.50.10 itself: it is healthy only through its check address.
	if got := ask(); got != "127.0.50.10" {
		t.Fatalf("answers %s, want the address 127.0.50.10 (probed at 127.0.50.11)", got)
	}
	st := addressStatus(t, api, "nat", "127.0.50.10")
	if st["check_address"] != "127.0.50.11" {
		t.Fatalf("status does not name the check address: %v", st)
	}
	ln.Close()
	eventually(t, 3*time.Second, func() string {
		if got := ask(); got != "127.0.50.2" {
			return "answers " + got + " after the check address closed, want the standby"
		}
		return ""
	})
	_, ev := api.do("GET", "/api/v1/events?since=0", "", true)
	found := false
	for _, e := range ev["events"].([]any) {
		em := e.(map[string]any)
		if em["kind"] == "health" && em["address"] == "127.0.50.10" && em["check_address"] == "127.0.50.11" &&
			strings.Contains(fmt.Sprint(em["message"]), "127.0.50.10 (check_address 127.0.50.11) is down") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no health event naming both addresses: %v", ev["events"])
	}
	listen()
	eventually(t, 3*time.Second, func() string {
		if got := ask(); got != "127.0.50.10" {
			return "answers " + got + " after the check address came back"
		}
		return ""
	})
}
