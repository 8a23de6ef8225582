package healthcheck

import (
	"context"
	"math/rand/v2"
	"net/http"
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
	First   bool // the first verdict after the target was created
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
	targets map[targetKey]*Target
}

type targetKey struct{ addr, fingerprint string }

// NewRegistry makes an empty registry; probers start with the first Acquire.
func NewRegistry(o Options) *Registry {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 256
	}
	return &Registry{opts: o, sem: make(chan struct{}, o.MaxConcurrent), targets: map[targetKey]*Target{}}
}

// Target is one (address, template) under probe.
type Target struct {
	addr string
	tmpl *Template
	key  targetKey
	refs int // guarded by Registry.mu

	healthy atomic.Bool
	ready   atomic.Bool
	rtt     atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}

	// only the prober goroutine touches these
	okRun, failRun int
	client         *http.Client // http(s) probes, made at the first one

	mu     sync.Mutex
	status Status
}

// Acquire returns the prober of (addr, t), starting it if it is new. A new target counts
// healthy until its first verdict, and its first probe runs at once.
func (r *Registry) Acquire(addr string, t *Template) *Target {
	key := targetKey{addr, t.Fingerprint()}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tg, ok := r.targets[key]; ok {
		tg.refs++
		return tg
	}
	ctx, cancel := context.WithCancel(context.Background())
	tg := &Target{addr: addr, tmpl: t, key: key, refs: 1, cancel: cancel, done: make(chan struct{})}
	tg.healthy.Store(true)
	tg.status.Healthy = true
	r.targets[key] = tg
	go r.run(ctx, tg)
	return tg
}

// Release drops one reference; the last one stops the prober (cancelling a probe in flight)
// and forgets the target.
func (r *Registry) Release(tg *Target) {
	r.mu.Lock()
	tg.refs--
	last := tg.refs == 0
	if last {
		delete(r.targets, tg.key)
	}
	r.mu.Unlock()
	if last {
		tg.cancel()
	}
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
	all := make([]*Target, 0, len(r.targets))
	for k, tg := range r.targets {
		all = append(all, tg)
		delete(r.targets, k)
	}
	r.mu.Unlock()
	for _, tg := range all {
		tg.cancel()
		<-tg.done
	}
}

func (r *Registry) run(ctx context.Context, tg *Target) {
	defer close(tg.done)
	iv := tg.tmpl.Interval
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
		res, took, err := tg.probeOnce(ctx)
		<-r.sem
		if ctx.Err() != nil {
			return
		}
		r.record(tg, res, err, took)
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

func (tg *Target) probeOnce(ctx context.Context) (Result, time.Duration, error) {
	timeout := tg.tmpl.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	res, err := tg.probe(pctx)
	return res, time.Since(start), err
}

// record applies one probe result to the rise/fall state machine.
func (r *Registry) record(tg *Target, res Result, err error, took time.Duration) {
	ok := res == ResultOK
	now := time.Now()
	if ok {
		tg.okRun, tg.failRun = tg.okRun+1, 0
		old := tg.rtt.Load()
		if old == 0 {
			tg.rtt.Store(int64(took))
		} else {
			tg.rtt.Store((3*old + int64(took)) / 4) // EWMA, as CoreDNS's proxy smooths RTT
		}
	} else {
		tg.failRun, tg.okRun = tg.failRun+1, 0
	}
	wasReady := tg.ready.Load()
	was := tg.healthy.Load()
	verdict := was
	switch {
	case !wasReady:
		verdict = ok // one probe decides the first verdict
	case was && tg.failRun >= tg.tmpl.fall():
		verdict = false
	case !was && tg.okRun >= tg.tmpl.rise():
		verdict = true
	}
	tg.healthy.Store(verdict)
	tg.ready.Store(true)

	errText := ""
	if err != nil {
		errText = err.Error()
	}
	tg.mu.Lock()
	s := &tg.status
	s.Healthy, s.Ready, s.LastResult, s.LastError, s.LastProbe = verdict, true, res, errText, now
	s.RTT = time.Duration(tg.rtt.Load())
	s.Probes++
	if !ok {
		s.Failures++
	}
	changed := !wasReady || verdict != was
	if changed {
		s.LastChange = now
	}
	tg.mu.Unlock()

	if r.opts.OnProbe != nil {
		r.opts.OnProbe(tg, res, took)
	}
	if changed && r.opts.OnChange != nil {
		r.opts.OnChange(Change{Target: tg, Healthy: verdict, First: !wasReady, Result: res, Err: errText, Time: now})
	}
}

// Healthy reports the current verdict; true until the first one. Lock-free.
func (tg *Target) Healthy() bool { return tg.healthy.Load() }

// Ready reports whether the target has a first verdict.
func (tg *Target) Ready() bool { return tg.ready.Load() }

// RTT is the smoothed round-trip time of successful probes; 0 when unknown.
func (tg *Target) RTT() time.Duration { return time.Duration(tg.rtt.Load()) }

// Addr is the probed address (an IP address or a host name).
func (tg *Target) Addr() string { return tg.addr }

// Template is the health-check template the target was created with.
func (tg *Target) Template() *Template { return tg.tmpl }

// Status returns a copy of the target's state.
func (tg *Target) Status() Status {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.status
}
