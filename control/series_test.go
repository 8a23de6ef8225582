package control

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// Issue 19 item 17: counter series of removed domains, routes and pools are deleted when a
// new snapshot replaces the old one, so 50 reloads that rename pools leave one set of series.
func TestRemovedSeriesAreDeleted(t *testing.T) {
	resources := func(i int) string {
		return fmt.Sprintf(`{"pools":{"p%d":{"addresses":[{"address":"192.0.2.1"}]}},"domains":{"d%d.gtm.series.test":{"routes":[{"selector":"default","pools":["p%d"]}]}}}`, i, i, i)
	}
	count := func() (answers, failovers int) {
		ch := make(chan prometheus.Metric, 1024)
		metrics.Answers.Collect(ch)
		close(ch)
		for m := range ch {
			var pb dto.Metric
			m.Write(&pb)
			for _, l := range pb.Label {
				if l.GetName() == "domain" && strings.HasSuffix(l.GetValue(), "gtm.series.test") {
					answers++
				}
			}
		}
		for _, r := range RouteCounters() {
			if strings.Contains(r.Domain, "gtm.series.test") {
				failovers++
			}
		}
		return
	}
	var old *compiled
	for i := range 50 {
		cfg := testConfig(t, "gtm.series.test.", resources(i))
		cs := compile(cfg, cfg.Resources, newMemStore(t), nil, nil)
		cs.acquire()
		d := cs.Domains[0]
		cs.account(d, d.Routes[0], &policy.Result{Pool: cs.Pools[0]}) // one answer: the lazy child exists
		if old != nil {
			old.forgetSeries(cs)
			old.release()
		}
		old = cs
	}
	if a, f := count(); a != 1 || f != 1 {
		t.Fatalf("after 50 renames: %d answers_total and %d failovers_total series, want 1 and 1", a, f)
	}
	old.forgetSeries()
	if a, f := count(); a != 0 || f != 0 {
		t.Fatalf("after the last snapshot left: %d and %d series, want none", a, f)
	}
}

// Issue 19 item 16: a fail-open answer is not also a failover.
func TestFailOpenIsNoFailover(t *testing.T) {
	cfg := testConfig(t, "gtm.fo.test.", `{"pools":{"a":{"addresses":[{"address":"192.0.2.1"}]}},"domains":{"www.gtm.fo.test":{"routes":[{"selector":"default","pools":["a"]}]}}}`)
	cs := compile(cfg, cfg.Resources, newMemStore(t), nil, nil)
	t.Cleanup(func() { cs.forgetSeries(); cs.release() })
	d := cs.Domains[0]
	c := routeCountersOf("www.gtm.fo.test", "default")
	before := c.failovers.Load()
	cs.account(d, d.Routes[0], &policy.Result{Pool: cs.Pools[0], FailOpen: true, Switched: true})
	if got := c.failovers.Load(); got != before {
		t.Fatalf("fail-open counted as a failover: %v -> %v", before, got)
	}
	if got := c.failOpens.Load(); got != 1 {
		t.Fatalf("fail-open not counted: %v", got)
	}
}
