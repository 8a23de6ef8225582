package control

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// The ECS scope of an answer is the widest prefix around the client over which the answer
// cannot change (gdnsd's merged networks), not merely the database network that held the
// client. With each snapshot, every client-routed domain gets a partition of the address
// space into the coarsest ranges that its route matching sends to the same route, made from
// the databases' facts (geo.Facts, one walk per database file) and the boundaries of its
// net: terms. Domains with the same routes share one partition. Until it is built (in the
// background, for large databases) answers carry the database network's scope, as before.

// Partition values besides a route's index in its domain.
const (
	scopeNoRoute int32 = -1 // no route matches: geo-fenced, the answer is empty
	scopeKeep    int32 = -2 // the database network's scope: select nearest, IPv4 aliases
)

// scoper is a block's partition builder.
type scoper struct {
	scopeMu    sync.Mutex              // one build at a time; guards scopeCache
	scopeGen   atomic.Uint64           // bumped per swap (and at stop): an older build gives up
	scopeCache map[string]*domainScope // by route signature, for this block's databases
}

// scopeTable says which partition answers each client-routed domain of a snapshot.
type scopeTable map[*policy.Domain]*domainScope

// domainScope is one partition and what its lookups need to know about it.
type domainScope struct {
	part geo.Partition
	// narrowV4: the whole IPv4 space is one answer, but IPv6 clients get others. An IPv4
	// client then gets /1, not /0: an IPv4-mapped ECS subnet's scope is 96 plus the IPv4
	// one, and /96 must not become /0 (every IPv6 client).
	narrowV4 bool
}

// Scope is the ECS scope of d's answer for cl (located): from d's partition when it is
// built and the client's range is not one that keeps the database network's scope, else
// d.Scope. It runs on the query path: one map read, a binary search, no allocation.
func (cs *compiled) Scope(d *policy.Domain, cl *policy.Client) int {
	if t := cs.scopes.Load(); t != nil && cl.Known && cl.Addr.IsValid() {
		if ds := (*t)[d]; ds != nil {
			if v, bits := ds.part.Lookup(cl.Addr); v != scopeKeep {
				if bits == 0 && ds.narrowV4 {
					bits = 1
				}
				return bits
			}
		}
	}
	return d.Scope(cl)
}

// scopeBudget bounds the memory of a block's partitions (each is 1-6 MB with a full
// country database): past it, further route sets keep the database network's scope.
const scopeBudget = 256 << 20

// cheapTreeNodes and cheapDomains bound what is built before the swap: small databases
// (the demo's, tests') and few domains take well under a millisecond.
const (
	cheapTreeNodes = 20000
	cheapDomains   = 200
)

// buildScopes starts the partitions of a snapshot about to be swapped in: at once when
// that is cheap, else in the background, where a later swap (or stop) makes it give up.
func (b *Block) buildScopes(cs *compiled) {
	gen := b.scopeGen.Add(1)
	geoDB, asnDB := b.cfg.Geo, b.cfg.ASN
	cheap := (geoDB == nil || geoDB.TreeNodes() < cheapTreeNodes) && (asnDB == nil || asnDB.TreeNodes() < cheapTreeNodes)
	if n := countClientRouted(cs); n == 0 {
		return
	} else if cheap && n <= cheapDomains {
		b.runScopes(cs, gen)
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.runScopes(cs, gen)
	}()
}

func countClientRouted(cs *compiled) int {
	n := 0
	for _, d := range cs.Domains {
		if d.DependsOnClient() {
			n++
		}
	}
	return n
}

// runScopes builds the partitions of cs that the cache does not hold, and publishes them.
func (b *Block) runScopes(cs *compiled, gen uint64) {
	b.scopeMu.Lock()
	defer b.scopeMu.Unlock()
	stale := func() bool { return b.scopeGen.Load() != gen }
	if stale() {
		return
	}
	began := time.Now()
	groups := map[string][]*policy.Domain{}
	var order []string
	for _, d := range cs.Domains {
		if !d.DependsOnClient() {
			continue
		}
		sig := routeSignature(d)
		if groups[sig] == nil {
			order = append(order, sig)
		}
		groups[sig] = append(groups[sig], d)
	}
	var geoF, asnF *geo.Facts
	facts := func(db *geo.DB, f **geo.Facts) bool {
		if *f != nil {
			return true
		}
		var err error
		if *f, err = db.Facts(); err != nil {
			log.Errorf("ECS scope: %v; answers keep the database network's scope", err)
			return false
		}
		return true
	}
	cache := make(map[string]*domainScope, len(order))
	table := make(scopeTable, len(groups))
	built, held, over := 0, 0, 0
	for _, sig := range order {
		ds := b.scopeCache[sig]
		if ds == nil && held >= scopeBudget {
			over += len(groups[sig])
			continue
		}
		if ds == nil {
			d := groups[sig][0]
			var gf, af *geo.Facts
			if b.cfg.Geo != nil && d.NeedsGeo() && usesGeoTerms(d) {
				if !facts(b.cfg.Geo, &geoF) {
					continue
				}
				gf = geoF
			}
			if b.cfg.ASN != nil && d.NeedsASN() {
				if !facts(b.cfg.ASN, &asnF) {
					continue
				}
				af = asnF
			}
			if ds = partitionOf(d, gf, af, stale); ds == nil {
				return // a newer snapshot is being built
			}
			built++
		}
		held += ds.part.Bytes()
		cache[sig] = ds
		if b.scopeCache == nil {
			b.scopeCache = map[string]*domainScope{}
		}
		b.scopeCache[sig] = ds // kept for a newer build, should this one be overtaken
		for _, d := range groups[sig] {
			table[d] = ds
		}
	}
	b.scopeCache = cache // what the snapshot in force uses, nothing older
	cs.scopes.Store(&table)
	if over > 0 {
		log.Warningf("ECS scope: partitions hold %d MB, the most they may; %d domains keep the database network's scope", held>>20, over)
	}
	if built > 0 {
		log.Debugf("ECS scope: %d partitions built for %d domains in %s", built, len(table), time.Since(began).Round(time.Millisecond))
	}
}

