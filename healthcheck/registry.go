package healthcheck

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Registry.
type Options struct {
	// MaxConcurrent bounds the probes in flight (default 256).
	MaxConcurrent int
	// OnChange is called from the prober's goroutine when a target's verdict changes,
	// including its first verdict. It must not block for long.
	OnChange func(Change)
	// OnProbe is called after every probe, for metrics.
	OnProbe func(t *Target, res Result, took time.Duration)
}

// Change reports a new verdict.
type Change struct {
	Target  *Target
	Healthy bool
	First   bool // the first verdict of a target that started without one (none carried over)
	Result  Result
	Err     string
	Time    time.Time
}

// Status is a target's state for humans (the status page and API).
type Status struct {
	Healthy    bool
	Ready      bool // has a first verdict
	LastResult Result
	LastError  string
	LastProbe  time.Time
	LastChange time.Time
	RTT        time.Duration
	Probes     uint64
	Failures   uint64
}

// Registry owns every prober. Acquire and Release are reference counted, so a target used by
// several pools, or by the old and the new configuration during a reload, is probed once and
// keeps its state.
type Registry struct {
	opts    Options
	sem     chan struct{}
	mu      sync.Mutex
	targets map[targetKey]*prober
	byAddr  map[string][]*prober // the same probers, by address
	recent  []handover           // of released probers, oldest first; at most maxRecent
	prom    promClients          // prometheus checks' API clients and shared queries
	pushed  map[pushKey]Pushed   // pushed verdicts by (address, check); guarded by mu
}

// A released prober's verdict is kept this long, and for this many probers, so that a
// configuration that releases before it acquires still carries it over.
const (
	recentFor = time.Minute
	maxRecent = 4096
)

// handover is the state a prober hands to its successor for the same address.
type handover struct {
	addr           string
	names          []string
	check          string // checkKey of the template
	healthy, ready bool
	rtt            int64
	okRun, failRun int
	status         Status
	released       time.Time
}

// targetKey identifies a prober: the address it speaks for, where its probes go (dest, ""
// for the address itself: `check_address`) and the template's fingerprint.
type targetKey struct{ addr, dest, fingerprint string }

// NewRegistry makes an empty registry; probers start with the first Acquire.
func NewRegistry(o Options) *Registry {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 256
	}
	return &Registry{opts: o, sem: make(chan struct{}, o.MaxConcurrent), targets: map[targetKey]*prober{}, byAddr: map[string][]*prober{}}
}

// Target is one reference to an (address, template) under probe, as Acquire returns it.
// References whose templates differ only in name share one prober and its state; each
// remembers the template it was acquired with, so Release drops exactly that name.
type Target struct {
	p        *prober
	tmpl     *Template
	released bool // guarded by Registry.mu
}

// prober probes one (address, check) for every Target referencing it.
type prober struct {
	addr string    // the address it speaks for (answered)
	dest string    // where probes go: addr, or the address's check_address
	tmpl *Template // the first template: the others have the same fingerprint
	key  targetKey
	refs []*Target // live references in acquisition order; guarded by Registry.mu

	// face is the reference reported to OnProbe and OnChange: the most recently acquired
	// one still held, so labels and events carry the name in force.
	face  atomic.Pointer[Target]
	names atomic.Pointer[[]string] // sorted distinct names of refs

	healthy atomic.Bool
	ready   atomic.Bool
	rtt     atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // push: a verdict was pushed

	client *http.Client // http(s) probes, made at the first one; prober goroutine only
	// provisional: the verdict was carried over from a different check, so the first probe
	// decides it as it decides a new target's; prober goroutine only after the start.
	provisional bool

	mu             sync.Mutex
	okRun, failRun int
	status         Status
}

// Acquire returns a reference to the prober of (addr, t), starting it if it is new; its
// first probe runs at once. A new target starts in the verdict of a predecessor for the same
// address, live or released within recentFor: one whose template has the same check (only
// interval, timeout, fall or rise differ; rise and fall go on counting), else one whose
// template has the same name (the first probe of the changed check decides). Without one, it
// counts healthy until its first verdict.
func (r *Registry) Acquire(addr string, t *Template) *Target {
	return r.AcquireVia(addr, "", t)
}

