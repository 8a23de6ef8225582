package policy

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gtm-dns/coredns-gtm/geo"
)

// Specificity ranks of selector terms: when several routes match, the higher rank wins.
const (
	rankNone = iota
	rankDefault
	rankContinent
	rankCountry
	rankRegion
	rankASN
	rankNet
)

// Finish precomputes what the query path needs from a domain's routes. The compiler calls it
// once after filling Routes.
func (d *Domain) Finish() {
	d.nets, d.needNet, d.needASN, d.needGeo, d.hasDefault = nil, false, false, false, false
	for _, r := range d.Routes {
		s := &r.Selector
		d.hasDefault = d.hasDefault || s.Default
		d.nets = append(d.nets, s.Nets...)
		d.needNet = d.needNet || len(s.Nets) > 0
		d.needASN = d.needASN || len(s.ASNs) > 0
		d.needGeo = d.needGeo || len(s.Regions)+len(s.Countries)+len(s.Continents) > 0 || r.Select == SelectNearest
	}
	slices.SortFunc(d.nets, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
}

// HasDefault reports whether some route of the domain matches every client.
func (d *Domain) HasDefault() bool { return d.hasDefault }

// NeedsGeo reports whether answering needs the client's geo facts (continent, country,
// region or location).
func (d *Domain) NeedsGeo() bool { return d.needGeo }

// NeedsASN reports whether answering needs the client's ASN.
func (d *Domain) NeedsASN() bool { return d.needASN }

// DependsOnClient reports whether the domain's routes can answer clients differently
// (geo, ASN or net: terms, or nearest selection).
func (d *Domain) DependsOnClient() bool { return d.needGeo || d.needASN || d.needNet }

// Match finds the route for a client: the most specific kind of matching term wins, the
// longest prefix among nets, the first listed between equals. It returns nil when no route
// matches (geo-fencing).
func (d *Domain) Match(c *Client) *Route {
	var best *Route
	bestRank, bestBits := rankNone, -1
	for _, r := range d.Routes {
		rank, bits := r.Selector.match(c)
		if rank > bestRank || (rank == bestRank && rank == rankNet && bits > bestBits) {
			best, bestRank, bestBits = r, rank, bits
		}
	}
	return best
}

// MatchedBy names the kind of term by which the selector matches client c: "net", "asn",
// "region", "country", "continent" or "default"; "" when it does not match.
func (s *Selector) MatchedBy(c *Client) string {
	rank, _ := s.match(c)
	return [...]string{"", "default", "continent", "country", "region", "asn", "net"}[rank]
}

func (s *Selector) match(c *Client) (rank, bits int) {
	rank, bits = rankNone, -1
	if s.Default {
		rank = rankDefault
	}
	if !c.Known {
		return rank, bits
	}
	for _, n := range s.Nets {
		if n.Contains(c.Addr) && n.Bits() > bits {
			rank, bits = rankNet, n.Bits()
		}
	}
	if rank == rankNet {
		return rank, bits
	}
	if c.ASNFound && slices.Contains(s.ASNs, c.ASN) {
		return rankASN, bits
	}
	if !c.GeoFound {
		return rank, bits
	}
	switch {
	case c.Region != "" && slices.Contains(s.Regions, c.Region):
		rank = rankRegion
	case c.Country != "" && slices.Contains(s.Countries, c.Country):
		rank = rankCountry
	case c.Continent != "" && slices.Contains(s.Continents, c.Continent):
		rank = rankContinent
	}
	return rank, bits
}

// Scope is the ECS SCOPE PREFIX-LENGTH of an answer for this client: the shortest prefix of
// the client's address over which every fact the domain's routes look at is constant. It is
// 0 when the answer does not depend on the client at all.
func (d *Domain) Scope(c *Client) int {
	if !c.Known {
		return 0
	}
	s := 0
	if d.needGeo {
		s = max(s, factBits(c.GeoBits, c.Bits))
	}
	if d.needASN {
		s = max(s, factBits(c.ASNBits, c.Bits))
	}
	// A net: term longer than s that overlaps the client's s-prefix splits it: clients
	// inside and outside that net get different answers. The scope must then reach into
	// the net (if it holds the client) or just past the first bit where the client leaves
	// it. Nets are sorted by length, so a single pass reaches the fixed point.
	for _, n := range d.nets {
		if n.Bits() <= s || n.Addr().Is4() != c.Addr.Is4() {
			continue
		}
		if p, err := c.Addr.Prefix(s); err != nil || !p.Overlaps(n) {
			continue
		}
		if n.Contains(c.Addr) {
			s = n.Bits()
		} else {
			s = max(s, commonBits(c.Addr, n.Addr())+1)
		}
	}
	return s
}

// commonBits counts the leading bits two addresses of one family share.
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	if a.Is4() {
		n = -96 // As16 maps IPv4 into ::ffff:0:0/96
	}
	for i := range x {
		if d := x[i] ^ y[i]; d != 0 {
			return n + bits.LeadingZeros8(d)
		}
		n += 8
	}
	return n
}

