package test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 25 item 7: the probe and health-change series of a template renamed or deleted
// through the API go with it (they stayed for every template name ever used).
func TestTemplateSeriesForgotten(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	newBackend(t, "127.0.25.1", port)
	newBackend(t, "127.0.25.2", port).status.Store(500) // a health change to count
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	token := writeFile(t, filepath.Join(dir, "token"), "series-token\n")
	start(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    prometheus %s
    gtm gtm.example.net {
        api %s {
            token_file %s
            state %s
        }
        pool base {
            address 192.0.2.100
        }
        domain base.gtm.example.net {
            route default base
        }
    }
}`, metricsAddr, apiAddr, token, filepath.Join(dir, "state.json")))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "series-token"}
	check := func(string) string {
		return fmt.Sprintf(`{"protocol":"http","port":%d,"interval":"1s","timeout":"500ms","fall":1,"rise":1}`, port)
	}
	series := func(name string) []string {
		var out []string
		for _, l := range strings.Split(get(t, "http://"+metricsAddr+"/metrics", ""), "\n") {
			if strings.Contains(l, `healthcheck="`+name+`"`) {
				out = append(out, l)
			}
		}
		return out
	}
	// seen waits for the series of name; a renamed template's prober is kept (same check),
	// its verdicts carried over, so only the first one counts a health change.
	seen := func(name string, changes bool) {
		t.Helper()
		wants := []string{"coredns_gtm_probes_total", "coredns_gtm_probe_duration_seconds_bucket"}
		if changes {
			wants = append(wants, "coredns_gtm_health_changes_total")
		}
		eventually(t, 10*time.Second, func() string {
			s := strings.Join(series(name), "\n")
			for _, want := range wants {
				if !strings.Contains(s, want) {
					return "no " + want + " series of " + name + " yet"
				}
			}
			return ""
		})
	}
	pool := func(tpl string) string {
		return `{"addresses":[{"address":"127.0.25.1"},{"address":"127.0.25.2"}],"healthcheck":"` + tpl + `"}`
	}
	c.mustCall(201, "PUT", "/api/v1/config/healthchecks/tpl-series-0", check("tpl-series-0"))
	c.mustCall(201, "PUT", "/api/v1/config/pools/series", pool("tpl-series-0"))
	seen("tpl-series-0", true)
	for i := 1; i <= 3; i++ {
		prev, name := fmt.Sprintf("tpl-series-%d", i-1), fmt.Sprintf("tpl-series-%d", i)
		c.mustCall(201, "PUT", "/api/v1/config/healthchecks/"+name, check(name))
		c.mustCall(200, "PUT", "/api/v1/config/pools/series", pool(name))
		c.mustCall(204, "DELETE", "/api/v1/config/healthchecks/"+prev, "")
		seen(name, false)
		if s := series(prev); len(s) > 0 {
			t.Fatalf("template %s renamed to %s: its series stay:\n%s", prev, name, strings.Join(s, "\n"))
		}
	}
	// The pool and its template deleted: no series of them at all.
	c.mustCall(204, "DELETE", "/api/v1/config/pools/series", "")
	c.mustCall(204, "DELETE", "/api/v1/config/healthchecks/tpl-series-3", "")
	if s := series("tpl-series-3"); len(s) > 0 {
		t.Fatalf("the last template deleted: its series stay:\n%s", strings.Join(s, "\n"))
	}
}
