package control

import (
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/prometheus/client_golang/prometheus"
)

// The health-check series (probes, probe duration, health changes) are labelled by template
// name only. A template renamed or deleted, in the Corefile or through the API, must take its
// series with it, or every name ever used stays exported.

// targetTemplates lists the template names of targets (a snapshot's, before it lets them go).
func targetTemplates(targets []*healthcheck.Target) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range targets {
		for _, n := range t.Names() {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// forgetTemplateSeries deletes the series of the names no live prober runs for any more
// (another block's template of the same name keeps them). Called after the probers of the
// snapshot replaced were released.
func forgetTemplateSeries(names []string) {
	if len(names) == 0 {
		return
	}
	inUse := probers.TemplateNames()
	for _, n := range names {
		if inUse[n] {
			continue
		}
		l := prometheus.Labels{"healthcheck": n}
		metrics.Probes.DeletePartialMatch(l)
		metrics.ProbeDuration.DeletePartialMatch(l)
		metrics.HealthChanges.DeletePartialMatch(l)
	}
}
