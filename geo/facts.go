package geo

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
)

// Fact is what a database says about an address, as far as routes look at it: a City or
// Country database's continent, country and region, an ASN database's AS number.
type Fact struct {
	Found                      bool
	Continent, Country, Region string
	ASN                        uint32
}

// Facts is a database's content cut into ranges of equal facts: the networks of its tree in
// order, the gaps between them as "not found", equal neighbours merged. A partition of what
// routes decide is made from these without a lookup per network.
type Facts struct {
	V4, V6 Ranges // values index List
	List   []Fact // List[0] is the fact of an address the database does not know
	// Aliased: an IPv6 tree, whose lookups in the Aliased networks find IPv4 data that the
	// IPv6 ranges do not show. (An IPv4 tree knows no IPv6 address at all.)
	Aliased bool
}

// Fact returns the fact a range's value stands for.
func (f *Facts) Fact(v int32) Fact { return f.List[v] }

// factsCache keeps the facts of each database file, so a reload that reopens an unchanged
// file, and every domain and block using it, share one walk of the tree.
var factsCache = struct {
	sync.Mutex
	m map[string]*factsEntry // by path
}{m: map[string]*factsEntry{}}

type factsEntry struct {
	id    uint64 // the file's content (contentSum)
	facts *Facts
}

// Facts walks the database's networks once and returns them as ranges of equal facts; later
// calls, also on another DB opened from the same unchanged file, return the same Facts.
// IPv4 aliases in an IPv6 tree (::ffff:0:0/96, 2001::/32, 2002::/16) are not walked: in the
// IPv6 ranges they are gaps, and a caller must not read them as misses (see Aliased).
func (d *DB) Facts() (*Facts, error) {
	id := d.sum
	factsCache.Lock()
	defer factsCache.Unlock()
	if e := factsCache.m[d.path]; e != nil && e.id == id {
		return e.facts, nil
	}
	f, err := d.walk()
	if err != nil {
		return nil, err
	}
	factsCache.m[d.path] = &factsEntry{id: id, facts: f}
	return f, nil
}

// Aliased are the IPv6 networks where an IPv6 tree answers with its IPv4 data: the
// IPv4-compatible ::/96, IPv4-mapped ::ffff:0:0/96, Teredo 2001::/32 and 6to4 2002::/16.
func Aliased() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("::/96"),
		netip.MustParsePrefix("::ffff:0:0/96"),
		netip.MustParsePrefix("2001::/32"),
		netip.MustParsePrefix("2002::/16"),
	}
}

func (d *DB) walk() (*Facts, error) {
	f := &Facts{List: []Fact{{}}}
	ids := map[Fact]int32{{}: 0}
	byOffset := map[uintptr]int32{}
	lastOff, lastID := ^uintptr(0), int32(0) // neighbours often share a record
	fact := func(off uintptr, decode func(any) error) (int32, error) {
		if off == lastOff {
			return lastID, nil
		}
		if id, ok := byOffset[off]; ok {
			lastOff, lastID = off, id
			return id, nil
		}
		var rec record
		if err := decode(&rec); err != nil {
			return 0, err
		}
		var ft Fact
		if d.kind == KindASN {
			ft = Fact{Found: rec.ASN != 0, ASN: rec.ASN}
		} else {
			l := rec.location()
			ft = Fact{Found: l.Found, Continent: l.Continent, Country: l.Country, Region: l.Region}
		}
		id, ok := ids[ft]
		if !ok {
			id = int32(len(f.List))
			f.List = append(f.List, ft)
			ids[ft] = id
		}
		byOffset[off] = id
		lastOff, lastID = off, id
		return id, nil
	}
	var err error
	if f.V4, err = d.walkFamily(netip.MustParsePrefix("0.0.0.0/0"), fact); err != nil {
		return nil, err
	}
	if d.r.Metadata.IPVersion != 6 {
		// An IPv4-only database knows nothing of IPv6 (lookup says so too).
		f.V6 = Uniform(true, 0)
		return f, nil
	}
	if f.V6, err = d.walkFamily(netip.MustParsePrefix("::/0"), fact); err != nil {
		return nil, err
	}
	f.Aliased = true
	return f, nil
}

func (d *DB) walkFamily(within netip.Prefix, fact func(uintptr, func(any) error) (int32, error)) (Ranges, error) {
	is6 := within.Addr().Is6()
	r := Ranges{is6: is6}
	next, done := u128{}, false
	for res := range d.r.NetworksWithin(within) {
		if err := res.Err(); err != nil {
			return Ranges{}, fmt.Errorf("database %s: walking its networks: %v", d.path, err)
		}
		p := res.Prefix()
		if p.Addr().Is4() == is6 {
			if is6 {
				continue // the IPv4 subtree, walked as IPv4
			}
			// A record above ::/96 holds every IPv4 address (lookup measures it as /0).
			p = within
		}
		id, err := fact(res.Offset(), res.Decode)
		if err != nil {
			return Ranges{}, fmt.Errorf("database %s: record of %s: %v", d.path, p, err)
		}
		first, last := prefixRange(p)
		if done || first.less(next) {
			continue // cannot happen in a well-formed tree: networks come in order
		}
		if next.less(first) {
			r.add(next, 0)
		}
		r.add(first, id)
		if last == top(is6) {
			done = true
		} else {
			next = last.inc()
		}
	}
	if !done {
		r.add(next, 0) // the gap after the last network
	}
	r.clip()
	return r, nil
}

// factsSeed keys contentSum for the life of the process.
var factsSeed = maphash.MakeSeed()

// contentSum identifies a database file's content: a file rewritten with the same metadata
// (generators with a fixed build time) must not reuse the facts of the old one.
func contentSum(b []byte) uint64 { return maphash.Bytes(factsSeed, b) }

// TreeNodes is the size of the database's search tree: what a walk of its networks costs.
func (d *DB) TreeNodes() uint { return d.r.Metadata.NodeCount }