// factBits is the prefix over which a database fact holds: the database network's length
// (for hits and misses alike), or the client's own when no lookup was made.
func factBits(bits, clientBits int) int {
	if bits > 0 {
		return bits
	}
	return clientBits
}

// Result is the outcome of picking for one query.
type Result struct {
	Pool     *Pool      // the (first) pool answered from; nil when no route matched
	Addrs    []*Address // the addresses to answer, in order
	FailOpen bool       // no pool of the route was available
	Switched bool       // the route answers from another pool than last time (a failover)

	Held       bool         // a failback hold kept the route on a later pool than it would pick
	InFallback bool         // no pool was available and the domain's fallback (not open) answered
	Fallback   FallbackKind // ... which one; Pool is nil for nodata and servfail
	Degraded   bool         // not the route's first choice, or fail-open/fallback: TTLOf's degraded TTL
	HashBits   int          // lb hashed: the client prefix the address depends on (an ECS scope)
	Episode    int8         // +1: this answer began a fail-open/fallback episode, -1: it ended one
}

// Pick chooses the pools and addresses of route r for client c. Addresses are filtered by
// family first (CNAME pools ignore it). buf is reused for the result to avoid allocation.
func (r *Route) Pick(c *Client, fam Family, buf []*Address) Result { return r.pick(c, fam, buf, true) }

// pick is Pick; with note false it leaves the failover detector (the pool answered last)
// as it is, and Switched says whether this answer would be a failover.
func (r *Route) pick(c *Client, fam Family, buf []*Address, note bool) Result {
	var res Result
	var first *Pool
	switch r.Select {
	case SelectAll:
		for _, p := range r.Pools {
			if !p.AvailableFor(fam) {
				continue
			}
			if first == nil {
				first = p
			} else if first.CNAME || p.CNAME {
				// One CNAME is the whole answer, and it never joins addresses; the
				// parser rejects such routes, this keeps a hand-built one valid.
				continue
			}
			buf = p.pickFor(c, fam, buf, false)
			res.HashBits = max(res.HashBits, hashBitsOf(p, c))
		}
	default:
		first = r.choose(c, fam)
		if r.Hold != nil && r.Select == SelectFailover {
			first, res.Held = r.held(first, fam)
		}
		if first != nil {
			buf = first.pickFor(c, fam, buf, false)
			res.HashBits = hashBitsOf(first, c)
		}
	}
	if first == nil && len(r.Pools) > 0 {
		first = r.Pools[0]
		res.FailOpen = true
		buf = first.pickFor(c, fam, buf, true)
		res.HashBits = hashBitsOf(first, c)
	}
	res.Pool, res.Addrs = first, buf
	// Only failover routes have a "current" pool whose change is news; weighted and
	// nearest routes move between pools by design. Load first: the common case writes
	// nothing, so the query path does not bounce a cache line between cores.
	if r.Select == SelectFailover && first != nil {
		last := &r.last[0]
		if fam == IPv6 {
			last = &r.last[1]
		}
		if old := last.Load(); old != first {
			if note {
				last.Store(first)
			}
			res.Switched = old != nil
		}
	}
	return res
}

// Current returns the pool the route would answer A queries from now for a client with no
// location (for the status page): the first available in the route's order, or the fail-open
// pool. Pools without IPv4 are judged as a whole, as AAAA queries see them.
func (r *Route) Current() (p *Pool, failOpen bool) {
	for _, p := range r.Pools {
		if p.AvailableFor(IPv4) {
			return p, false
		}
	}
	if len(r.Pools) == 0 {
		return nil, true
	}
	return r.Pools[0], true
}

func (r *Route) choose(c *Client, fam Family) *Pool {
	switch r.Select {
	case SelectWeighted:
		total := 0
		for _, p := range r.Pools {
			if p.AvailableFor(fam) {
				total += p.Weight
			}
		}
		if total <= 0 {
			return nil
		}
		n := rand.IntN(total)
		for _, p := range r.Pools {
			if p.AvailableFor(fam) {
				if n -= p.Weight; n < 0 {
					return p
				}
			}
		}
	case SelectNearest:
		if !c.HasLoc {
			break
		}
		var best *Pool
		bestD := math.Inf(1)
		for _, p := range r.Pools {
			if !p.HasLocation || !p.AvailableFor(fam) {
				continue
			}
			if d := geo.Distance(c.Lat, c.Lon, p.Lat, p.Lon); d < bestD {
				best, bestD = p, d
			}
		}
		if best != nil {
			return best
		}
	case SelectFastest:
		var best *Pool
		var bestRTT int64 = math.MaxInt64
		for _, p := range r.Pools {
			if !p.AvailableFor(fam) {
				continue
			}
			rtt := int64(p.RTT())
			if rtt == 0 {
				rtt = math.MaxInt64 - 1 // unknown sorts after every measured pool
			}
			if best == nil || rtt < bestRTT {
				best, bestRTT = p, rtt
			}
		}
		return best
	}
	for _, p := range r.Pools {
		if p.AvailableFor(fam) {
			return p
		}
	}
	return nil
}