// usesGeoTerms reports whether some route of d matches by continent, country or region.
func usesGeoTerms(d *policy.Domain) bool {
	for _, r := range d.Routes {
		s := &r.Selector
		if len(s.Regions)+len(s.Countries)+len(s.Continents) > 0 {
			return true
		}
	}
	return false
}

// routeSignature is what d's partition depends on: each route's terms, in order, and
// whether it selects by distance. Domains with equal signatures share a partition.
func routeSignature(d *policy.Domain) string {
	var b strings.Builder
	for _, r := range d.Routes {
		for _, t := range r.Selector.Terms() {
			b.WriteString(t)
			b.WriteByte(',')
		}
		if r.Select == policy.SelectNearest {
			b.WriteString("nearest")
		}
		b.WriteByte(';')
	}
	return b.String()
}

// partitionOf builds d's partition over the facts of its databases (nil: not used),
// evaluating d.Match, the query path's own matching, once per distinct combination of facts
// and net: terms. It returns nil when stop says so.
func partitionOf(d *policy.Domain, geoF, asnF *geo.Facts, stop func() bool) *domainScope {
	var nets []netip.Prefix
	for _, r := range d.Routes {
		nets = append(nets, r.Selector.Nets...)
	}
	value := func(r *policy.Route) int32 {
		if r == nil {
			return scopeNoRoute
		}
		if r.Select == policy.SelectNearest {
			return scopeKeep // the pool follows the location: the database network decides
		}
		for i, x := range d.Routes {
			if x == r {
				return int32(i)
			}
		}
		return scopeNoRoute
	}
	half := func(is6 bool) (geo.Ranges, bool) {
		none := geo.Uniform(is6, 0)
		gl, al := &none, &none
		if geoF != nil {
			gl = pick(geoF, is6)
		}
		if asnF != nil {
			al = pick(asnF, is6)
		}
		nl := geo.NetLayer(nets, is6)
		aliases := geo.Uniform(is6, -1)
		switch {
		case is6 && (geoF != nil && geoF.Aliased || asnF != nil && asnF.Aliased):
			// Lookups there find the IPv4 data, which the IPv6 facts do not show.
			aliases = geo.NetLayer(geo.Aliased(), true)
		case is6:
			// IPv4-mapped clients are routed as the IPv4 clients they are: no IPv6 range
			// may hold them (an IPv6 /0 would).
			aliases = geo.NetLayer([]netip.Prefix{mappedNet}, true)
		}
		memo := map[[4]int32]int32{}
		return geo.Sweep(is6, []*geo.Ranges{gl, al, &nl, &aliases}, stop, func(start netip.Addr, vals []int32) int32 {
			if vals[3] >= 0 {
				return scopeKeep // looked up as the IPv4 address inside: not this range's facts
			}
			k := [4]int32{vals[0], vals[1], vals[2]}
			if v, ok := memo[k]; ok {
				return v
			}
			c := policy.Client{Addr: start, Bits: start.BitLen(), Known: true}
			if geoF != nil {
				f := geoF.Fact(vals[0])
				c.GeoFound, c.Continent, c.Country, c.Region = f.Found, f.Continent, f.Country, f.Region
			}
			if asnF != nil {
				f := asnF.Fact(vals[1])
				c.ASNFound, c.ASN = f.Found, f.ASN
			}
			v := value(d.Match(&c))
			memo[k] = v
			return v
		})
	}
	v4, ok := half(false)
	if !ok {
		return nil
	}
	v6, ok := half(true)
	if !ok {
		return nil
	}
	ds := &domainScope{part: geo.Partition{V4: v4, V6: v6}}
	if v4.Len() == 1 {
		for i := range v6.Len() {
			if v := v6.Value(i); v != v4.Value(0) && v != scopeKeep {
				ds.narrowV4 = true
				break
			}
		}
	}
	return ds
}

var mappedNet = netip.MustParsePrefix("::ffff:0:0/96")

func pick(f *geo.Facts, is6 bool) *geo.Ranges {
	if is6 {
		return &f.V6
	}
	return &f.V4
}

// ScopesReady reports whether the snapshot's ECS scope partitions are built (before, its
// answers carry the database network's scope; a snapshot without client-routed domains
// never builds any).
func (cs *compiled) ScopesReady() bool { return cs.scopes.Load() != nil }
