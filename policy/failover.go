package policy

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// FallbackKind is what a route answers when none of its pools is available (`fallback`).
type FallbackKind uint8

// The fallbacks: open answers the route's first pool as if every enabled address were
// healthy (fail-open, the default); nodata answers NOERROR with no records; servfail
// answers SERVFAIL (fail closed); pool answers the domain's FallbackPool, its health ignored.
const (
	FallbackOpen FallbackKind = iota
	FallbackNoData
	FallbackServFail
	FallbackPoolKind
)

var fallbackNames = [...]string{"open", "nodata", "servfail", "pool"}

// String returns the spelling of the kind in metrics and events.
func (k FallbackKind) String() string { return fallbackNames[k] }

// ParseFallback parses `fallback`: open, nodata, servfail, or (anything else) a pool name.
func ParseFallback(s string) FallbackKind {
	switch s {
	case "", "open":
		return FallbackOpen
	case "nodata":
		return FallbackNoData
	case "servfail":
		return FallbackServFail
	}
	return FallbackPoolKind
}

// NeedOf is how many up addresses `min_available P%` asks of a pool with enabled addresses:
// the share rounded up (50% of 3 is 2), and at least one.
func NeedOf(percent, enabled int) int {
	return max((percent*enabled+99)/100, 1)
}

// Enabled reports whether the address counts toward a pool's share: not disabled in the
// configuration and not drained by an operator (mode down).
func (a *Address) Enabled() bool { return !a.Disabled && a.Mode.Get() != ModeDown }

// Hold is a route held on a pool after a failover (failback manual or DURATION).
type Hold struct {
	Pool  string
	Since time.Time
}

// HoldCell holds a route's hold; it outlives snapshots (the state store owns it) so a hold
// survives reloads and, persisted, restarts.
type HoldCell struct{ v atomic.Pointer[Hold] }

// Get returns the hold, or nil when the route is not held.
func (c *HoldCell) Get() *Hold {
	if c == nil {
		return nil
	}
	return c.v.Load()
}

// Pool returns the pool name the route is held on, or "".
func (c *HoldCell) Pool() string {
	if h := c.Get(); h != nil {
		return h.Pool
	}
	return ""
}

// Set stores a hold, or clears it with nil.
func (c *HoldCell) Set(h *Hold) { c.v.Store(h) }

// RampCell records when an address of a slow_start pool last became up (unix nanoseconds).
// The health-change path writes it; the query path only loads it.
type RampCell struct {
	since atomic.Int64
	up    atomic.Bool
}

// NewRampCell returns a cell whose ramp starts at now (a new address ramps up too).
func NewRampCell(now time.Time) *RampCell {
	c := &RampCell{}
	c.since.Store(now.UnixNano())
	c.up.Store(true)
	return c
}

// Observe records the address's state at now: a change from down to up starts its ramp. It
// reports whether the ramp restarted.
func (c *RampCell) Observe(up bool, now time.Time) bool {
	if c.up.Swap(up) || !up {
		return false
	}
	c.since.Store(now.UnixNano())
	return true
}

// Since is when the ramp started.
func (c *RampCell) Since() time.Time { return time.Unix(0, c.since.Load()) }

// rampMin is the share of its weight an address gets at the start of its ramp (Envoy's
// slow start starts at 10% too): small, but enough that the address is probed by traffic.
const rampMin = 0.1

// RampFactor is the share (rampMin..1) of its weight the address gets at now.
func (p *Pool) RampFactor(a *Address, now int64) float64 {
	if p.SlowStart <= 0 || a.Ramp == nil {
		return 1
	}
	f := float64(now-a.Ramp.since.Load()) / float64(p.SlowStart)
	return min(max(f, rampMin), 1)
}

