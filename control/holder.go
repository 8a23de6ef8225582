package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// holder runs the failback hold-down of a block's routes (failback manual or DURATION) and
// the slow-start ramps of its addresses. It is the only writer of holds/ keys of this
// process; the query path reads the holds through the routes' cells. It wakes on every
// health change and state change (poke), at the next DURATION deadline, and at a backstop.
type holder struct {
	b     *Block
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	since map[string]time.Time // domain "\n" route -> since when a better pool is available
	now   func() time.Time
}

// holderBackstop bounds how long a missed poke can delay a decision.
const holderBackstop = 5 * time.Second

func newHolder(b *Block) *holder {
	return &holder{b: b, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		since: map[string]time.Time{}, now: time.Now}
}

func (h *holder) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *holder) run() {
	defer close(h.done)
	unsubscribe := h.b.st.Subscribe(func(*state.Data) { h.poke() })
	defer unsubscribe()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		case <-t.C:
		}
		next := h.round()
		t.Reset(next)
	}
}

// round observes every slow-start address and decides every held route once. It returns
// how long to sleep until the next deadline.
func (h *holder) round() time.Duration {
	cs := h.b.snap.Load()
	if cs == nil {
		return holderBackstop
	}
	now := h.now()
	for _, p := range cs.Pools {
		if p.SlowStart <= 0 {
			continue
		}
		for _, a := range p.Addrs {
			if a.Ramp != nil && a.Ramp.Observe(a.Up(), now) {
				log.Infof("pool %s address %s is up: slow start over %s", p.Name, a.Text, p.SlowStart)
			}
		}
	}
	wait := holderBackstop
	seen := make(map[string]bool, len(h.since))
	for _, d := range cs.Domains {
		if !d.FailbackManual && d.FailbackAfter <= 0 {
			continue
		}
		for _, r := range d.Routes {
			if r.Hold == nil {
				continue
			}
			key := d.Name + "\n" + r.Selector.Text
			seen[key] = true
			if w := h.decide(d, r, key, now); w > 0 && w < wait {
				wait = w
			}
		}
	}
	for k := range h.since {
		if !seen[k] {
			delete(h.since, k)
		}
	}
	h.dropStale(cs, now)
	return wait
}

// dropStale releases holds the configuration no longer has a use for: of routes that are
// gone, or of domains now with failback auto (a hold left there would come back into force
// if the domain went back to manual). Holds of domains this block does not manage are left
// alone (a fleet node may run an older configuration for a while).
func (h *holder) dropStale(cs *Snapshot, now time.Time) {
	data := h.b.st.Data()
	for k := range data.Entries {
		name, ok := strings.CutPrefix(k, state.HoldsPrefix)
		if !ok {
			continue
		}
		d := cs.Domain(name)
		if d == nil {
			continue
		}
		holds, rev := data.Holds(name)
		for route := range holds.Routes {
			if r := routeOf(d, route); r != nil && r.Hold != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := h.b.st.SetHold(ctx, name, route, "", now, rev)
			cancel()
			if err != nil {
				break // the next round sees the new revision
			}
			log.Infof("domain %s route %s: hold dropped (the route is gone or has failback auto)", name, route)
			_, rev = h.b.st.Data().Holds(name)
		}
	}
}

func routeOf(d *policy.Domain, selector string) *policy.Route {
	for _, r := range d.Routes {
		if r.Selector.Text == selector {
			return r
		}
	}
	return nil
}

