package api

import (
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// CheckDoc is one health check of an address in the status: which checks pass. Healthy is,
// in a fleet, the quorum's verdict on that check and LocalHealthy this node's own.
type CheckDoc struct {
	Name         string     `json:"name"`
	Healthy      bool       `json:"healthy"`
	Checked      bool       `json:"checked"`
	LastResult   string     `json:"last_result"`
	LastError    string     `json:"last_error"`
	LastProbe    *time.Time `json:"last_probe"`
	LastChange   *time.Time `json:"last_change"`
	RTTMillis    float64    `json:"rtt_ms"`
	Probes       uint64     `json:"probes"`
	Failures     uint64     `json:"failures"`
	Quorum       *QuorumDoc `json:"quorum,omitempty"`
	LocalHealthy *bool      `json:"local_healthy,omitempty"`
}

// checksReporter is an address health made of several checks.
type checksReporter interface{ Checks() []CheckDoc }

// CheckDocOf describes the check called name from its health (a prober's target or a
// quorum cell: what reports a status, and votes in a fleet).
func CheckDocOf(name string, h policy.Health) CheckDoc {
	d := CheckDoc{Name: name, Healthy: h.Healthy()}
	if sr, ok := h.(statusReporter); ok {
		st := sr.Status()
		d.Healthy, d.Checked = st.Healthy, st.Ready
		d.LastResult, d.LastError = string(st.LastResult), st.LastError
		d.LastProbe, d.LastChange = timePtr(st.LastProbe), timePtr(st.LastChange)
		d.RTTMillis, d.Probes, d.Failures = ms(st.RTT), st.Probes, st.Failures
	}
	if vr, ok := h.(voteReporter); ok {
		_, down, of, local := vr.Votes()
		d.Quorum, d.LocalHealthy = &QuorumDoc{Down: down, Of: of}, &local
	}
	return d
}

// checksOf lists the checks of an address of p: its own report with several checks, else
// the pool's one check from the address's health; nil without checks.
func checksOf(p *policy.Pool, a *policy.Address) []CheckDoc {
	if cr, ok := a.Health.(checksReporter); ok {
		return cr.Checks()
	}
	if a.Health == nil || len(p.HealthChecks) != 1 {
		return nil
	}
	return []CheckDoc{CheckDocOf(p.HealthChecks[0], a.Health)}
}
