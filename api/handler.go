package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/gtm-dns/coredns-gtm/healthcheck"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/webhook"
)

// Config is what the handler works with.
type Config struct {
	Token      string      // the token_file token (an unscoped admin); "" and no Tokens: only public reads are served
	Tokens     *access.Set // the named tokens (token NAME FILE ROLE [SCOPE...]), token_file's among them
	Audit      audit.Log   // where write attempts are recorded (nil: in memory)
	PublicRead bool        // reads (status, events, the page) need no token
	Control    Control     // the block's configuration and state
	Events     *Events
	Snapshot   func() *policy.Snapshot // the configuration in force
	Log        func(format string, args ...any)
}

//go:embed web
var webFS embed.FS

// maxBody bounds request bodies; the largest valid one is a few dozen bytes.
const maxBody = 64 << 10

type handler struct {
	cfg    Config
	tokens *access.Set
	mux    *http.ServeMux
	static http.Handler
}

// NewHandler returns the admin API and status page.
func NewHandler(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if cfg.Events == nil {
		cfg.Events = DefaultEvents
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.NewMemory(1000)
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux(), tokens: tokenSet(cfg)}
	sub, _ := fs.Sub(webFS, "web")
	h.static = http.FileServerFS(sub)
	h.mux.HandleFunc("GET /api/v1/status", h.status)
	h.mux.HandleFunc("GET /api/v1/events", h.events)
	h.mux.HandleFunc("PUT /api/v1/pools/{pool}/addresses/{address}/mode", h.setMode)
	h.mux.HandleFunc("PUT /api/v1/domains/{domain}/pin", h.setPin)
	h.mux.HandleFunc("POST /api/v1/domains/{domain}/failback", h.failback)
	h.mux.HandleFunc("GET /api/v1/pools/{pool}/mode", h.getPoolMode)
	h.mux.HandleFunc("PUT /api/v1/pools/{pool}/mode", h.setPoolMode)
	h.mux.HandleFunc("DELETE /api/v1/pools/{pool}/mode", h.deletePoolMode)
	h.mux.HandleFunc("GET /api/v1/cluster", h.cluster)
	h.mux.HandleFunc("GET /api/v1/explain", h.explain)
	h.mux.HandleFunc("GET /api/v1/history", h.history)
	h.mux.HandleFunc("GET /api/v1/config", h.configAll)
	h.mux.HandleFunc("GET /api/v1/config/{kind}/{name}", h.configGet)
	h.mux.HandleFunc("PUT /api/v1/config", h.configReplace)
	h.mux.HandleFunc("POST /api/v1/cluster/restore", h.clusterRestore)
	h.mux.HandleFunc("PUT /api/v1/config/{kind}/{name}", h.configPut)
	h.mux.HandleFunc("DELETE /api/v1/config/{kind}/{name}", h.configDelete)
	h.routeOutside() // health_push.go: pushed verdicts, the brake
	h.mux.HandleFunc("GET /api/v1/audit", h.auditList)
	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("GET /app.js", h.page)
	h.mux.HandleFunc("GET /style.css", h.page)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.cfg.Log("admin API: panic serving %s %s: %v", r.Method, r.URL.Path, v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	hd := w.Header()
	setSecurityHeaders(hd)

	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	tok := h.tokenOf(r)
	if !(read && h.cfg.PublicRead) && tok == nil {
		hd.Set("WWW-Authenticate", `Bearer realm="coredns-gtm"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if tok != nil && !read && r.Method != http.MethodOptions {
		h.audited(w, r, tok) // every write attempt of a known token is recorded
		return
	}
	h.route(w, r, tok)
}

// route serves a request whose token (nil: a public read) is known: the rights its route
// needs, then the route.
func (h *handler) route(w http.ResponseWriter, r *http.Request, tok *access.Token) {
	hd := w.Header()
	// "OPTIONS *" asks about the server as a whole: the methods some resource takes.
	if r.RequestURI == "*" {
		if r.Method != http.MethodOptions {
			hd.Set("Allow", http.MethodOptions)
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on *; allowed: OPTIONS")
			return
		}
		hd.Set("Allow", "GET, HEAD, PUT, POST, DELETE, OPTIONS") // keep in step with the routes of NewHandler
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// ServeMux would redirect a non-canonical path ("//", "/../"); an API answers 404.
	if p := r.URL.Path; p != "/" && path.Clean(p) != p {
		writeError(w, http.StatusNotFound, "no such resource: "+p)
		return
	}
	_, pattern := h.mux.Handler(r)
	if pattern == "" {
		h.notFoundOrMethod(w, r)
		return
	}
	if tok != nil {
		if err := allow(tok, pattern, r); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
	}
	h.serveWrite(w, r)
}

// notFoundOrMethod answers in JSON what ServeMux would answer in text, and OPTIONS of an
// existing resource with its methods.
func (h *handler) notFoundOrMethod(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := h.mux.Handler(probe); p != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead) // a GET route serves HEAD too
			}
		}
	}
	if len(allow) > 0 {
		allow = append(allow, http.MethodOptions)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+strings.Join(allow, ", "))
		return
	}
	writeError(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	h.static.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// StatusDoc is the body of GET /api/v1/status.
type StatusDoc struct {
	Time      time.Time   `json:"time"`
	Zones     []string    `json:"zones"`
	Domains   []DomainDoc `json:"domains"`
	Pools     []PoolDoc   `json:"pools"`
	LastEvent uint64      `json:"last_event"`
	Epoch     uint64      `json:"epoch"` // the id the process's events started at; a new one means a restart
	// Dangling lists overrides left in the state for pools, addresses or domains that are no
	// longer configured ("modes/POOL/ADDRESS", "pins/DOMAIN"): not in force, and cleared
	// with mode auto or pin "".
	Dangling []string `json:"dangling"`
	// Webhooks reports each webhook of the api block (left out without any).
	Webhooks []webhook.Status `json:"webhooks,omitempty"`
	// Brake is the mass-failure brake, as GET /api/v1/brake reports it (left out without
	// one): an engaged brake means the answers hold verdicts from before a wave.
	Brake *BrakeDoc `json:"brake,omitempty"`
}

// DomainDoc describes a managed domain.
type DomainDoc struct {
	Name   string `json:"name"`
	TTL    uint32 `json:"ttl"`
	Pinned string `json:"pinned"`
	// DanglingPin is a pin to a pool that no longer exists: not in force.
	DanglingPin string     `json:"dangling_pin,omitempty"`
	Routes      []RouteDoc `json:"routes"`
	// The domain's failover settings: fallback (open, nodata, servfail or a pool), failback
	// (auto, manual or a duration) and the degraded TTL when it has one.
	Fallback    string  `json:"fallback"`
	Failback    string  `json:"failback"`
	TTLDegraded *uint32 `json:"ttl_degraded,omitempty"`

	// A timed pin in force: its from and until; Scheduled, a pin stored that starts later.
	*WindowDoc
	Scheduled *ScheduledDoc `json:"scheduled,omitempty"`
}

// RouteDoc describes a route and the pool it selects now.
type RouteDoc struct {
	Selector string   `json:"selector"`
	Select   string   `json:"select"`
	Pools    []string `json:"pools"`
	Current  string   `json:"current"`   // the pool answered now (a client of unknown location)
	FailOpen bool     `json:"fail_open"` // no pool of the route is available
	// Held is the pool a failback hold keeps the route on (failback manual or DURATION),
	// since HeldSince; "" when not held.
	Held      string     `json:"held,omitempty"`
	HeldSince *time.Time `json:"held_since,omitempty"`
	// Fallback is the domain's fallback in force while no pool is available (open, nodata,
	// servfail or pool); "" while some pool is.
	Fallback string `json:"fallback,omitempty"`
}

// PoolDoc describes a pool.
type PoolDoc struct {
	Name         string       `json:"name"`
	Available    bool         `json:"available"`
	Up           int          `json:"up"`
	MinAvailable int          `json:"min_available"`
	LB           string       `json:"lb"`
	Weight       int          `json:"weight"`
	HealthCheck  string       `json:"healthcheck"`
	HealthChecks []string     `json:"healthchecks,omitempty"` // every check (healthcheck is the first)
	Require      string       `json:"require,omitempty"`      // all, any or N
	Location     *[2]float64  `json:"location,omitempty"`
	RTTMillis    float64      `json:"rtt_ms"`
	Addresses    []AddressDoc `json:"addresses"`

	// MinAvailablePercent is `min_available P%`; MinAvailable is then what it asks now.
	MinAvailablePercent int `json:"min_available_percent,omitempty"`
	// Mode is the pool mode in force (auto: none): it applies to the addresses whose own
	// mode is auto. Timed, its from and until; Scheduled, one stored that starts later.
	Mode string `json:"mode"`
	*WindowDoc
	Scheduled *ScheduledDoc `json:"scheduled,omitempty"`
	// MembersStale: a member source of the pool cannot reach its registry (its last members
	// stay); MembersError says why. Only for pools with members or flatten.
	MembersStale *bool  `json:"members_stale,omitempty"`
	MembersError string `json:"members_error,omitempty"`
}

// AddressDoc describes an address of a pool.
type AddressDoc struct {
	Address      string     `json:"address"`
	CheckAddress string     `json:"check_address,omitempty"` // where probes go, when not to address
	Up           bool       `json:"up"`                      // may be answered now
	Healthy      bool       `json:"healthy"`                 // the health checks' verdict (true without checks)
	Checked      bool       `json:"checked"`                 // has a first probe verdict
	Mode         string     `json:"mode"`
	Disabled     bool       `json:"disabled"`
	Weight       int        `json:"weight"`
	Priority     int        `json:"priority"`
	LastResult   string     `json:"last_result"`
	LastError    string     `json:"last_error"`
	LastProbe    *time.Time `json:"last_probe"`
	LastChange   *time.Time `json:"last_change"`
	RTTMillis    float64    `json:"rtt_ms"`
	Probes       uint64     `json:"probes"`
	Failures     uint64     `json:"failures"`
	// In a fleet: every live node's verdict, and the quorum they make; Healthy is then the
	// quorum's verdict and LocalHealthy this node's own.
	Votes        []VoteDoc  `json:"votes,omitempty"`
	Quorum       *QuorumDoc `json:"quorum,omitempty"`
	LocalHealthy *bool      `json:"local_healthy,omitempty"`
	Checks       []CheckDoc `json:"checks,omitempty"` // every check of the address: which pass
	// ModeSource is where Mode comes from: "address" (its own), "pool" (its pool's mode)
	// or "none" (auto). A timed mode in force has from and until; Scheduled is the
	// address's own override stored that starts later.
	ModeSource string `json:"mode_source"`
	*WindowDoc
	Scheduled *ScheduledDoc `json:"scheduled,omitempty"`
	// Source is where the address came from: static, dns:NAME, srv:NAME, kubernetes:ns/svc.
	Source string `json:"source"`
	// Resolved are a flatten pool's name's current addresses.
	Resolved []string `json:"resolved,omitempty"`
}

// VoteDoc is one node's verdict on an address's check.
type VoteDoc struct {
	Node    string    `json:"node"`
	Region  string    `json:"region"`
	Healthy bool      `json:"healthy"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// QuorumDoc is what a quorum verdict stands on: down of the nodes that report.
type QuorumDoc struct {
	Down int `json:"down"`
	Of   int `json:"of"`
	// Vantage: the check's vantage regions (only their nodes vote); Follower: this node is
	// outside them and takes their verdict; NoVoter: no voter is alive, so this node keeps
	// its last verdict.
	Vantage  []string `json:"vantage,omitempty"`
	Follower bool     `json:"follower,omitempty"`
	NoVoter  bool     `json:"no_voter,omitempty"`
}

// vantageReporter is a voted health whose check has vantage regions.
type vantageReporter interface {
	Vantage() (regions []string, follower, noVoter bool)
}

type voteReporter interface {
	Votes() (votes []VoteDoc, down, of int, local bool)
}

type statusReporter interface{ Status() healthcheck.Status }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// Status builds the status document of a snapshot.
func Status(s *policy.Snapshot, ev *Events) StatusDoc {
	doc := StatusDoc{Time: time.Now().UTC(), Zones: []string{}, Domains: []DomainDoc{}, Pools: []PoolDoc{}, Dangling: []string{}}
	if ev != nil {
		doc.LastEvent, doc.Epoch = ev.Last(), ev.Epoch()
	}
	if s == nil {
		return doc
	}
	doc.Zones = append(doc.Zones, s.Zones...)
	for _, d := range s.Domains {
		dd := DomainDoc{Name: d.Name, TTL: d.TTL, Routes: []RouteDoc{}}
		domainFailover(&dd, d)
		var pinned *policy.Pool
		if pin := d.Pin.Get(); pin != "" {
			if pinned = s.Pool(pin); pinned != nil {
				dd.Pinned = pin
			} else {
				dd.DanglingPin = pin
			}
		}
		for _, r := range d.Routes {
			dd.Routes = append(dd.Routes, routeDoc(d, r, pinned))
		}
		doc.Domains = append(doc.Domains, dd)
	}
	for _, p := range s.Pools {
		pd := PoolDoc{
			Name: p.Name, Available: p.Available(), Up: p.UpCount(), MinAvailable: max(p.MinAvailable, 1),
			LB: p.LB.String(), Weight: p.Weight, HealthCheck: p.HealthCheck, RTTMillis: ms(p.RTT()),
			HealthChecks: p.HealthChecks, Require: p.Require,
			Addresses: []AddressDoc{},
		}
		if p.HasLocation {
			pd.Location = &[2]float64{p.Lat, p.Lon}
		}
		poolFailover(&pd, p)
		poolMembers(&pd, p)
		for _, a := range p.Addrs {
			ad := AddressDoc{
				Address: a.Text, CheckAddress: a.Check, Up: a.Up(), Healthy: true, Checked: false, Mode: a.Mode.Get().String(),
				Disabled: a.Disabled, Weight: a.Weight, Priority: a.Priority,
			}
			addressMembers(&ad, p, a)
			if sr, ok := a.Health.(statusReporter); ok {
				st := sr.Status()
				ad.Healthy, ad.Checked = st.Healthy, st.Ready
				ad.LastResult, ad.LastError = string(st.LastResult), st.LastError
				ad.LastProbe, ad.LastChange = timePtr(st.LastProbe), timePtr(st.LastChange)
				ad.RTTMillis, ad.Probes, ad.Failures = ms(st.RTT), st.Probes, st.Failures
			}
			if vr, ok := a.Health.(voteReporter); ok {
				votes, down, of, local := vr.Votes()
				if votes == nil {
					votes = []VoteDoc{}
				}
				ad.Votes, ad.Quorum, ad.LocalHealthy = votes, &QuorumDoc{Down: down, Of: of}, &local
				if vt, ok := a.Health.(vantageReporter); ok {
					ad.Quorum.Vantage, ad.Quorum.Follower, ad.Quorum.NoVoter = vt.Vantage()
				}
			}
			ad.Checks = checksOf(p, a)
			pd.Addresses = append(pd.Addresses, ad)
		}
		doc.Pools = append(doc.Pools, pd)
	}
	return doc
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	snap := h.cfg.Snapshot()
	doc := Status(snap, h.cfg.Events)
	var d *state.Data
	if h.cfg.Control != nil {
		d = h.cfg.Control.Store().Data()
		doc.Dangling = append(doc.Dangling, Dangling(snap, d)...)
	}
	doc.Webhooks = h.webhookStatus()
	doc.Brake = h.brakeDoc()
	annotate(&doc, d, time.Now())
	writeJSON(w, http.StatusOK, doc)
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: expected an event id (a non-negative integer)", v))
			return
		}
		since = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": h.cfg.Events.Since(since), "last": h.cfg.Events.Last(), "epoch": h.cfg.Events.Epoch()})
}

// decode reads a small JSON body strictly: one object, known field names only
// (case-sensitive), no duplicate names, nothing after it.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r, maxBody)
	if !ok {
		return false
	}
	if err := jsonv2.Unmarshal(b, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+config.JSONError(err))
		return false
	}
	return true
}

func (h *handler) setMode(w http.ResponseWriter, r *http.Request) {
	snap := h.cfg.Snapshot()
	poolName, addrText := r.PathValue("pool"), r.PathValue("address")
	var p *policy.Pool
	if snap != nil {
		p = snap.Pool(poolName)
	}
	var a *policy.Address
	if p != nil {
		a = findAddress(p, addrText)
	}
	var body struct {
		Mode *string `json:"mode"`
		windowBody
	}
	if a == nil {
		// A mode left in the state for an address no longer configured can still be
		// cleared (set to auto), so it stops being reported as dangling.
		key := state.ModeKey(poolName, config.AddressKey(addrText))
		if _, dangling := h.cfg.Control.Store().Data().Entries[key]; dangling && decode(w, r, &body) {
			if body.Mode == nil || *body.Mode != "auto" {
				writeError(w, http.StatusNotFound, fmt.Sprintf("pool %q has no address %q: its leftover override can only be cleared with mode auto", poolName, addrText))
				return
			}
			h.clear(w, r, key, Event{Kind: "mode", Pool: poolName, Address: addrText, Message: fmt.Sprintf("leftover override of address %s of pool %s cleared", addrText, poolName)})
			return
		} else if dangling {
			return
		}
		if p == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q", poolName))
		} else {
			writeError(w, http.StatusNotFound, fmt.Sprintf("pool %q has no address %q", poolName, addrText))
		}
		return
	}
	if !decode(w, r, &body) {
		return
	}
	m, ok := modeOf(w, body.Mode)
	if !ok {
		return
	}
	win, ok := windowOf(w, body.windowBody, m != policy.ModeAuto, "mode auto")
	if !ok {
		return
	}
	if err := h.cfg.Control.Store().SetModeWindow(r.Context(), p.Name, a.Text, m, win); err != nil {
		h.cfg.Log("admin API: could not persist mode of %s in pool %s: %v", a.Text, p.Name, err)
		writeStoreError(w, "could not persist the override", err)
		return
	}
	now := time.Now()
	msg := fmt.Sprintf("address %s of pool %s set to mode %s%s", a.Text, p.Name, m, describeWindow(win))
	h.cfg.Log("admin API: %s (from %s)", msg, r.RemoteAddr)
	h.cfg.Events.Add(Event{Token: actor(r), Kind: "mode", Pool: p.Name, Address: a.Text, Action: action(win, now), Message: msg})
	writeJSON(w, http.StatusOK, windowFields(map[string]any{"pool": p.Name, "address": a.Text, "mode": m.String(), "up": a.Up()}, win, now))
}

