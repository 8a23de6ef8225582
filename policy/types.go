// Package policy decides which pools and addresses answer a managed domain for one client.
//
// It is plain Go: the plugin compiles the Corefile into a Snapshot of these types once per
// (re)load, and every query only reads it. Run-time state (health, manual overrides) is
// reached through atomics, so the query path takes no locks.
package policy

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Health is what the query path needs to know about an address's health checks.
// healthcheck.Target implements it.
type Health interface {
	Healthy() bool
	RTT() time.Duration
}

// Mode is a manual override of an address's health.
type Mode int32

// The override modes: auto follows the health checks, up forces the address in,
// down takes it out (maintenance).
const (
	ModeAuto Mode = iota
	ModeUp
	ModeDown
)

// String returns the API spelling of the mode.
func (m Mode) String() string {
	switch m {
	case ModeUp:
		return "up"
	case ModeDown:
		return "down"
	}
	return "auto"
}

// ParseMode parses the API spelling of a mode.
func ParseMode(s string) (Mode, bool) {
	switch s {
	case "auto":
		return ModeAuto, true
	case "up":
		return ModeUp, true
	case "down":
		return ModeDown, true
	}
	return ModeAuto, false
}

// ModeCell holds an address's override; it outlives snapshots so overrides survive reloads.
type ModeCell struct{ v atomic.Int32 }

// Get returns the current mode.
func (c *ModeCell) Get() Mode { return Mode(c.v.Load()) }

// Set stores a mode.
func (c *ModeCell) Set(m Mode) { c.v.Store(int32(m)) }

// PinCell holds the pool a domain is pinned to ("" = not pinned).
type PinCell struct{ v atomic.Pointer[string] }

// Get returns the pinned pool name, or "".
func (c *PinCell) Get() string {
	if p := c.v.Load(); p != nil {
		return *p
	}
	return ""
}

// Set pins the domain to pool, or unpins it with "".
func (c *PinCell) Set(pool string) {
	if pool == "" {
		c.v.Store(nil)
		return
	}
	c.v.Store(&pool)
}

// Family restricts addresses by the query type.
type Family uint8

// Families: A queries want IPv4, AAAA queries IPv6.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// LB is how addresses are picked inside a pool.
type LB uint8

// Address selection modes (`lb`).
const (
	LBWeighted LB = iota
	LBAll
	LBPriority
	LBRandom
	LBFastest
	LBHashed
)

var lbNames = [...]string{"weighted", "all", "priority", "random", "fastest", "hashed"}

// String returns the Corefile spelling.
func (l LB) String() string { return lbNames[l] }

// ParseLB parses the Corefile spelling.
func ParseLB(s string) (LB, bool) {
	for i, n := range lbNames {
		if n == s {
			return LB(i), true
		}
	}
	return 0, false
}

// SelectMode is how a route picks among its pools.
type SelectMode uint8

// Pool selection modes (`select`).
const (
	SelectFailover SelectMode = iota
	SelectWeighted
	SelectNearest
	SelectFastest
	SelectAll
)

var selectNames = [...]string{"failover", "weighted", "nearest", "fastest", "all"}

// String returns the Corefile spelling.
func (s SelectMode) String() string { return selectNames[s] }

// ParseSelect parses the Corefile spelling.
func ParseSelect(s string) (SelectMode, bool) {
	for i, n := range selectNames {
		if n == s {
			return SelectMode(i), true
		}
	}
	return 0, false
}

// Address is one server of a pool.
type Address struct {
	Text     string     // as written in the Corefile (canonical form), for the API and metrics
	IP       netip.Addr // valid in address pools
	Raw      net.IP     // IP in the form DNS records take, made once at compile time
	Target   string     // FQDN in CNAME pools
	Weight   int
	Priority int
	Disabled bool
	Health   Health     // nil when the pool has no health check: healthy
	Mode     *ModeCell  // never nil
	Ramp     *RampCell  // slow_start: when the address last became up; nil without slow_start
	Check    string     // check_address: where probes go instead (canonical text), or ""
	Brake    *BrakeCell // the block's mass-failure brake; nil without one
}

// Up reports whether the address may be answered: enabled, and healthy or forced up.
func (a *Address) Up() bool {
	if a.Disabled {
		return false
	}
	switch a.Mode.Get() {
	case ModeUp:
		return true
	case ModeDown:
		return false
	}
	if held, holding := a.Brake.Holding(); holding {
		return held // the verdict from before a mass failure (brake.go)
	}
	return a.Health == nil || a.Health.Healthy()
}

// RTT is the smoothed probe round-trip time, 0 when unknown.
func (a *Address) RTT() time.Duration {
	if a.Health == nil {
		return 0
	}
	return a.Health.RTT()
}

// Family of the address (0 for CNAME targets).
func (a *Address) Family() Family {
	switch {
	case !a.IP.IsValid():
		return 0
	case a.IP.Is4():
		return IPv4
	}
	return IPv6
}

