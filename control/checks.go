package control

import (
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// Several checks per address (`healthcheck NAME... require all|any|N`): each check is its own
// prober in the registry, shared per (address, check) with every other pool and snapshot
// that uses it, so adding a check to a pool neither re-probes nor resets the others. In a
// fleet each check is voted on by itself (its own quorum cell, keyed by its fingerprint) and
// the address's health combines the quorum verdicts: vote per check, combine after quorum.
// A node's view of a check is then the fleet's, and `require` applies to what the fleet
// agrees on, never to one node's mix of checks.

// checkSet is an address's health under several checks; it implements policy.Health and the
// API's reporters.
type checkSet struct {
	names   []string
	parts   []policy.Health // *healthcheck.Target or *votedHealth, one per name
	require healthcheck.Require
}

// Healthy implements policy.Health: `require` of the checks pass. Lock-free.
func (s *checkSet) Healthy() bool {
	n := 0
	for _, p := range s.parts {
		if p.Healthy() {
			n++
		}
	}
	return s.require.Met(n, len(s.parts))
}

// RTT implements policy.Health: the first check's that has one.
func (s *checkSet) RTT() time.Duration {
	for _, p := range s.parts {
		if d := p.RTT(); d > 0 {
			return d
		}
	}
	return 0
}

// failing is the index of the first check that does not pass, or 0.
func (s *checkSet) failing() int {
	for i, p := range s.parts {
		if !p.Healthy() {
			return i
		}
	}
	return 0
}

// Status is the address's state over its checks: the combined verdict, ready when every
// check has a verdict, the first failing check's result and error (else the first's), the
// newest probe and change, the RTT as RTT says, and the probes and failures of all checks.
func (s *checkSet) Status() healthcheck.Status {
	var out healthcheck.Status
	out.Ready = true
	for i, p := range s.parts {
		st := statusOf(p)
		out.Ready = out.Ready && st.Ready
		out.Probes += st.Probes
		out.Failures += st.Failures
		if st.LastProbe.After(out.LastProbe) {
			out.LastProbe = st.LastProbe
		}
		if st.LastChange.After(out.LastChange) {
			out.LastChange = st.LastChange
		}
		if i == s.failing() {
			out.LastResult, out.LastError = st.LastResult, st.LastError
		}
	}
	out.Healthy, out.RTT = s.Healthy(), s.RTT()
	return out
}

// votedCheckSet is a checkSet in a fleet, whose parts are quorum cells.
type votedCheckSet struct{ checkSet }

// Votes implements the API's vote reporter in a fleet: the votes on the first failing check
// (else the first), the one that explains the address's verdict; local is this node's own
// combination of its checks.
func (s *votedCheckSet) Votes() (votes []api.VoteDoc, down, of int, local bool) {
	vh := votedOf(s)
	if vh == nil {
		return nil, 0, 0, s.Healthy()
	}
	votes, down, of, _ = vh.Votes()
	n := 0
	for _, p := range s.parts {
		if t := targetOf(p); t == nil || t.Healthy() {
			n++
		}
	}
	return votes, down, of, s.require.Met(n, len(s.parts))
}

// Checks reports every check of the address for the status API.
func (s *checkSet) Checks() []api.CheckDoc {
	out := make([]api.CheckDoc, len(s.parts))
	for i, p := range s.parts {
		out[i] = api.CheckDocOf(s.names[i], p)
	}
	return out
}

// votedOf is the quorum cell that speaks for an address's health in a fleet: its one check's,
// or with several the first failing check's (else the first); nil outside a fleet.
func votedOf(h policy.Health) *votedHealth {
	switch v := h.(type) {
	case *votedHealth:
		return v
	case *votedCheckSet:
		vh, _ := v.parts[v.failing()].(*votedHealth)
		return vh
	}
	return nil
}

func statusOf(h policy.Health) healthcheck.Status {
	switch v := h.(type) {
	case *healthcheck.Target:
		return v.Status()
	case *votedHealth:
		return v.Status()
	}
	return healthcheck.Status{Healthy: h.Healthy()}
}

func targetOf(h policy.Health) *healthcheck.Target {
	switch v := h.(type) {
	case *healthcheck.Target:
		return v
	case *votedHealth:
		return v.target()
	}
	return nil
}

// appendTargets appends the probers' targets behind an address's health outside a fleet.
func appendTargets(dst []*healthcheck.Target, h policy.Health) []*healthcheck.Target {
	switch v := h.(type) {
	case *healthcheck.Target:
		return append(dst, v)
	case *checkSet:
		for _, p := range v.parts {
			if t, ok := p.(*healthcheck.Target); ok {
				dst = append(dst, t)
			}
		}
	}
	return dst
}

// poolTemplates are the templates of a pool's checks, in order.
func poolTemplates(templates map[string]*healthcheck.Template, pc *config.Pool) []*healthcheck.Template {
	if len(pc.HealthCheck) == 0 {
		return nil
	}
	out := make([]*healthcheck.Template, 0, len(pc.HealthCheck))
	for _, name := range pc.HealthCheck {
		if t := templates[name]; t != nil {
			out = append(out, t)
		}
	}
	return out
}

// acquireHealth takes the probers of an address's checks from the registry (and in a fleet
// their quorum cells), records them as the snapshot's, and returns the address's health:
// the one check's own, or a checkSet over several.
func (cs *compiled) acquireHealth(reg *healthcheck.Registry, v *voter, addr, checkAddr string, tmpls []*healthcheck.Template, pc *config.Pool) policy.Health {
	parts := make([]policy.Health, len(tmpls))
	for i, tmpl := range tmpls {
		t := reg.AcquireVia(addr, checkAddr, tmpl)
		cs.targets = append(cs.targets, t)
		parts[i] = t
		if v != nil {
			c := v.cell(t)
			cs.voted = append(cs.voted, c)
			parts[i] = c
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	set := checkSet{names: pc.HealthCheck, parts: parts, require: pc.RequireOf()}
	if v != nil {
		return &votedCheckSet{set}
	}
	return &set
}

// reusableChecks reports whether every check of pc is the one old compiled it with.
func reusableChecks(old, checks map[string]*config.HealthCheck, pc *config.Pool) bool {
	for _, name := range pc.HealthCheck {
		if old[name] != checks[name] {
			return false
		}
	}
	return true
}

// firstCheck is a pool's first check name, "" without one.
func firstCheck(names config.Checks) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// requireText is a pool's require rule as the status reports it, "" without checks.
func requireText(pc *config.Pool) string {
	switch {
	case len(pc.HealthCheck) == 0:
		return ""
	case pc.Require == "":
		return "all"
	}
	return string(pc.Require)
}

// applyCheckSettings gives a template the settings only some protocols take (method and
// headers, the dns question and judgement, icmp count and loss).
func applyCheckSettings(t *healthcheck.Template, h *config.HealthCheck) {
	t.Method = strings.ToUpper(h.Method)
	for _, hd := range h.Header {
		t.Headers = append(t.Headers, healthcheck.Header{Name: hd.Name, Value: hd.Value})
	}
	if h.Protocol == string(healthcheck.DNS) {
		t.Query, t.QType = h.QueryOf()
		if h.Expect != "" {
			t.Rcodes, _ = healthcheck.ParseRcodes(h.Expect)
			t.Expect = nil // the http form of expect does not apply
		}
		if h.Answer != "" {
			t.Answer = mustRegexp(h.Answer)
		}
	}
	t.Count, t.Loss = h.Count, h.Loss
	t.MaxRTT, t.Vantage = h.MaxRTTOf(), h.Vantage
	if h.Protocol == string(healthcheck.Prometheus) {
		t.URL, t.PromQL = h.URL, h.Query
		t.Cmp, _ = healthcheck.ParseComparison(h.Expect)
		t.Expect = nil
	}
}

// targetText names a target's address in logs and events: with its check address when probes
// go there ("192.0.2.10 (check_address 10.0.0.10)").
func targetText(t *healthcheck.Target) string {
	if ca := t.CheckAddr(); ca != "" {
		return t.Addr() + " (check_address " + ca + ")"
	}
	return t.Addr()
}

// VotesOf reports the fleet's votes on an address's health (for the votes gauges): how many
// live nodes vote it down, of how many, and whether the quorum verdict differs from this
// node's own; ok is false outside a fleet.
func VotesOf(h policy.Health) (down, of int, differs, ok bool) {
	vh := votedOf(h)
	if vh == nil {
		return 0, 0, false, false
	}
	_, down, of, _ = vh.Votes()
	return down, of, vh.differs(), true
}
