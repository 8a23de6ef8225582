package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// Failbacker is a Control that releases failback holds and counts them; without it the
// handler releases them in the store directly.
type Failbacker interface {
	Failback(ctx context.Context, domain string) (routes []string, err error)
}

// FailbackDoc is the body of POST /api/v1/domains/{domain}/failback.
type FailbackDoc struct {
	Domain   string     `json:"domain"`
	Released []string   `json:"released"` // the selectors of the routes that were held
	Routes   []RouteDoc `json:"routes"`   // the domain's routes after the release
}

// failback releases every hold of a domain (failback manual or DURATION): its routes go
// back to their first available pool on the next query. A route whose better pools are
// still down is held again on the pool it answers from.
func (h *handler) failback(w http.ResponseWriter, r *http.Request) {
	snap := h.cfg.Snapshot()
	name := strings.ToLower(dns.Fqdn(r.PathValue("domain")))
	var d *policy.Domain
	if snap != nil {
		d = snap.Domain(name)
	}
	if d == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no managed domain %q", r.PathValue("domain")))
		return
	}
	if _, ok := readBody(w, r, maxBody); !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	var routes []string
	var err error
	if fb, ok := h.cfg.Control.(Failbacker); ok {
		routes, err = fb.Failback(ctx, d.Name)
	} else {
		routes, err = h.cfg.Control.Store().ReleaseHolds(ctx, d.Name)
	}
	if err != nil {
		h.cfg.Log("admin API: could not release the holds of %s: %v", d.Name, err)
		writeStoreError(w, "could not release the holds", err)
		return
	}
	slices.Sort(routes)
	if routes == nil {
		routes = []string{}
	}
	msg := fmt.Sprintf("domain %s: failback by an operator, nothing was held", d.Name)
	if len(routes) > 0 {
		msg = fmt.Sprintf("domain %s: failback by an operator, holds released on route %s", d.Name, strings.Join(routes, ", route "))
	}
	h.cfg.Log("admin API: %s (from %s)", msg, r.RemoteAddr)
	h.cfg.Events.Add(Event{Token: actor(r), Kind: "failback", Domain: d.Name, Message: msg})
	doc := FailbackDoc{Domain: d.Name, Released: routes, Routes: []RouteDoc{}}
	pinned := snap.Pool(d.Pin.Get()) // nil when unpinned
	for _, rt := range d.Routes {
		doc.Routes = append(doc.Routes, routeDoc(d, rt, pinned))
	}
	writeJSON(w, http.StatusOK, doc)
}

// routeFailover adds to a route's status what failover settings make of it: the pool a
// failback hold keeps it on, and the fallback in force when no pool is available.
func routeFailover(rd *RouteDoc, d *policy.Domain, r *policy.Route) {
	if hold := r.Hold.Get(); hold != nil {
		if i := r.Index(hold.Pool); i >= 0 {
			rd.Held = hold.Pool
			since := hold.Since.UTC()
			rd.HeldSince = &since
			if _, nat := r.Natural(); nat >= 0 && nat < i && r.Pools[i].AvailableFor(policy.IPv4) {
				rd.Current = hold.Pool // held on the standby while a better pool is back
			}
		}
	}
	if rd.FailOpen {
		rd.Fallback = d.Fallback.String()
		if d.Fallback != policy.FallbackOpen {
			rd.FailOpen, rd.Current = false, ""
			if d.FallbackPool != nil {
				rd.Current = d.FallbackPool.Name
			}
		}
	}
}

// domainFailover adds a domain's failover settings to its status.
func domainFailover(dd *DomainDoc, d *policy.Domain) {
	dd.Fallback = d.Fallback.String()
	if d.FallbackPool != nil {
		dd.Fallback = d.FallbackPool.Name
	}
	switch {
	case d.FailbackManual:
		dd.Failback = "manual"
	case d.FailbackAfter > 0:
		dd.Failback = d.FailbackAfter.String()
	default:
		dd.Failback = "auto"
	}
	if d.HasTTLDegraded {
		t := d.TTLDegraded
		dd.TTLDegraded = &t
	}
}

// poolFailover reports a pool's min_available share and what it asks now.
func poolFailover(pd *PoolDoc, p *policy.Pool) {
	if p.MinPercent <= 0 {
		return
	}
	enabled := 0
	for _, a := range p.Addrs {
		if a.Enabled() {
			enabled++
		}
	}
	pd.MinAvailablePercent, pd.MinAvailable = p.MinPercent, policy.NeedOf(p.MinPercent, enabled)
}