// Pool is a set of equivalent servers.
type Pool struct {
	Name         string
	Addrs        []*Address
	LB           LB
	Answers      int // 0: all for LBAll, else 1
	MinAvailable int
	Weight       int
	HasLocation  bool
	Lat, Lon     float64       // degrees
	CNAME        bool          // addresses are domain names
	HealthCheck  string        // template name, "" for none
	MinPercent   int           // min_available P%: replaces MinAvailable when > 0
	SlowStart    time.Duration // weighted lb: a recovered address ramps up over this long

	HealthChecks []string // every template name in order (HealthCheck is the first)
	Require      string   // how many of them must pass: "all", "any" or N

	rotate atomic.Uint32 // LBAll rotation
}

// UpCount counts the addresses that may be answered.
func (p *Pool) UpCount() int {
	n := 0
	for _, a := range p.Addrs {
		if a.Up() {
			n++
		}
	}
	return n
}

// Available reports whether at least MinAvailable addresses are up.
func (p *Pool) Available() bool {
	if p.MinPercent > 0 {
		return p.AvailableFor(0)
	}
	need := p.MinAvailable
	if need < 1 {
		need = 1
	}
	n := 0
	for _, a := range p.Addrs {
		if a.Up() {
			if n++; n >= need {
				return true
			}
		}
	}
	return false
}

// AvailableFor reports whether the pool can answer a query for family fam: it is available,
// and if it holds addresses of that family, at least one of them is up. A dual-stack pool whose
// IPv4 servers are all down thus hands A queries to the next pool instead of answering them
// empty, while a pool with no IPv6 at all still answers AAAA with NODATA (RFC 2308).
func (p *Pool) AvailableFor(fam Family) bool {
	need := max(p.MinAvailable, 1)
	up, enabled, famUp, famHeld := 0, 0, p.CNAME, p.CNAME // names answer every family
	for _, a := range p.Addrs {
		isFam := a.Family() == fam
		famHeld = famHeld || isFam
		if a.Up() {
			up++
			famUp = famUp || isFam
		}
		if p.MinPercent > 0 && a.Enabled() {
			enabled++
		}
	}
	if p.MinPercent > 0 {
		need = NeedOf(p.MinPercent, enabled)
	}
	return up >= need && (famUp || !famHeld)
}

// RTT is the mean smoothed RTT of the pool's up addresses that have one; 0 when unknown.
func (p *Pool) RTT() time.Duration {
	var sum time.Duration
	n := 0
	for _, a := range p.Addrs {
		if !a.Up() {
			continue
		}
		if r := a.RTT(); r > 0 {
			sum += r
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

// Selector says which clients a route is for. A client matches if any term matches.
type Selector struct {
	Default    bool
	Nets       []netip.Prefix
	ASNs       []uint32
	Regions    []string // ISO 3166-2, upper case: "US-CA"
	Countries  []string // ISO 3166-1 alpha-2, upper case
	Continents []string // two-letter continent codes, upper case
	Text       string   // as written
}

// Route maps a selector to an ordered list of pools.
type Route struct {
	Selector Selector
	Pools    []*Pool
	Select   SelectMode
	Hold     *HoldCell // failback manual or DURATION: the pool the route is held on; nil for auto

	last   [2]atomic.Pointer[Pool] // the pool answered last per family (IPv4, IPv6), to count failovers
	fallen atomic.Bool             // the last answer was fail-open or fallback: an episode is on
}

// Domain is a managed name.
type Domain struct {
	Name   string // lower-case FQDN
	Routes []*Route
	TTL    uint32
	Pin    *PinCell // never nil

	TTLDegraded    uint32        // the TTL of degraded answers, when HasTTLDegraded
	HasTTLDegraded bool          // `ttl SECONDS DEGRADED`
	Fallback       FallbackKind  // when no pool of a route is available
	FallbackPool   *Pool         // FallbackPoolKind: the pool answered then, its health ignored
	FailbackManual bool          // failback manual
	FailbackAfter  time.Duration // failback DURATION (0 with auto and manual)
	Services       *Services     // https and srv (service.go); nil for neither

	nets                      []netip.Prefix // every net: term, shortest first, for ECS scope
	needNet, needASN, needGeo bool           // which client facts the routes use
	hasDefault                bool
}

// Client is what is known about who asks: the ECS subnet or source address and its geo facts.
type Client struct {
	Addr      netip.Addr // ECS address (masked) or source address
	Bits      int        // ECS source prefix length, or the full length for a source address
	Known     bool       // false for ECS source prefix 0: location unknown
	Continent string
	Country   string
	Region    string
	ASN       uint32
	HasLoc    bool
	Lat, Lon  float64
	GeoBits   int // prefix length of the geo database network that matched (0 if none)
	ASNBits   int // prefix length of the ASN database network that matched (0 if none)
	GeoFound  bool
	ASNFound  bool
}
