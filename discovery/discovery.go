// Package discovery keeps pool members current from registries: DNS names (A/AAAA, re-resolved
// as their TTL expires), SRV records, and Kubernetes Services and Ingresses (client-go
// informers). It is plain Go with no CoreDNS import: the block that owns a Manager tells it
// which sources its configuration wants (Sync), reads what they found (View) when it
// compiles, and is told when that changed (Options.OnChange).
//
// The staleness rule lives here, once for every source: a source that cannot reach its
// registry, or gets an error, reports an error and its last members stay (the view says
// stale, with the error); a registry that answers "none" is believed.
package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Member is one discovered address.
type Member struct {
	Addr     netip.Addr
	Port     int // SRV: the port of its checks; 0: the check template's
	Weight   int // 0: 1
	Priority int // SRV priority
}

// Report is what a source saw at one moment.
type Report struct {
	// Members are the registry's current members; ignored when Err is set (the last known
	// members stay).
	Members []Member
	// Err says the registry could not be asked or answered with an error.
	Err error
	// Warning is a believed answer worth an event (a Service that does not exist).
	Warning string
}

// Source watches one registry and reports its members until ctx ends. Reports come from one
// goroutine; report never blocks for long.
type Source interface {
	Run(ctx context.Context, report func(Report))
}

// Want is one source a configuration needs: which pool it feeds, its label in status and
// metrics ("dns:NAME"), and a key that changes when its settings do (a changed resolver
// restarts it; an unchanged source keeps running across reloads and API writes).
type Want struct {
	Pool   string
	Label  string
	Key    string
	Target string // flatten: the pool's address (a lower-case FQDN) whose A/AAAA it resolves
	New    func() (Source, error)
}

func (w Want) id() string { return w.Pool + "\x00" + w.Key }

// Options configures a Manager.
type Options struct {
	// OnChange is called (from the source's goroutine, never under a lock of the Manager)
	// after a source's members, staleness or error changed.
	OnChange func()
	// OnEvent is called with a line worth an event: a source going stale, recovering, or
	// warning. warning is true for what should be logged as a warning.
	OnEvent func(pool, source, msg string, warning bool)
}

// Manager runs the sources of one block.
type Manager struct {
	opts Options

	mu      sync.Mutex
	sources map[string]*running // by Want.id
	stopped bool
	wg      sync.WaitGroup
}

type running struct {
	want   Want
	cancel context.CancelFunc

	// under Manager.mu
	members []Member
	ok      bool // a first successful report arrived (members are the registry's)
	stale   bool
	err     string
	at      time.Time
}

// New returns a Manager that runs nothing yet.
func New(opts Options) *Manager {
	return &Manager{opts: opts, sources: map[string]*running{}}
}

