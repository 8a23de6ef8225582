package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

// Health from outside through the API: pushed verdicts of `protocol push` checks, and the
// mass-failure brake's release. The block implements the interfaces below; a block that
// does not (or has no brake) answers 404 for them.

// HealthPusher takes a pushed verdict for check of address (canonical text) in pool. The
// handler has checked that they exist and that the check is a push check. In a fleet the
// verdict is shared through the store: an unreachable store is state.ErrUnavailable (503).
type HealthPusher interface {
	PushHealth(ctx context.Context, pool, address, check string, v healthcheck.Pushed) error
}

// Brake is a block's mass-failure brake as the API sees it.
type Brake interface {
	// BrakeStatus reports the brake; ok is false when the block has none.
	BrakeStatus() (st BrakeDoc, ok bool)
	// ReleaseBrake releases an engaged brake; the verdicts it held apply again. It reports
	// whether the brake was engaged.
	ReleaseBrake(ctx context.Context, by string) (bool, error)
}

// BrakeDoc is the brake's state in the API.
type BrakeDoc struct {
	Percent  int        `json:"percent"`
	Window   string     `json:"window"`
	Engaged  bool       `json:"engaged"`
	Since    *time.Time `json:"since,omitempty"` // when it engaged
	Down     int        `json:"down"`            // checked addresses that turned down within the window
	Of       int        `json:"of"`              // checked addresses
	Held     int        `json:"held"`            // addresses answered by their held verdict now
	Fleet    bool       `json:"fleet"`           // the cluster's brake (else this node's)
	Released *time.Time `json:"released,omitempty"`
}

// routeOutside adds the routes of this file to the handler's mux.
func (h *handler) routeOutside() {
	h.mux.HandleFunc("PUT /api/v1/pools/{pool}/addresses/{address}/health", h.pushHealth)
	h.mux.HandleFunc("GET /api/v1/brake", h.brakeStatus)
	h.mux.HandleFunc("POST /api/v1/brake/release", h.releaseBrake)
}

// pushBody is the body of a pushed verdict.
type pushBody struct {
	Healthy *bool  `json:"healthy"`
	TTL     string `json:"ttl"`
	Reason  string `json:"reason"`
	Check   string `json:"check"`
}

// maxReason bounds a pushed reason: it is shown in the status and events.
const maxReason = 1024

