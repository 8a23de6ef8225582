package gtm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// seriesText is the default registry in the text exposition format.
func seriesText(t *testing.T) string {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&b, mf)
	}
	return b.String()
}

// Issue 19 item 17: counter series of removed domains, routes and pools are deleted when a
// new snapshot replaces the old one, so 50 reloads that rename pools leave one set of series.
func TestRemovedSeriesAreDeleted(t *testing.T) {
	corefile := func(i int) string {
		return fmt.Sprintf("gtm gtm.series.test {\n pool p%d {\n  address 192.0.2.1\n }\n domain d%d.gtm.series.test {\n  route default p%d\n }\n}", i, i, i)
	}
	count := func() (answers, failovers int) {
		for _, line := range strings.Split(seriesText(t), "\n") {
			switch {
			case strings.HasPrefix(line, "coredns_gtm_answers_total{") && strings.Contains(line, "gtm.series.test"):
				answers++
			case strings.HasPrefix(line, "coredns_gtm_failovers_total{") && strings.Contains(line, "gtm.series.test"):
				failovers++
			}
		}
		return
	}
	var old *compiled
	for i := range 50 {
		b, err := parse(caddy.NewTestController("dns", corefile(i)))
		if err != nil {
			t.Fatal(err)
		}
		cs := compile(b, b.res, registry, newMemStore(t))
		d := cs.Domains[0]
		cs.account(d, d.Routes[0], &policy.Result{Pool: cs.Pools[0]}) // one answer: the lazy child exists
		if old != nil {
			old.forgetSeries(cs)
			old.release(registry)
		}
		old = cs
	}
	if a, f := count(); a != 1 || f != 1 {
		t.Fatalf("after 50 renames: %d answers_total and %d failovers_total series, want 1 and 1", a, f)
	}
	old.forgetSeries(nil)
	if a, f := count(); a != 0 || f != 0 {
		t.Fatalf("after the last snapshot left: %d and %d series, want none", a, f)
	}
}

// Issue 19 item 16: a fail-open answer is not also a failover.
func TestFailOpenIsNoFailover(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", "gtm gtm.fo.test {\n pool a {\n  address 192.0.2.1\n }\n domain www.gtm.fo.test {\n  route default a\n }\n}"))
	if err != nil {
		t.Fatal(err)
	}
	cs := compile(b, b.res, registry, newMemStore(t))
	t.Cleanup(func() { cs.forgetSeries(nil); cs.release(registry) })
	d := cs.Domains[0]
	before := testutil.ToFloat64(failoversTotal.WithLabelValues("www.gtm.fo.test", "default"))
	cs.account(d, d.Routes[0], &policy.Result{Pool: cs.Pools[0], FailOpen: true, Switched: true})
	if got := testutil.ToFloat64(failoversTotal.WithLabelValues("www.gtm.fo.test", "default")); got != before {
		t.Fatalf("fail-open counted as a failover: %v -> %v", before, got)
	}
	if got := testutil.ToFloat64(failOpenTotal.WithLabelValues("www.gtm.fo.test", "default")); got != 1 {
		t.Fatalf("fail-open not counted: %v", got)
	}
}
