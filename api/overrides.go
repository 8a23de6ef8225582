package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// Timed overrides and pool modes: the window of a mode or pin body, the pool mode
// endpoint, and what the status document says about them.

// windowBody is the optional window of a mode or pin body.
type windowBody struct {
	From  *string `json:"from"`
	Until *string `json:"until"`
}

func (b windowBody) given() bool { return b.From != nil || b.Until != nil }

// ParseWindow checks a body's from/until (RFC 3339) at now: until must be ahead, and from
// before until. Every error names its field.
func ParseWindow(from, until *string, now time.Time) (state.Window, config.Errors) {
	var w state.Window
	var errs config.Errors
	parse := func(field string, s *string) time.Time {
		if s == nil {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, *s)
		switch {
		case err != nil:
			errs = append(errs, &config.Error{Field: field, Message: fmt.Sprintf("%s %q: expected an RFC 3339 time such as 2026-12-01T22:00:00Z", field, *s)})
		case t.IsZero() || t.Year() < 2000:
			// Go's zero time is how "unset" is stored: taken as a time it would make an
			// override permanent (an empty date in a script drains for good).
			errs = append(errs, &config.Error{Field: field, Message: fmt.Sprintf("%s %q: not a real time (year %d); omit %s for none", field, *s, t.Year(), field)})
		}
		return t
	}
	w.From, w.Until = parse("from", from), parse("until", until)
	if len(errs) > 0 {
		return w, errs
	}
	if !w.Until.IsZero() && !w.Until.After(now) {
		errs = append(errs, &config.Error{Field: "until", Message: fmt.Sprintf("until %s: is not in the future (now %s)", *until, now.UTC().Format(time.RFC3339))})
	}
	if !w.From.IsZero() && !w.Until.IsZero() && !w.From.Before(w.Until) {
		errs = append(errs, &config.Error{Field: "from", Message: fmt.Sprintf("from %s: must be before until %s", *from, *until)})
	}
	return w, errs
}

// windowOf parses the window of a body whose override is to be set (set: not auto, not
// an unpin); it answers 400 itself and returns false on bad input.
func windowOf(w http.ResponseWriter, b windowBody, set bool, clears string) (state.Window, bool) {
	if !b.given() {
		return state.Window{}, true
	}
	win, errs := ParseWindow(b.From, b.Until, time.Now())
	if !set {
		field := "until"
		if b.From != nil {
			field = "from"
		}
		errs = append(errs, &config.Error{Field: field, Message: fmt.Sprintf("%s: %s clears the override at once and takes no from or until", field, clears)})
	}
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs.Error(), errs)
		return win, false
	}
	return win, true
}

