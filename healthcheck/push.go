package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A push check (`protocol push`) is not probed: an outside system (a deploy pipeline, a
// monitoring system) pushes its verdict with a time to live, like a Consul TTL check. The
// verdict applies at once (no rise or fall); when its ttl runs out the check fails until the
// next push. Before the first push the address counts healthy, as every new address does
// until its first verdict.

// Pushed is one pushed verdict on an (address, check).
type Pushed struct {
	Healthy bool
	Reason  string
	At      time.Time // when it was pushed
	Expires time.Time // when it stops being in force
	By      string    // who pushed it (a node or a client), for the status; may be ""
}

// Push bounds.
const (
	MinPushTTL = time.Second
	MaxPushTTL = 24 * time.Hour
)

// ErrPushTTL is the error of a ttl outside MinPushTTL..MaxPushTTL.
var ErrPushTTL = fmt.Errorf("ttl: expected a duration from %s to %s", MinPushTTL, MaxPushTTL)

type pushKey struct{ addr, check string }

// keepExpired is how long an expired verdict is remembered (for a prober made after a
// reload to report it) before Push forgets it.
const keepExpired = time.Hour

// Push records a verdict for the push check called check of addr (the address as the pool
// names it) and hands it to its probers. It is kept for probers acquired later (a reload, a
// config write) until it has been expired for an hour.
func (r *Registry) Push(addr, check string, v Pushed) error {
	if v.Expires.Before(v.At) || v.Expires.Sub(v.At) > MaxPushTTL+time.Minute {
		return ErrPushTTL
	}
	r.mu.Lock()
	if r.pushed == nil {
		r.pushed = map[pushKey]Pushed{}
	}
	now := time.Now()
	for k, old := range r.pushed {
		if now.Sub(old.Expires) > keepExpired {
			delete(r.pushed, k)
		}
	}
	k := pushKey{addr, check}
	if old, ok := r.pushed[k]; ok && old.At.After(v.At) {
		r.mu.Unlock()
		return nil // a newer one is in force (a fleet's watch may deliver late)
	}
	r.pushed[k] = v
	var wake []*prober
	for _, p := range r.byAddr[addr] {
		if p.tmpl.Protocol == Push && p.tmpl.Name == check {
			wake = append(wake, p)
		}
	}
	r.mu.Unlock()
	for _, p := range wake {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// PushedVerdict returns the verdict last pushed for (addr, check), in force or expired.
func (r *Registry) PushedVerdict(addr, check string) (Pushed, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.pushed[pushKey{addr, check}]
	return v, ok
}

// runPush is the prober of a push check: it records each new verdict, and the expiry of
// the one in force.
func (r *Registry) runPush(ctx context.Context, p *prober) {
	var seen time.Time // At of the verdict recorded last
	var expired bool   // its expiry was recorded
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		v, ok := r.PushedVerdict(p.addr, p.tmpl.Name)
		now := time.Now()
		wait := time.Hour
		switch {
		case !ok:
		case !v.At.Equal(seen) && now.Before(v.Expires):
			seen, expired = v.At, false
			res, err := ResultOK, error(nil)
			if !v.Healthy {
				res, err = ResultPush, errors.New(pushReason(v))
			}
			r.record(p, res, err, 0)
			wait = v.Expires.Sub(now)
		case !expired && !now.Before(v.Expires):
			seen, expired = v.At, true
			r.record(p, ResultPush, fmt.Errorf("the pushed verdict expired at %s: failed until pushed again", v.Expires.UTC().Format(time.RFC3339)), 0)
		case now.Before(v.Expires):
			wait = v.Expires.Sub(now)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

func pushReason(v Pushed) string {
	if v.Reason == "" {
		return "pushed unhealthy"
	}
	return "pushed unhealthy: " + v.Reason
}
