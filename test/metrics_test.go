package test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var failOpenCounted = regexp.MustCompile(`coredns_gtm_failopen_total\{domain="www.gtm.example.net",route="default"\} [1-9]`)

// TestMetrics scrapes CoreDNS's prometheus plugin: every family the README lists is there
// with its labels, and every coredns_gtm_ series the Grafana dashboard queries exists.
func TestMetrics(t *testing.T) {
	port := freePort(t)
	newBackend(t, "127.0.20.1", port)
	newBackend(t, "127.0.20.2", port).status.Store(500)
	newBackend(t, "127.0.21.1", port).status.Store(500)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	corefile := strings.Replace(healthCorefile(port, ""), "bind 127.0.0.1", "bind 127.0.0.1\n    prometheus "+metricsAddr, 1)
	s := start(t, corefile)
	// Primary (min_available 2) and standby go down: the route fails open.
	eventually(t, 5*time.Second, func() string {
		s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA})
		if !failOpenCounted.MatchString(get(t, "http://"+metricsAddr+"/metrics", "")) {
			return "no fail-open counted yet"
		}
		return ""
	})
	body := get(t, "http://"+metricsAddr+"/metrics", "")
	for _, want := range []string{
		`coredns_gtm_answers_total{domain="www.gtm.example.net",pool="primary",route="default"}`,
		`coredns_gtm_failopen_total{domain="www.gtm.example.net",route="default"}`,
		`coredns_gtm_address_healthy{address="127.0.20.1",pool="primary"} 1`,
		`coredns_gtm_address_healthy{address="127.0.20.2",pool="primary"} 0`,
		`coredns_gtm_pool_available{pool="primary"} 0`,
		`coredns_gtm_pool_up_addresses{pool="primary"} 1`,
		`coredns_gtm_probe_duration_seconds_bucket{healthcheck="web",le=`,
		`coredns_gtm_probes_total{healthcheck="web",result="status"}`,
		`coredns_gtm_probes_total{healthcheck="web",result="ok"}`,
		`coredns_gtm_health_changes_total{healthcheck="web",state="down"}`,
		`coredns_gtm_overrides{kind="mode"} 0`,
		`coredns_gtm_overrides{kind="pin"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	dash, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`coredns_gtm_[a-z_]+`).FindAllString(string(dash), -1) {
		if !strings.Contains(body, name) && !dashboardOnlyWith[name] {
			t.Errorf("the dashboard queries %s, which the server does not export", name)
		}
	}
}

// dashboardOnlyWith are the series of the dashboard a server exports only in a fleet or
// with webhooks, which this test's server has not (TestWebhooksUnderLoad checks the
// webhook ones).
var dashboardOnlyWith = map[string]bool{
	"coredns_gtm_cluster_connected": true, "coredns_gtm_votes": true, "coredns_gtm_votes_down": true,
	"coredns_gtm_quorum_differs": true, "coredns_gtm_webhook_deliveries_total": true, "coredns_gtm_webhook_dropped_total": true,
}