// describeWindow is the tail of an event message: " from T until T".
func describeWindow(w state.Window) string {
	var b strings.Builder
	if !w.From.IsZero() {
		b.WriteString(" from " + w.From.UTC().Format(time.RFC3339))
	}
	if !w.Until.IsZero() {
		b.WriteString(" until " + w.Until.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// action of an override write: "scheduled" when its window starts later.
func action(w state.Window, now time.Time) string {
	if w.Scheduled(now) {
		return "scheduled"
	}
	return "set"
}

// windowFields adds a window's from, until and scheduled to a response body.
func windowFields(out map[string]any, w state.Window, now time.Time) map[string]any {
	if !w.From.IsZero() {
		out["from"] = w.From.UTC()
	}
	if !w.Until.IsZero() {
		out["until"] = w.Until.UTC()
	}
	out["scheduled"] = w.Scheduled(now)
	return out
}

// PoolModeDoc is the body of GET and PUT /api/v1/pools/{pool}/mode.
type PoolModeDoc struct {
	Pool      string     `json:"pool"`
	Mode      string     `json:"mode"` // the pool mode written (auto: none)
	From      *time.Time `json:"from,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
	Scheduled bool       `json:"scheduled"` // the mode is stored and starts at from
	InForce   string     `json:"in_force"`  // the pool mode in force now
}

func poolModeDoc(pool string, d *state.Data, now time.Time) PoolModeDoc {
	doc := PoolModeDoc{Pool: pool, Mode: "auto", InForce: "auto"}
	if v, ok := d.ModeValue(state.PoolModeKey(pool)); ok {
		doc.Mode, doc.From, doc.Until, doc.Scheduled = v.Mode, timePtr(v.From), timePtr(v.Until), v.Scheduled(now)
		if v.Active(now) {
			doc.InForce = v.Mode
		}
	}
	return doc
}

func (h *handler) getPoolMode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("pool")
	snap := h.cfg.Snapshot()
	d := h.cfg.Control.Store().Data()
	if _, left := d.Entries[state.PoolModeKey(name)]; !left && (snap == nil || snap.Pool(name) == nil) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q", name))
		return
	}
	writeJSON(w, http.StatusOK, poolModeDoc(name, d, time.Now()))
}

func (h *handler) deletePoolMode(w http.ResponseWriter, r *http.Request) {
	h.writePoolMode(w, r, policy.ModeAuto, windowBody{})
}

func (h *handler) setPoolMode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Mode *string `json:"mode"`
		windowBody
	}
	if !decode(w, r, &body) {
		return
	}
	m, ok := modeOf(w, body.Mode)
	if !ok {
		return
	}
	h.writePoolMode(w, r, m, body.windowBody)
}

func (h *handler) writePoolMode(w http.ResponseWriter, r *http.Request, m policy.Mode, b windowBody) {
	name := r.PathValue("pool")
	snap := h.cfg.Snapshot()
	st := h.cfg.Control.Store()
	if snap == nil || snap.Pool(name) == nil {
		// A pool mode left for a pool no longer configured can still be cleared.
		if _, left := st.Data().Entries[state.PoolModeKey(name)]; !left || m != policy.ModeAuto {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q", name))
			return
		}
	}
	win, ok := windowOf(w, b, m != policy.ModeAuto, "mode auto")
	if !ok {
		return
	}
	if err := st.SetPoolMode(r.Context(), name, m, win); err != nil {
		h.cfg.Log("admin API: could not persist the mode of pool %s: %v", name, err)
		writeStoreError(w, "could not persist the pool mode", err)
		return
	}
	now := time.Now()
	msg := fmt.Sprintf("pool %s set to mode %s%s (its addresses whose own mode is auto)", name, m, describeWindow(win))
	if m == policy.ModeAuto {
		msg = fmt.Sprintf("pool %s mode cleared: its addresses follow their own modes and health checks", name)
	}
	h.cfg.Log("admin API: %s (from %s)", msg, r.RemoteAddr)
	h.cfg.Events.Add(Event{Token: actor(r), Kind: "mode", Pool: name, Action: action(win, now), Message: msg})
	writeJSON(w, http.StatusOK, poolModeDoc(name, st.Data(), now))
}

// ScheduledDoc is an override stored whose window starts later.
type ScheduledDoc struct {
	Mode  string     `json:"mode,omitempty"` // modes
	Pool  string     `json:"pool,omitempty"` // pins
	From  time.Time  `json:"from"`
	Until *time.Time `json:"until,omitempty"`
}

// annotate adds the timed overrides and pool modes of d to doc: for each address the
// effective mode's source and window, for each pool its mode, for each domain its pin's
// window, and what is scheduled.
func annotate(doc *StatusDoc, d *state.Data, now time.Time) {
	if d == nil {
		d = &state.Data{}
	}
	for i := range doc.Pools {
		p := &doc.Pools[i]
		p.Mode = "auto"
		pv, pok := d.ModeValue(state.PoolModeKey(p.Name))
		if pok {
			p.WindowDoc, p.Scheduled = inForce(pv.Window, now), scheduled(pv.Mode, "", pv.Window, now)
			if pv.Active(now) {
				p.Mode = pv.Mode
			}
		}
		for j := range p.Addresses {
			a := &p.Addresses[j]
			a.ModeSource = "none"
			v, ok := d.ModeValue(state.ModeKey(p.Name, a.Address))
			if ok {
				a.Scheduled = scheduled(v.Mode, "", v.Window, now)
			}
			switch {
			case a.Mode == "auto":
			case ok && v.Active(now) && v.Mode != "auto":
				a.ModeSource, a.WindowDoc = "address", inForce(v.Window, now)
			case pok:
				a.ModeSource, a.WindowDoc = "pool", p.WindowDoc
			}
		}
	}
	for i := range doc.Domains {
		dd := &doc.Domains[i]
		if v, ok := d.PinValue(state.PinKey(dd.Name)); ok {
			dd.Scheduled = scheduled("", v.Pool, v.Window, now)
			if dd.Pinned != "" {
				dd.WindowDoc = inForce(v.Window, now)
			}
		}
	}
}

// WindowDoc is the window of a timed override in force.
type WindowDoc struct {
	From  *time.Time `json:"from,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

func inForce(w state.Window, now time.Time) *WindowDoc {
	if !w.Timed() || !w.Active(now) {
		return nil
	}
	return &WindowDoc{From: timePtr(w.From), Until: timePtr(w.Until)}
}

func scheduled(mode, pool string, w state.Window, now time.Time) *ScheduledDoc {
	if !w.Scheduled(now) {
		return nil
	}
	return &ScheduledDoc{Mode: mode, Pool: pool, From: w.From.UTC(), Until: timePtr(w.Until)}
}
