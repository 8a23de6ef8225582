package gtm

import (
	"fmt"

	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/policy"
)

var _ = promauto.NewGaugeFunc(prometheus.GaugeOpts{
	Namespace: plugin.Namespace, Subsystem: "gtm", Name: "brake_engaged",
	Help: "1 while a mass-failure brake holds the health verdicts from before a wave of failures, else 0.",
}, func() float64 {
	if control.BrakeEngaged() {
		return 1
	}
	return 0
})

// brakeNote explains an address whose answer the engaged brake holds against its checks
// ("" when it does not).
func brakeNote(p *policy.Pool, a *policy.Address) string {
	held, holding := a.Brake.Holding()
	if !holding || a.Health == nil || a.Mode.Get() != policy.ModeAuto || held == a.Health.Healthy() {
		return ""
	}
	word := "up"
	if !held {
		word = "down"
	}
	return fmt.Sprintf("pool %s address %s: held %s by the brake (mass failure; its checks say otherwise)", p.Name, a.Text, word)
}