// AcquireVia is Acquire for an address whose probes go to another one, its check address
// (`address IP check_address IP`: NAT, anycast, a VIP behind a load balancer); "" or addr
// itself probes addr. The target speaks for addr: its status, events and votes name addr.
func (r *Registry) AcquireVia(addr, checkAddr string, t *Template) *Target {
	dest := checkAddr
	if dest == addr {
		dest = ""
	}
	key := targetKey{addr, dest, t.Fingerprint()}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.targets[key]
	if ok {
		return p.addRef(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p = &prober{addr: addr, dest: dest, tmpl: t, key: key, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	p.healthy.Store(true)
	p.status.Healthy = true
	if v, ok := r.predecessor(addr, dest, t); ok && !t.Follow { // a follower has no verdict of its own
		p.adopt(v, v.check == dest+"|"+t.checkKey())
	}
	r.targets[key] = p
	r.byAddr[addr] = append(r.byAddr[addr], p)
	ref := p.addRef(t) // before the first probe, which reports through it
	go r.run(ctx, p)
	return ref
}

// Release drops one reference (a second Release of the same one does nothing); the last one
// stops the prober (cancelling a probe in flight) and forgets the target.
func (r *Registry) Release(tg *Target) {
	p := tg.p
	r.mu.Lock()
	if tg.released {
		r.mu.Unlock()
		return
	}
	tg.released = true
	p.refs = slices.DeleteFunc(p.refs, func(x *Target) bool { return x == tg })
	last := len(p.refs) == 0
	if last {
		if r.targets[p.key] == p { // not a newer prober after Close
			delete(r.targets, p.key)
			r.byAddr[p.addr] = slices.DeleteFunc(r.byAddr[p.addr], func(x *prober) bool { return x == p })
			if len(r.byAddr[p.addr]) == 0 {
				delete(r.byAddr, p.addr)
			}
			r.remember(p)
		}
	} else {
		p.refsChanged()
	}
	r.mu.Unlock()
	if last {
		p.cancel()
	}
}

// predecessor finds the verdict a new prober of (addr, t) starts in: a live prober's before a
// released one's, and the same check before the same name. Called under Registry.mu.
func (r *Registry) predecessor(addr, dest string, t *Template) (handover, bool) {
	check := dest + "|" + t.checkKey()
	var live []handover
	for _, p := range r.byAddr[addr] {
		if v := p.handover(); v.ready {
			live = append(live, v)
		}
	}
	r.expire(time.Now())
	var released []handover
	for i := len(r.recent) - 1; i >= 0; i-- { // newest first
		if r.recent[i].addr == addr {
			released = append(released, r.recent[i])
		}
	}
	for _, vs := range [][]handover{live, released} {
		for _, v := range vs {
			if v.check == check {
				return v, true
			}
		}
		for _, v := range vs {
			if slices.Contains(v.names, t.Name) {
				return v, true
			}
		}
	}
	return handover{}, false
}

// handover snapshots the prober's state; called under Registry.mu.
func (p *prober) handover() handover {
	p.mu.Lock()
	defer p.mu.Unlock()
	return handover{
		addr: p.addr, names: *p.names.Load(), check: p.dest + "|" + p.tmpl.checkKey(),
		healthy: p.healthy.Load(), ready: p.ready.Load(), rtt: p.rtt.Load(),
		okRun: p.okRun, failRun: p.failRun, status: p.status,
	}
}

// adopt starts a new prober in its predecessor's verdict; sameCheck carries the rise/fall
// runs too, otherwise the verdict holds only until the first probe. Called before the
// prober runs.
func (p *prober) adopt(v handover, sameCheck bool) {
	p.healthy.Store(v.healthy)
	p.ready.Store(v.ready)
	p.rtt.Store(v.rtt)
	p.status = v.status
	if sameCheck {
		p.okRun, p.failRun = v.okRun, v.failRun
	} else {
		p.provisional = true
	}
}

// remember keeps a released prober's verdict for recentFor; called under Registry.mu.
func (r *Registry) remember(p *prober) {
	v := p.handover()
	if !v.ready {
		return
	}
	v.released = time.Now()
	r.expire(v.released)
	if len(r.recent) >= maxRecent {
		r.recent = slices.Delete(r.recent, 0, len(r.recent)-maxRecent+1)
	}
	r.recent = append(r.recent, v)
}

// expire forgets verdicts released more than recentFor before now.
func (r *Registry) expire(now time.Time) {
	i := 0
	for i < len(r.recent) && now.Sub(r.recent[i].released) > recentFor {
		i++
	}
	if i > 0 {
		r.recent = slices.Delete(r.recent, 0, i)
	}
}

// addRef adds a reference acquired with t; called under Registry.mu.
func (p *prober) addRef(t *Template) *Target {
	ref := &Target{p: p, tmpl: t}
	p.refs = append(p.refs, ref)
	p.refsChanged()
	return ref
}

// refsChanged updates the name in force and the set of names; called under Registry.mu.
func (p *prober) refsChanged() {
	p.face.Store(p.refs[len(p.refs)-1])
	var names []string
	for _, ref := range p.refs {
		names = append(names, ref.tmpl.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	p.names.Store(&names)
}

// TemplateNames is the set of template names some live prober runs for (the names its
// metric series carry).
func (r *Registry) TemplateNames() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, 8)
	for _, p := range r.targets {
		for _, n := range *p.names.Load() {
			out[n] = true
		}
	}
	return out
}

// Len is the number of targets under probe.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.targets)
}

// Close stops every prober and waits for them.
func (r *Registry) Close() {
	r.mu.Lock()
	all := make([]*prober, 0, len(r.targets))
	for k, p := range r.targets {
		all = append(all, p)
		delete(r.targets, k)
	}
	clear(r.byAddr)
	r.recent = nil
	r.mu.Unlock()
	for _, p := range all {
		p.cancel()
		<-p.done
	}
}

func (r *Registry) run(ctx context.Context, p *prober) {
	defer close(p.done)
	switch {
	case p.tmpl.Follow:
		<-ctx.Done() // outside the vantage regions: the voters decide
		return
	case p.tmpl.Protocol == Push:
		r.runPush(ctx, p)
		return
	}
	iv := p.tmpl.Interval
	if iv <= 0 {
		iv = 10 * time.Second
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		res, took, err := r.probeOnce(ctx, p)
		<-r.sem
		if ctx.Err() != nil {
			return
		}
		r.record(p, res, err, took)
		// Jitter: ±10% each round, and the second probe lands anywhere in the next
		// interval, so targets that started together (every target at startup) spread out
		// instead of probing in lockstep forever.
		wait := time.Duration(float64(iv) * (0.9 + 0.2*rand.Float64()))
		if first {
			wait = time.Duration(float64(iv) * (0.5 + rand.Float64()))
			first = false
		}
		timer.Reset(wait)
	}
}

func (r *Registry) probeOnce(ctx context.Context, p *prober) (Result, time.Duration, error) {
	timeout := p.tmpl.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res, err := r.probe(pctx, p)
	took := time.Since(start)
	return judgeRTT(res, err, took, p.tmpl.MaxRTT)
}

// judgeRTT fails a successful probe that took longer than maxRTT (0: no limit).
func judgeRTT(res Result, err error, took, maxRTT time.Duration) (Result, time.Duration, error) {
	if res == ResultOK && maxRTT > 0 && took > maxRTT {
		return ResultSlow, took, fmt.Errorf("slow: took %s, more than max_rtt %s", took.Round(time.Microsecond), maxRTT)
	}
	return res, took, err
}

// record applies one probe result to the rise/fall state machine.
func (r *Registry) record(p *prober, res Result, err error, took time.Duration) {
	ok := res == ResultOK
	now := time.Now()
	errText := ""
	if err != nil {
		errText = err.Error()
	}

	p.mu.Lock()
	if ok {
		p.okRun, p.failRun = p.okRun+1, 0
		old := p.rtt.Load()
		if old == 0 {
			p.rtt.Store(int64(took))
		} else {
			p.rtt.Store((3*old + int64(took)) / 4) // EWMA, as CoreDNS's proxy smooths RTT
		}
	} else {
		p.failRun, p.okRun = p.failRun+1, 0
	}
	wasReady := p.ready.Load()
	was := p.healthy.Load()
	verdict := was
	switch {
	case !wasReady || p.provisional:
		verdict = ok // one probe decides the first verdict, or a changed check's
	case was && p.failRun >= p.tmpl.fall():
		verdict = false
	case !was && p.okRun >= p.tmpl.rise():
		verdict = true
	}
	p.healthy.Store(verdict)
	p.ready.Store(true)
	p.provisional = false

	s := &p.status
	s.Healthy, s.Ready, s.LastResult, s.LastError, s.LastProbe = verdict, true, res, errText, now
	s.RTT = time.Duration(p.rtt.Load())
	s.Probes++
	if !ok {
		s.Failures++
	}
	changed := !wasReady || verdict != was
	if changed {
		s.LastChange = now
	}
	p.mu.Unlock()

	face := p.face.Load()
	if r.opts.OnProbe != nil {
		r.opts.OnProbe(face, res, took)
	}
	if changed && r.opts.OnChange != nil {
		r.opts.OnChange(Change{Target: face, Healthy: verdict, First: !wasReady, Result: res, Err: errText, Time: now})
	}
}

// Healthy reports the current verdict; true until the first one unless one was carried over.
// Lock-free.
func (tg *Target) Healthy() bool { return tg.p.healthy.Load() }

// Ready reports whether the target has a verdict, its own or one carried over.
func (tg *Target) Ready() bool { return tg.p.ready.Load() }

// RTT is the smoothed round-trip time of successful probes; 0 when unknown.
func (tg *Target) RTT() time.Duration { return time.Duration(tg.p.rtt.Load()) }

// Addr is the address the target speaks for (an IP address or a host name): the probed one,
// unless probes go to a check address.
func (tg *Target) Addr() string { return tg.p.addr }

// CheckAddr is where probes go when that is not Addr (`check_address`), else "".
func (tg *Target) CheckAddr() string { return tg.p.dest }

// Template is the health-check template this reference was acquired with. For the Target
// passed to OnProbe and OnChange that is the template most recently acquired among those
// still referencing the prober: its name is the one in force.
func (tg *Target) Template() *Template { return tg.tmpl }

// Names are the distinct names of the templates currently referencing the target's prober,
// sorted (after the last Release, the names it had then).
func (tg *Target) Names() []string { return slices.Clone(*tg.p.names.Load()) }

// Shares reports whether two references share one prober (and so one state).
func (tg *Target) Shares(other *Target) bool { return tg.p == other.p }

// Status returns a copy of the target's state.
func (tg *Target) Status() Status {
	tg.p.mu.Lock()
	defer tg.p.mu.Unlock()
	return tg.p.status
}
