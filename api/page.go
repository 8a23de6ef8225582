package api

import (
	"bytes"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/audit"
)

// The status page's first paint is rendered here, from the same documents the API serves,
// so it reads with JavaScript off (and with curl); app.js then keeps it live.
var pageTmpl = template.Must(template.New("index.html").Funcs(template.FuncMap{
	"addrState": addrState,
	"dotClass":  dotClass,
	"probe":     probeText,
	"clock": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.UTC().Format("15:04:05 UTC")
	},
	"rtt": func(ms float64) string {
		if ms == 0 {
			return "—"
		}
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	},
	"arrows": func(pools []string) string { return strings.Join(pools, " → ") },
}).ParseFS(webFS, "web/index.html"))

// pageData is what the page template renders.
type pageData struct {
	Status                        StatusDoc
	Events                        []Event // newest first
	PoolsAvailable, AddressesUp   int
	Addresses, Overrides          int
	Unavailable, FailOpen, Pinned []string
	Audit                         []audit.Record // the latest write attempts, newest first
}

// pageAudit is how many audit records the first paint lists (app.js shows as many).
const pageAudit = 20

// pageEvents is how many recent events the first paint lists (app.js keeps 50 too).
const pageEvents = 50

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	snap := h.cfg.Snapshot()
	d := pageData{Status: Status(snap, h.cfg.Events)}
	d.Status.Brake = h.brakeDoc()
	if h.cfg.Control != nil {
		d.Status.Dangling = append(d.Status.Dangling, Dangling(snap, h.cfg.Control.Store().Data())...)
	}
	evs := h.cfg.Events.Since(0)
	if len(evs) > pageEvents {
		evs = evs[len(evs)-pageEvents:]
	}
	slices.Reverse(evs)
	d.Events = evs
	if recs, err := h.cfg.Audit.List(r.Context(), -1, pageAudit); err == nil {
		slices.Reverse(recs)
		d.Audit = recs
	}
	for _, p := range d.Status.Pools {
		if p.Available {
			d.PoolsAvailable++
		} else {
			d.Unavailable = append(d.Unavailable, p.Name)
		}
		for _, a := range p.Addresses {
			d.Addresses++
			if a.Up {
				d.AddressesUp++
			}
			if a.Mode != "auto" {
				d.Overrides++
			}
		}
	}
	for _, dm := range d.Status.Domains {
		if dm.Pinned != "" {
			d.Overrides++
			d.Pinned = append(d.Pinned, dm.Name)
		}
		for _, rt := range dm.Routes {
			if rt.FailOpen {
				d.FailOpen = append(d.FailOpen, dm.Name)
				break
			}
		}
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		h.cfg.Log("admin API: status page: %v", err)
		writeError(w, http.StatusInternalServerError, "status page: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// addrState is an address's state as the page words it (app.js words it the same).
func addrState(a AddressDoc) string {
	switch {
	case a.Disabled:
		return "disabled"
	case a.Up:
		return "up"
	}
	return "down"
}

func dotClass(p PoolDoc, a AddressDoc) string {
	switch {
	case a.Disabled:
		return "off"
	case !a.Up:
		return "down"
	case p.HealthCheck != "" && !a.Checked:
		return "pending"
	}
	return ""
}

// probeText is the last probe's result, and in a fleet what the quorum stands on.
func probeText(p PoolDoc, a AddressDoc) string {
	if p.HealthCheck == "" {
		return "no health check"
	}
	s := a.LastResult
	if s == "" {
		s = "pending"
	}
	if a.LastError != "" {
		s += ": " + a.LastError
	}
	if a.Quorum != nil {
		s += " · quorum " + strconv.Itoa(a.Quorum.Down) + "/" + strconv.Itoa(a.Quorum.Of) + " down"
		var votes []string
		for _, v := range a.Votes {
			votes = append(votes, v.Node+map[bool]string{true: " up", false: " down"}[v.Healthy])
		}
		if len(votes) > 0 {
			s += " (" + strings.Join(votes, ", ") + ")"
		}
		if a.LocalHealthy != nil && *a.LocalHealthy != a.Healthy {
			s += " · this node sees it " + map[bool]string{true: "up", false: "down"}[*a.LocalHealthy]
		}
	}
	return s
}