// Sync makes the running sources those of wants: new ones start, ones no longer wanted stop
// (their members leave with them), unchanged ones keep running with their members. Errors
// of constructors (a kubeconfig that cannot be loaded) are returned, and those sources
// run as stale with that error.
func (m *Manager) Sync(wants []Want) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	keep := make(map[string]bool, len(wants))
	var start []*running
	var errs []string
	for _, w := range wants {
		id := w.id()
		if keep[id] {
			continue
		}
		keep[id] = true
		if _, ok := m.sources[id]; ok {
			continue
		}
		r := &running{want: w}
		m.sources[id] = r
		start = append(start, r)
	}
	var stop []*running
	for id, r := range m.sources {
		if !keep[id] {
			stop = append(stop, r)
			delete(m.sources, id)
		}
	}
	for _, r := range start {
		src, err := r.want.New()
		if err != nil {
			r.stale, r.err, r.at = true, err.Error(), time.Now()
			errs = append(errs, fmt.Sprintf("pool %s: %s: %v", r.want.Pool, r.want.Label, err))
			membersErrors.WithLabelValues(r.want.Pool, r.want.Label).Inc()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			src.Run(ctx, func(rep Report) { m.report(r, rep) })
		}()
	}
	m.mu.Unlock()
	for _, r := range stop {
		if r.cancel != nil {
			r.cancel()
		}
		membersErrors.DeleteLabelValues(r.want.Pool, r.want.Label)
	}
	if len(start) > 0 || len(stop) > 0 {
		m.changed()
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Stop ends every source and waits for their goroutines.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	for id, r := range m.sources {
		if r.cancel != nil {
			r.cancel()
		}
		membersErrors.DeleteLabelValues(r.want.Pool, r.want.Label)
		delete(m.sources, id)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *Manager) report(r *running, rep Report) {
	m.mu.Lock()
	if m.sources[r.want.id()] != r {
		m.mu.Unlock()
		return // stopped meanwhile
	}
	var event string
	warning := false
	changed := false
	r.at = time.Now()
	if rep.Err != nil {
		msg := rep.Err.Error()
		if !r.stale || r.err != msg {
			changed = true
			event, warning = fmt.Sprintf("pool %s: %s: registry error, keeping the last %d members (stale): %s", r.want.Pool, r.want.Label, len(r.members), msg), true
		}
		r.stale, r.err = true, msg
		membersErrors.WithLabelValues(r.want.Pool, r.want.Label).Inc()
	} else {
		members := normalize(rep.Members)
		if r.stale {
			changed = true
			event = fmt.Sprintf("pool %s: %s: registry answers again (%d members)", r.want.Pool, r.want.Label, len(members))
		}
		if rep.Warning != "" && (!slices.Equal(members, r.members) || r.stale || r.err != rep.Warning) {
			event, warning = fmt.Sprintf("pool %s: %s: %s", r.want.Pool, r.want.Label, rep.Warning), true
		}
		if !slices.Equal(members, r.members) || !r.ok {
			changed = true
		}
		r.members, r.ok, r.stale, r.err = members, true, false, rep.Warning
	}
	m.mu.Unlock()
	if event != "" && m.opts.OnEvent != nil {
		m.opts.OnEvent(r.want.Pool, r.want.Label, event, warning)
	}
	if changed {
		m.changed()
	}
}

func (m *Manager) changed() {
	if m.opts.OnChange != nil {
		m.opts.OnChange()
	}
}

// normalize sorts members by address and keeps the first of a duplicated address, so equal
// sets compare equal whatever order the registry gave.
func normalize(ms []Member) []Member {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Addr = out[i].Addr.Unmap()
		if out[i].Weight <= 0 {
			out[i].Weight = 1
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return slices.CompactFunc(out, func(a, b Member) bool { return a.Addr == b.Addr })
}

// SourceView is what one source last reported.
type SourceView struct {
	Label   string    `json:"source"`
	Members []Member  `json:"-"`
	Synced  bool      `json:"synced"` // a first successful report arrived
	Stale   bool      `json:"stale,omitzero"`
	Error   string    `json:"error,omitzero"` // the registry's error (stale), or a warning
	At      time.Time `json:"at,omitzero"`
}

// PoolView is what a pool's sources last reported, in the order of its configuration.
type PoolView struct {
	Sources []SourceView
	// Flat maps a flatten pool's target (lower-case FQDN) to its resolution.
	Flat map[string]SourceView
}

// Stale reports whether one of the pool's sources is stale, and their errors.
func (p PoolView) Stale() (bool, string) {
	stale := false
	var errs []string
	for _, s := range p.Sources {
		stale = stale || s.Stale
		if s.Stale {
			errs = append(errs, s.Label+": "+s.Error)
		}
	}
	for _, t := range sortedKeys(p.Flat) {
		s := p.Flat[t]
		stale = stale || s.Stale
		if s.Stale {
			errs = append(errs, s.Label+": "+s.Error)
		}
	}
	return stale, strings.Join(errs, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// View is what every source of a Manager last reported, by pool. It is a copy: it never
// changes after View returns it.
type View map[string]*PoolView

// View returns the sources' current reports.
func (m *Manager) View() View {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := View{}
	rs := make([]*running, 0, len(m.sources))
	for _, r := range m.sources {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].want.Label < rs[j].want.Label })
	for _, r := range rs {
		pv := out[r.want.Pool]
		if pv == nil {
			pv = &PoolView{}
			out[r.want.Pool] = pv
		}
		sv := SourceView{Label: r.want.Label, Members: r.members, Synced: r.ok, Stale: r.stale, Error: r.err, At: r.at}
		if r.want.Target != "" {
			if pv.Flat == nil {
				pv.Flat = map[string]SourceView{}
			}
			pv.Flat[r.want.Target] = sv
			continue
		}
		pv.Sources = append(pv.Sources, sv)
	}
	return out
}

var membersErrors = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "coredns", Subsystem: "gtm", Name: "members_errors_total",
	Help: "Errors of member discovery (registry unreachable or answering an error) by pool and source; the last members stay.",
}, []string{"pool", "source"})