// Dangling lists the overrides in d whose pool, address or domain s does not have.
func Dangling(s *policy.Snapshot, d *state.Data) []string {
	var out []string
	if s == nil || d == nil {
		return out
	}
	for k, e := range d.Entries {
		switch {
		case strings.HasPrefix(k, state.ModesPrefix):
			pool, addr, _ := strings.Cut(strings.TrimPrefix(k, state.ModesPrefix), "/")
			if p := s.Pool(pool); p == nil || findAddress(p, addr) == nil {
				out = append(out, k)
			}
		case strings.HasPrefix(k, state.PoolModesPrefix):
			if s.Pool(strings.TrimPrefix(k, state.PoolModesPrefix)) == nil {
				out = append(out, k)
			}
		case strings.HasPrefix(k, state.PinsPrefix):
			var v state.PinValue
			if json.Unmarshal(e.Value, &v) != nil {
				continue // not a pin value at all: config_error names it (control/statecheck.go)
			}
			if s.Domain(strings.TrimPrefix(k, state.PinsPrefix)) == nil || s.Pool(v.Pool) == nil {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// clear deletes a leftover override (one whose pool, address or domain is gone).
func (h *handler) clear(w http.ResponseWriter, r *http.Request, key string, e Event) {
	st := h.cfg.Control.Store()
	st.Lock()
	_, err := st.Commit(r.Context(), []state.Op{{Key: key}})
	st.Unlock()
	if err != nil {
		writeStoreError(w, "could not clear the override", err)
		return
	}
	h.cfg.Log("admin API: %s (from %s)", e.Message, r.RemoteAddr)
	e.Token = actor(r)
	h.cfg.Events.Add(e)
	writeJSON(w, http.StatusOK, map[string]any{"cleared": strings.TrimPrefix(strings.TrimPrefix(key, state.ModesPrefix), state.PinsPrefix)})
}

// writeStoreError answers a failed commit: 503 when the cluster store is unreachable or
// went back in time (nothing was written), 504 when the outcome is not known.
func writeStoreError(w http.ResponseWriter, what string, err error) {
	if writeStoreFault(w, err) {
		return
	}
	writeError(w, http.StatusInternalServerError, what+": "+err.Error())
}

func findAddress(p *policy.Pool, text string) *policy.Address {
	ip, ipErr := netip.ParseAddr(text)
	for _, a := range p.Addrs {
		if a.Text == text || strings.EqualFold(a.Text, strings.TrimSuffix(text, ".")) {
			return a
		}
		if ipErr == nil && a.IP.IsValid() && a.IP == ip.Unmap() {
			return a
		}
	}
	return nil
}

func (h *handler) setPin(w http.ResponseWriter, r *http.Request) {
	snap := h.cfg.Snapshot()
	name := strings.ToLower(dns.Fqdn(r.PathValue("domain")))
	var d *policy.Domain
	if snap != nil {
		d = snap.Domain(name)
	}
	var body struct {
		Pool *string `json:"pool"`
		windowBody
	}
	if d == nil {
		key := state.PinKey(name)
		if _, dangling := h.cfg.Control.Store().Data().Entries[key]; dangling && decode(w, r, &body) {
			if body.Pool == nil || *body.Pool != "" {
				writeError(w, http.StatusNotFound, fmt.Sprintf("no managed domain %q: its leftover pin can only be cleared with pool \"\"", r.PathValue("domain")))
				return
			}
			h.clear(w, r, key, Event{Kind: "pin", Domain: name, Message: fmt.Sprintf("leftover pin of domain %s cleared", name)})
			return
		} else if dangling {
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no managed domain %q", r.PathValue("domain")))
		return
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Pool == nil {
		writeError(w, http.StatusBadRequest, `missing "pool": expected a pool name, or "" to unpin`)
		return
	}
	pool := *body.Pool
	if pool != "" && snap.Pool(pool) == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pool %q", pool))
		return
	}
	win, ok := windowOf(w, body.windowBody, pool != "", `pool ""`)
	if !ok {
		return
	}
	if err := h.cfg.Control.Store().SetPinWindow(r.Context(), d.Name, pool, win); err != nil {
		h.cfg.Log("admin API: could not persist pin of %s: %v", d.Name, err)
		writeStoreError(w, "could not persist the pin", err)
		return
	}
	now := time.Now()
	msg := fmt.Sprintf("domain %s pinned to pool %s%s", d.Name, pool, describeWindow(win))
	if pool == "" {
		msg = fmt.Sprintf("domain %s unpinned", d.Name)
	}
	h.cfg.Log("admin API: %s (from %s)", msg, r.RemoteAddr)
	h.cfg.Events.Add(Event{Token: actor(r), Kind: "pin", Domain: d.Name, Pool: pool, Action: action(win, now), Message: msg})
	writeJSON(w, http.StatusOK, windowFields(map[string]any{"domain": d.Name, "pinned": pool}, win, now))
}

// modeOf parses a mode body's "mode", answering 400 when it is missing or not a mode.
func modeOf(w http.ResponseWriter, mode *string) (policy.Mode, bool) {
	if mode == nil {
		writeError(w, http.StatusBadRequest, `missing "mode": expected auto, up or down`)
		return policy.ModeAuto, false
	}
	m, ok := policy.ParseMode(*mode)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("mode %q: expected auto, up or down", *mode))
	}
	return m, ok
}

// routeDoc is a route's status: its pools and the pool it answers from now (pinned: the
// domain's pin, which overrides every route), with what failover settings make of it.
func routeDoc(d *policy.Domain, r *policy.Route, pinned *policy.Pool) RouteDoc {
	rd := RouteDoc{Selector: r.Selector.Text, Select: r.Select.String(), Pools: []string{}}
	for _, p := range r.Pools {
		rd.Pools = append(rd.Pools, p.Name)
	}
	if pinned != nil {
		// As the query path does: a pinned pool that is not available fails open.
		rd.Current, rd.FailOpen = pinned.Name, !pinned.AvailableFor(policy.IPv4)
		return rd
	}
	if p, failOpen := r.Current(); p != nil {
		rd.Current, rd.FailOpen = p.Name, failOpen
	}
	routeFailover(&rd, d, r)
	return rd
}