// pickFor appends the pool's answer for family fam to buf. failOpen treats every enabled
// address as healthy (addresses forced down by an operator stay out unless that leaves none).
// c is the client lb hashed hashes the network of (nil: none).
func (p *Pool) pickFor(c *Client, fam Family, buf []*Address, failOpen bool) []*Address {
	var scratch [32]*Address
	cand := p.candidates(fam, scratch[:0], failOpen)
	if len(cand) == 0 {
		return buf
	}
	switch {
	case p.LB == LBHashed:
		return p.chooseHashed(c, cand, buf, p.answersOf(len(cand)))
	case p.SlowStart > 0 && (p.LB == LBWeighted || p.LB == LBPriority):
		return p.chooseRamped(cand, buf, p.answersOf(len(cand)))
	}
	return p.choose(cand, buf)
}

// answersOf is how many of n candidates an answer holds.
func (p *Pool) answersOf(n int) int {
	k := p.Answers
	if p.CNAME || k <= 0 {
		k = 1
	}
	return min(k, n)
}

// Candidates returns the addresses pick chooses among for family fam (failOpen as pick's):
// the set an answer's addresses are drawn from.
func (p *Pool) Candidates(fam Family, failOpen bool) []*Address {
	return p.candidates(fam, nil, failOpen)
}

// candidates appends to cand the addresses the pool may answer for family fam.
func (p *Pool) candidates(fam Family, cand []*Address, failOpen bool) []*Address {
	for _, a := range p.Addrs {
		if !p.CNAME && a.Family() != fam {
			continue
		}
		if failOpen {
			if !a.Disabled && a.Mode.Get() != ModeDown {
				cand = append(cand, a)
			}
		} else if a.Up() {
			cand = append(cand, a)
		}
	}
	if failOpen && len(cand) == 0 {
		for _, a := range p.Addrs {
			if !a.Disabled && (p.CNAME || a.Family() == fam) {
				cand = append(cand, a)
			}
		}
	}
	return cand
}

// choose appends to buf the pool's choice among the candidates cand (which it reorders).
func (p *Pool) choose(cand, buf []*Address) []*Address {
	n := p.Answers
	if p.CNAME {
		n = 1
	} else if n <= 0 {
		n = 1
		if p.LB == LBAll {
			n = len(cand)
		}
	}
	n = min(n, len(cand))

	switch p.LB {
	case LBAll:
		k := int(p.rotate.Add(1)) % len(cand)
		for i := range n {
			buf = append(buf, cand[(k+i)%len(cand)])
		}
	case LBRandom:
		for i := range n {
			j := i + rand.IntN(len(cand)-i)
			cand[i], cand[j] = cand[j], cand[i]
			buf = append(buf, cand[i])
		}
	case LBFastest:
		slices.SortStableFunc(cand, func(a, b *Address) int { return cmpRTT(a, b) })
		buf = append(buf, cand[:n]...)
	case LBPriority:
		for i := range n {
			// Among the remaining addresses of the lowest priority value, choose by weight.
			lo := cand[i].Priority
			for _, a := range cand[i+1:] {
				lo = min(lo, a.Priority)
			}
			j := weightedIndex(cand[i:], func(a *Address) bool { return a.Priority == lo })
			cand[i], cand[i+j] = cand[i+j], cand[i]
			buf = append(buf, cand[i])
		}
	default: // LBWeighted: n distinct addresses, each draw proportional to weight
		for i := range n {
			j := weightedIndex(cand[i:], nil)
			cand[i], cand[i+j] = cand[i+j], cand[i]
			buf = append(buf, cand[i])
		}
	}
	return buf
}

// weightedIndex draws an index of as proportionally to weight among those ok accepts.
func weightedIndex(as []*Address, ok func(*Address) bool) int {
	total := 0
	for _, a := range as {
		if ok == nil || ok(a) {
			total += a.Weight
		}
	}
	if total <= 0 {
		return 0
	}
	n := rand.IntN(total)
	for i, a := range as {
		if ok == nil || ok(a) {
			if n -= a.Weight; n < 0 {
				return i
			}
		}
	}
	return 0
}