// chooseRamped is choose for a slow_start pool: each draw is proportional to the weight
// times the address's ramp factor.
func (p *Pool) chooseRamped(cand, buf []*Address, n int) []*Address {
	now := time.Now().UnixNano()
	for i := range n {
		rest := cand[i:]
		lo := 0
		if p.LB == LBPriority {
			lo = rest[0].Priority
			for _, a := range rest[1:] {
				lo = min(lo, a.Priority)
			}
		}
		total := 0.0
		for _, a := range rest {
			if p.LB != LBPriority || a.Priority == lo {
				total += float64(a.Weight) * p.RampFactor(a, now)
			}
		}
		x, j := randFloat()*total, 0
		for k, a := range rest {
			if p.LB == LBPriority && a.Priority != lo {
				continue
			}
			j = k
			if x -= float64(a.Weight) * p.RampFactor(a, now); x < 0 {
				break
			}
		}
		cand[i], cand[i+j] = cand[i+j], cand[i]
		buf = append(buf, cand[i])
	}
	return buf
}

// Hashed client networks: /24 for IPv4, /56 for IPv6, or the ECS source prefix when it is
// shorter.
const (
	hashBits4 = 24
	hashBits6 = 56
)

// HashPrefix is the client network `lb hashed` hashes (and the ECS scope of its answer); ok
// is false when the client's location is unknown.
func HashPrefix(c *Client) (netip.Prefix, bool) {
	if c == nil || !c.Known || !c.Addr.IsValid() {
		return netip.Prefix{}, false
	}
	bits := hashBits6
	if c.Addr.Is4() {
		bits = hashBits4
	}
	p, err := c.Addr.Prefix(min(bits, c.Bits))
	return p, err == nil
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// netKey hashes a client network (FNV-1a over its bytes and length).
func netKey(p netip.Prefix) uint64 {
	b := p.Addr().As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	h := (uint64(fnvOffset) ^ hi) * fnvPrime
	h = (h ^ lo) * fnvPrime
	return mix64((h ^ uint64(p.Bits())) * fnvPrime)
}

// hrw is the rendezvous score of address a for the client network key: FNV-1a of the
// address continued from the key, then a 64-bit finalizer (splitmix64) so that scores of one
// network over several addresses are independent.
func hrw(key uint64, a *Address) uint64 {
	h := key
	switch {
	case a.IP.Is4():
		b := a.IP.As4()
		h = (h ^ uint64(b[0])<<24 ^ uint64(b[1])<<16 ^ uint64(b[2])<<8 ^ uint64(b[3])) * fnvPrime
	case a.IP.IsValid():
		b := a.IP.As16()
		for _, x := range b {
			h = (h ^ uint64(x)) * fnvPrime
		}
	default:
		for i := 0; i < len(a.Target); i++ {
			h = (h ^ uint64(a.Target[i])) * fnvPrime
		}
	}
	return mix64(h)
}

// mix64 is splitmix64's finalizer: every input bit affects every output bit.
func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// chooseHashed is choose for `lb hashed`: the n candidates of highest rendezvous score for
// the client network, weighted (score -w/ln(u), u uniform in (0,1) from the hash) when the
// weights differ. A network thus keeps its address while that address is up, and when one
// fails only its networks move.
func (p *Pool) chooseHashed(c *Client, cand, buf []*Address, n int) []*Address {
	var key uint64
	if pfx, ok := HashPrefix(c); ok {
		key = netKey(pfx)
	}
	weighted := false
	for _, a := range cand[1:] {
		weighted = weighted || a.Weight != cand[0].Weight
	}
	score := func(a *Address) float64 {
		h := hrw(key, a)
		if !weighted {
			return float64(h >> 11) // order-preserving, exact in a float64
		}
		u := (float64(h>>11) + 0.5) / (1 << 53)
		return -float64(a.Weight) / math.Log(u)
	}
	// Partial selection sort: n is small (answers, default 1).
	var scratch [32]float64
	scores := scratch[:0]
	for _, a := range cand {
		scores = append(scores, score(a))
	}
	for i := range n {
		best := i
		for j := i + 1; j < len(cand); j++ {
			if scores[j] > scores[best] {
				best = j
			}
		}
		cand[i], cand[best] = cand[best], cand[i]
		scores[i], scores[best] = scores[best], scores[i]
		buf = append(buf, cand[i])
	}
	return buf
}

// held applies the route's hold to first, the pool it would answer from: a route held on a
// later pool that can answer stays on it. It returns the pool to answer from and whether
// the hold decided it.
func (r *Route) held(first *Pool, fam Family) (*Pool, bool) {
	name := r.Hold.Pool()
	if name == "" || first == nil || first.Name == name {
		return first, false
	}
	seenFirst := false
	for _, p := range r.Pools {
		switch {
		case p == first:
			seenFirst = true
		case p.Name == name:
			// Only a hold on a pool after the natural choice matters (the route failed over
			// to it and must not fail back yet); one on an earlier pool the route left
			// because it failed is stale.
			if seenFirst && p.AvailableFor(fam) {
				return p, true
			}
			return first, false
		}
	}
	return first, false
}

// Natural is the pool a failover route picks now by availability alone (A queries, as the
// status page judges routes), or nil when none is available; index is its place in the route.
func (r *Route) Natural() (p *Pool, index int) {
	for i, p := range r.Pools {
		if p.AvailableFor(IPv4) {
			return p, i
		}
	}
	return nil, -1
}

// Index returns the place of the pool called name in the route, or -1.
func (r *Route) Index(name string) int {
	for i, p := range r.Pools {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// Decide picks route r's answer for client c as Pick does, then applies the domain's
// fallback when no pool of the route is available, and marks degraded answers.
func (d *Domain) Decide(r *Route, c *Client, fam Family, buf []*Address) Result {
	return d.decide(r, c, fam, buf, true)
}

// Explain is Decide as a pure read, for explaining a decision: the route's failover and
// episode detectors stay as they are (Switched and Episode say what this answer would note).
func (d *Domain) Explain(r *Route, c *Client, fam Family, buf []*Address) Result {
	return d.decide(r, c, fam, buf, false)
}

func (d *Domain) decide(r *Route, c *Client, fam Family, buf []*Address, note bool) Result {
	res := r.pick(c, fam, buf, note)
	if res.FailOpen && d.Fallback != FallbackOpen {
		res.FailOpen, res.InFallback, res.Fallback = false, true, d.Fallback
		res.Pool, res.Addrs, res.HashBits = nil, buf[:0], 0
		if d.Fallback == FallbackPoolKind && d.FallbackPool != nil {
			res.Pool = d.FallbackPool
			res.Addrs = d.FallbackPool.pickFor(c, fam, buf[:0], true)
			res.HashBits = hashBitsOf(d.FallbackPool, c)
		}
	}
	res.Degraded = res.FailOpen || res.InFallback || res.Held ||
		r.Select == SelectFailover && len(r.Pools) > 0 && res.Pool != r.Pools[0]
	if note {
		res.Episode = r.episode(res.FailOpen || res.InFallback)
	} else if on := res.FailOpen || res.InFallback; r.fallen.Load() != on {
		res.Episode = -1
		if on {
			res.Episode = 1
		}
	}
	return res
}

// episode notes whether the route's answer fails open or falls back, and reports the
// transitions: +1 when an episode begins, -1 when it ends, so each is logged once. The
// common case is one atomic load.
func (r *Route) episode(on bool) int8 {
	if r.fallen.Load() == on {
		return 0
	}
	if !r.fallen.CompareAndSwap(!on, on) {
		return 0 // another query saw the same transition first
	}
	if on {
		return 1
	}
	return -1
}

// InEpisode reports whether the route's last answer failed open or fell back.
func (r *Route) InEpisode() bool { return r.fallen.Load() }

// TTLOf is the TTL of an answer: the degraded TTL when the domain has one and res is degraded.
func (d *Domain) TTLOf(res *Result) uint32 {
	if d.HasTTLDegraded && res.Degraded {
		return d.TTLDegraded
	}
	return d.TTL
}

// hashBitsOf is the ECS scope an answer of pool p for client c depends on through lb hashed.
func hashBitsOf(p *Pool, c *Client) int {
	if p == nil || p.LB != LBHashed {
		return 0
	}
	if pfx, ok := HashPrefix(c); ok {
		return pfx.Bits()
	}
	return 0
}

func randFloat() float64 { return rand.Float64() }