func (h *handler) pushHealth(w http.ResponseWriter, r *http.Request) {
	pusher, ok := h.cfg.Control.(HealthPusher)
	poolName, addrText := r.PathValue("pool"), r.PathValue("address")
	snap := h.cfg.Snapshot()
	if !ok || snap == nil {
		writeError(w, http.StatusNotFound, "pushed verdicts are not available on this block")
		return
	}
	p := snap.Pool(poolName)
	if p == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q", poolName))
		return
	}
	a := findAddress(p, addrText)
	if a == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %q has no address %q", poolName, addrText))
		return
	}
	var body pushBody
	if !decode(w, r, &body) {
		return
	}
	// Which checks of the pool take pushes: its templates of protocol push.
	var push []string
	protocols := map[string]string{}
	if pc := h.cfg.Control.InForce().Pool(p.Name); pc != nil {
		for _, name := range pc.HealthCheck {
			if hc := h.cfg.Control.InForce().HealthCheck(name); hc != nil {
				protocols[name] = hc.Protocol
				if hc.Protocol == string(healthcheck.Push) {
					push = append(push, name)
				}
			}
		}
	}
	check := body.Check
	switch {
	case check == "" && len(push) == 1:
		check = push[0]
	case check == "" && len(push) == 0:
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %s has no push check (healthcheck NAME with protocol push)", p.Name))
		return
	case check == "":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("check: pool %s has several push checks (%s): name one", p.Name, strings.Join(push, ", ")))
		return
	case protocols[check] == "":
		writeError(w, http.StatusNotFound, fmt.Sprintf("pool %s has no check %q (its checks: %s)", p.Name, check, listOrNone(p.HealthChecks)))
		return
	case !slices.Contains(push, check):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("check %s is protocol %s: only protocol push checks take pushed verdicts", check, protocols[check]))
		return
	}
	if body.Healthy == nil {
		writeError(w, http.StatusBadRequest, "healthy: required, true or false")
		return
	}
	if body.TTL == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl: required, a duration from %s to %s such as 30s", healthcheck.MinPushTTL, healthcheck.MaxPushTTL))
		return
	}
	ttl, err := time.ParseDuration(body.TTL)
	if err != nil || ttl < healthcheck.MinPushTTL || ttl > healthcheck.MaxPushTTL {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl %q: expected a duration from %s to %s such as 30s", body.TTL, healthcheck.MinPushTTL, healthcheck.MaxPushTTL))
		return
	}
	if len(body.Reason) > maxReason {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason: at most %d bytes", maxReason))
		return
	}
	now := time.Now()
	v := healthcheck.Pushed{Healthy: *body.Healthy, Reason: body.Reason, At: now, Expires: now.Add(ttl), By: r.RemoteAddr}
	if err := pusher.PushHealth(r.Context(), p.Name, a.Text, check, v); err != nil {
		h.cfg.Log("admin API: could not push the health of %s in pool %s: %v", a.Text, p.Name, err)
		writeStoreError(w, "could not store the pushed verdict", err)
		return
	}
	word := "down"
	if v.Healthy {
		word = "up"
	}
	msg := fmt.Sprintf("address %s of pool %s: check %s pushed %s for %s", a.Text, p.Name, check, word, ttl)
	if v.Reason != "" {
		msg += " (" + v.Reason + ")"
	}
	h.cfg.Log("admin API: %s (from %s)", msg, r.RemoteAddr)
	healthy := v.Healthy
	h.cfg.Events.Add(Event{Kind: "health", Action: "push", Pool: p.Name, Address: a.Text, Healthy: &healthy, Message: msg})
	writeJSON(w, http.StatusOK, map[string]any{
		"pool": p.Name, "address": a.Text, "check": check, "healthy": v.Healthy, "reason": v.Reason,
		"ttl": ttl.String(), "expires": v.Expires.UTC(),
	})
}

func (h *handler) brakeOf(w http.ResponseWriter) (Brake, BrakeDoc, bool) {
	b, ok := h.cfg.Control.(Brake)
	if !ok {
		writeError(w, http.StatusNotFound, "no brake: configure brake PERCENT DURATION in the gtm block or its cluster block")
		return nil, BrakeDoc{}, false
	}
	st, ok := b.BrakeStatus()
	if !ok {
		writeError(w, http.StatusNotFound, "no brake: configure brake PERCENT DURATION in the gtm block or its cluster block")
		return nil, BrakeDoc{}, false
	}
	return b, st, true
}

func (h *handler) brakeStatus(w http.ResponseWriter, _ *http.Request) {
	if _, st, ok := h.brakeOf(w); ok {
		writeJSON(w, http.StatusOK, st)
	}
}

func (h *handler) releaseBrake(w http.ResponseWriter, r *http.Request) {
	b, _, ok := h.brakeOf(w)
	if !ok {
		return
	}
	was, err := b.ReleaseBrake(r.Context(), r.RemoteAddr)
	if err != nil {
		writeStoreError(w, "could not release the brake", err)
		return
	}
	st, _ := b.BrakeStatus()
	h.cfg.Log("admin API: brake release (engaged: %v) from %s", was, r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"released": was, "brake": st})
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// brakeDoc is the block's brake for the status document and the page, nil without one.
func (h *handler) brakeDoc() *BrakeDoc {
	b, ok := h.cfg.Control.(Brake)
	if !ok {
		return nil
	}
	st, ok := b.BrakeStatus()
	if !ok {
		return nil
	}
	return &st
}