func cmpRTT(a, b *Address) int {
	ra, rb := a.RTT(), b.RTT()
	switch {
	case ra == rb:
		return 0
	case ra == 0:
		return 1
	case rb == 0:
		return -1
	case ra < rb:
		return -1
	}
	return 1
}

// ParseSelector parses a route's SELECTOR: `default` or comma-separated `kind:value` terms.
func ParseSelector(text string) (Selector, error) {
	s := Selector{Text: text}
	for _, term := range strings.Split(text, ",") {
		if err := s.AddTerm(strings.TrimSpace(term)); err != nil {
			return s, err
		}
	}
	return s, nil
}

// AddTerm adds one `kind:value` term (or `default`) to s, or reports what is wrong with it.
// Terms lists the selector's terms in canonical form ("default", "net:203.0.113.0/24",
// "asn:4134", "region:US-CA", "country:DE", "continent:EU"), so equal terms compare equal
// however they were written.
func (s *Selector) Terms() []string {
	var terms []string
	if s.Default {
		terms = append(terms, "default")
	}
	for _, n := range s.Nets {
		terms = append(terms, "net:"+n.String())
	}
	for _, a := range s.ASNs {
		terms = append(terms, "asn:"+strconv.FormatUint(uint64(a), 10))
	}
	for _, r := range s.Regions {
		terms = append(terms, "region:"+r)
	}
	for _, c := range s.Countries {
		terms = append(terms, "country:"+c)
	}
	for _, c := range s.Continents {
		terms = append(terms, "continent:"+c)
	}
	return terms
}

func (s *Selector) AddTerm(term string) error {
	if term == "default" {
		s.Default = true
		return nil
	}
	kind, val, ok := strings.Cut(term, ":")
	if !ok || val == "" {
		return errTerm(term, "expected default or continent:, country:, region:, asn:, net: followed by a value")
	}
	switch kind {
	case "continent":
		v := strings.ToUpper(val)
		if !slices.Contains(continents, v) {
			return errTerm(term, "continent must be one of AF, AN, AS, EU, NA, OC, SA")
		}
		s.Continents = append(s.Continents, v)
	case "country":
		v := strings.ToUpper(val)
		if len(v) != 2 || !isAlpha(v) {
			return errTerm(term, "country must be an ISO 3166-1 alpha-2 code such as DE")
		}
		s.Countries = append(s.Countries, v)
	case "region":
		v := strings.ToUpper(val)
		cc, sub, ok := strings.Cut(v, "-")
		if !ok || len(cc) != 2 || !isAlpha(cc) || len(sub) < 1 || len(sub) > 3 || !isAlnum(sub) {
			return errTerm(term, "region must be an ISO 3166-2 code such as US-CA")
		}
		s.Regions = append(s.Regions, v)
	case "asn":
		v := strings.TrimPrefix(strings.ToUpper(val), "AS")
		n, err := parseUint32(v)
		if err != nil || n == 0 {
			return errTerm(term, "asn must be a positive AS number such as 4134")
		}
		s.ASNs = append(s.ASNs, n)
	case "net":
		p, err := netip.ParsePrefix(val)
		if err != nil {
			return errTerm(term, "net must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32")
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Mapped clients are routed as the IPv4 clients they are; so are mapped nets.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		s.Nets = append(s.Nets, p)
	default:
		return errTerm(term, "unknown selector kind "+`"`+kind+`"`+"; expected continent, country, region, asn or net")
	}
	return nil
}

var errNotNumber = errors.New("not a number")

func errTerm(term, want string) error {
	return fmt.Errorf("bad selector term %q: %s", term, want)
}

var continents = []string{"AF", "AN", "AS", "EU", "NA", "OC", "SA"}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < 'A' || s[i] > 'Z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

func parseUint32(s string) (uint32, error) {
	var n uint64
	if s == "" || len(s) > 10 {
		return 0, errNotNumber
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errNotNumber
		}
		n = n*10 + uint64(s[i]-'0')
	}
	if n > math.MaxUint32 {
		return 0, errNotNumber
	}
	return uint32(n), nil
}

// PickPool answers from one pool directly, as for a domain pinned to it by an operator. An
// unavailable pool fails open.
func PickPool(p *Pool, fam Family, buf []*Address) Result {
	return PickPoolFor(p, nil, fam, buf)
}

// PickPoolFor is PickPool for client c (lb hashed hashes its network).
func PickPoolFor(p *Pool, c *Client, fam Family, buf []*Address) Result {
	open := !p.AvailableFor(fam)
	return Result{Pool: p, Addrs: p.pickFor(c, fam, buf, open), FailOpen: open, HashBits: hashBitsOf(p, c), Degraded: open}
}
