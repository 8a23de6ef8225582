package control

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// noteOverrideChange records a timed override that started or ended by itself (the
// store's schedule, state/schedule.go, has already put the cells in line) as an event of
// the kind its write was: mode or pin.
func noteOverrideChange(c state.Change) {
	var v struct {
		Mode, Pool string
		state.Window
	}
	json.Unmarshal(c.Value, &v)
	e := api.Event{Action: c.Action}
	var what, value, after string
	switch {
	case strings.HasPrefix(c.Key, state.ModesPrefix):
		e.Kind = "mode"
		e.Pool, e.Address, _ = strings.Cut(strings.TrimPrefix(c.Key, state.ModesPrefix), "/")
		what, value, after = fmt.Sprintf("address %s of pool %s", e.Address, e.Pool), "mode "+v.Mode, "back to mode auto"
	case strings.HasPrefix(c.Key, state.PoolModesPrefix):
		e.Kind, e.Pool = "mode", strings.TrimPrefix(c.Key, state.PoolModesPrefix)
		what, value, after = "pool "+e.Pool, "mode "+v.Mode, "its addresses follow their own modes"
	case strings.HasPrefix(c.Key, state.PinsPrefix):
		e.Kind, e.Domain, e.Pool = "pin", strings.TrimPrefix(c.Key, state.PinsPrefix), v.Pool
		what, value, after = "domain "+e.Domain, "pinned to pool "+v.Pool, "unpinned"
	default:
		return
	}
	if c.Action == "expired" {
		e.Message = fmt.Sprintf("timed override of %s (%s) ended at %s: %s", what, value, v.Until.UTC().Format(time.RFC3339), after)
	} else {
		e.Message = fmt.Sprintf("scheduled override of %s started: %s", what, value)
		if !v.Until.IsZero() {
			e.Message += " until " + v.Until.UTC().Format(time.RFC3339)
		}
	}
	log.Infof("%s", e.Message)
	record(e)
}

// record adds e to the process's event ring, which hands it to the API's followers and
// the webhooks.
func record(e api.Event) { api.DefaultEvents.Add(e) }

// probers holds every health prober of the process. It outlives blocks: a reload acquires
// the new snapshot's probers before the old block releases its own, so unchanged (address,
// check) pairs keep their prober and state. Process-wide for that; its one user is
// compiled.acquire/release/handOver.
var probers = healthcheck.NewRegistry(healthcheck.Options{
	MaxConcurrent: 1024,
	OnChange:      onHealthChange,
	OnProbe: func(t *healthcheck.Target, res healthcheck.Result, d time.Duration) {
		name := t.Template().Name
		metrics.ProbeDuration.WithLabelValues(name).Observe(d.Seconds())
		metrics.Probes.WithLabelValues(name, string(res)).Inc()
	},
})

// Probers is the number of health probers running in the process.
func Probers() int { return probers.Len() }

func onHealthChange(ch healthcheck.Change) {
	for _, v := range voters() {
		v.local(ch)
	}
	state := "down"
	if ch.Healthy {
		state = "up"
	}
	t := ch.Target
	metrics.HealthChanges.WithLabelValues(t.Template().Name, state).Inc()
	pokeHolders()
	if ch.First && ch.Healthy {
		return // the expected first verdict is not news
	}
	msg := fmt.Sprintf("%s is %s (healthcheck %s: %s)", targetText(t), state, t.Template().Name, ch.Result)
	if ch.Err != "" {
		msg += ": " + ch.Err
	}
	if ch.Healthy {
		log.Infof("%s", msg)
	} else {
		log.Warningf("%s", msg)
	}
	healthy := ch.Healthy
	record(api.Event{Kind: "health", Address: t.Addr(), CheckAddress: t.CheckAddr(), Healthy: &healthy, Message: msg})
}

func noteFailOpen(d *policy.Domain, r *policy.Route, p *policy.Pool) {
	route := "pinned"
	if r != nil {
		route = r.Selector.Text
	}
	msg := fmt.Sprintf("domain %s route %s: no pool available, failing open to pool %s", d.Name, route, p.Name)
	log.Warningf("%s", msg)
	record(api.Event{Kind: "failopen", Domain: d.Name, Pool: p.Name, Message: msg})
}

func noteFailover(d *policy.Domain, r *policy.Route, p *policy.Pool) {
	msg := fmt.Sprintf("domain %s route %s now answers from pool %s", d.Name, r.Selector.Text, p.Name)
	log.Infof("%s", msg)
	record(api.Event{Kind: "failover", Domain: d.Name, Pool: p.Name, Message: msg})
}