// decide runs NextHold for one route and writes its verdict; it returns the time to the
// route's DURATION deadline (0: none).
func (h *holder) decide(d *policy.Domain, r *policy.Route, key string, now time.Time) time.Duration {
	holds, rev := h.b.st.Data().Holds(d.Name)
	cur := holds.Routes[r.Selector.Text]
	natural, natIdx := r.Natural()
	in := policy.HoldInput{Held: cur.Pool, HeldIdx: -1, NatIdx: natIdx, Now: now, Manual: d.FailbackManual, After: d.FailbackAfter}
	if natural != nil {
		in.Natural = natural.Name
	}
	if cur.Pool != "" {
		in.HeldIdx = r.Index(cur.Pool)
		if in.HeldIdx >= 0 {
			in.HeldUp = r.Pools[in.HeldIdx].AvailableFor(policy.IPv4)
		}
	}
	// A better pool than the held one is available: since when, without a break.
	if cur.Pool != "" && natIdx >= 0 && natIdx < in.HeldIdx {
		if _, ok := h.since[key]; !ok {
			h.since[key] = now
		}
		in.BetterSince = h.since[key]
	} else {
		delete(h.since, key)
	}
	v := policy.NextHold(in)
	if !v.Change {
		if !in.BetterSince.IsZero() && d.FailbackAfter > 0 {
			return max(in.BetterSince.Add(d.FailbackAfter).Sub(now), time.Millisecond)
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.b.st.SetHold(ctx, d.Name, r.Selector.Text, v.Pool, now, rev)
	switch {
	case errors.Is(err, state.ErrConflict):
		return 0 // another node (or the API) was first: the watch brings its write and a poke
	case err != nil:
		log.Warningf("domain %s route %s: could not write the failback hold: %v", d.Name, r.Selector.Text, err)
		return time.Second
	}
	delete(h.since, key)
	noteHold(d, r, cur.Pool, v.Pool, natural, in)
	return 0
}

// noteHold logs and records a hold change.
func noteHold(d *policy.Domain, r *policy.Route, from, to string, natural *policy.Pool, in policy.HoldInput) {
	mode := "manual: until POST /api/v1/domains/" + d.Name + "/failback"
	if !d.FailbackManual {
		mode = "after " + d.FailbackAfter.String() + " of the better pool available"
	}
	var msg, kind, event string
	switch {
	case to != "" && from == "":
		msg = fmt.Sprintf("domain %s route %s failed over to pool %s and is held there (failback %s)", d.Name, r.Selector.Text, to, mode)
		kind, event = "hold", "held"
	case to != "":
		msg = fmt.Sprintf("domain %s route %s: held pool %s is gone or unavailable, now held on pool %s (failback %s)", d.Name, r.Selector.Text, from, to, mode)
		kind, event = "hold", "held"
	default:
		why := "its pool failed too"
		if in.HeldUp && in.HeldIdx > 0 {
			why = fmt.Sprintf("the better pool stayed available for %s", d.FailbackAfter)
		}
		back := "no pool"
		if natural != nil {
			back = "pool " + natural.Name
		}
		msg = fmt.Sprintf("domain %s route %s: hold on pool %s released (%s); it answers from %s", d.Name, r.Selector.Text, from, why, back)
		kind, event = "failback", "released"
	}
	log.Infof("%s", msg)
	metrics.Holds.WithLabelValues(trimDot(d.Name), event).Inc()
	record(api.Event{Kind: kind, Domain: d.Name, Pool: to, Message: msg})
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// startHolder starts the block's holder; stopHolder stops it and waits for it.
func (b *Block) startHolder() {
	h := newHolder(b)
	if !b.holder.CompareAndSwap(nil, h) {
		return
	}
	go h.run()
}

func (b *Block) stopHolder() {
	if h := b.holder.Swap(nil); h != nil {
		close(h.stop)
		<-h.done
	}
}

// pokeHolders wakes every live block's holder (a health verdict changed).
func pokeHolders() {
	for _, b := range Live() {
		if h := b.holder.Load(); h != nil {
			h.poke()
		}
	}
}

// Failback implements api.Failbacker: an operator releases a domain's holds (POST
// /api/v1/domains/{domain}/failback); routes go back to their first available pool.
func (b *Block) Failback(ctx context.Context, domain string) ([]string, error) {
	routes, err := b.st.ReleaseHolds(ctx, domain)
	if err == nil && len(routes) > 0 {
		metrics.Holds.WithLabelValues(trimDot(domain), "released").Add(float64(len(routes)))
	}
	return routes, err
}
