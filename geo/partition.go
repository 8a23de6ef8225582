package geo

import (
	"math/bits"
	"net/netip"
	"slices"
	"sort"
)

// u128 is an address as a number: an IPv4 address in lo's low 32 bits, an IPv6 address in
// both halves, big-endian.
type u128 struct{ hi, lo uint64 }

func keyOf(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var x u128
	for i := range 8 {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[8+i])
	}
	return x
}

func (x u128) addr(is6 bool) netip.Addr {
	if !is6 {
		v := uint32(x.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := range 8 {
		b[i] = byte(x.hi >> (56 - 8*i))
		b[8+i] = byte(x.lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

func (x u128) less(y u128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

func (x u128) inc() u128 {
	if x.lo++; x.lo == 0 {
		x.hi++
	}
	return x
}

func (x u128) dec() u128 {
	if x.lo == 0 {
		x.hi--
	}
	x.lo--
	return x
}

// top is the highest address of a family.
func top(is6 bool) u128 {
	if is6 {
		return u128{^uint64(0), ^uint64(0)}
	}
	return u128{lo: 1<<32 - 1}
}

// common counts the leading bits two addresses of one family share.
func common(x, y u128, is6 bool) int {
	if !is6 {
		return bits.LeadingZeros32(uint32(x.lo ^ y.lo))
	}
	if d := x.hi ^ y.hi; d != 0 {
		return bits.LeadingZeros64(d)
	}
	return 64 + bits.LeadingZeros64(x.lo^y.lo)
}

// prefixRange is the first and last address of p (masked).
func prefixRange(p netip.Prefix) (first, last u128) {
	p = p.Masked()
	is6 := p.Addr().Is6()
	first = keyOf(p.Addr())
	width := 32
	if is6 {
		width = 128
	}
	host := width - p.Bits() // bits below the prefix
	last = first
	switch {
	case host >= 128:
		last = top(true)
	case host >= 64:
		last.lo = ^uint64(0)
		last.hi |= 1<<(host-64) - 1
	case host > 0:
		last.lo |= 1<<host - 1
	}
	return first, last
}

// Ranges cuts one address family's space into consecutive ranges, each with a value: range i
// runs from its start to the next range's start (the last one to the family's end). The
// first range starts at the family's first address. IPv4 starts are kept in 4 bytes.
type Ranges struct {
	is6 bool
	s4  []uint32
	s6  []u128
	val []int32
}

// Len is the number of ranges.
func (r *Ranges) Len() int { return len(r.val) }

// IPv6 reports whether the ranges cut the IPv6 space (else IPv4).
func (r *Ranges) IPv6() bool { return r.is6 }

// Value is the value of range i.
func (r *Ranges) Value(i int) int32 { return r.val[i] }

func (r *Ranges) start(i int) u128 {
	if r.is6 {
		return r.s6[i]
	}
	return u128{lo: uint64(r.s4[i])}
}

// Range is the first and last address of range i and its value.
func (r *Ranges) Range(i int) (first, last netip.Addr, val int32) {
	_, l := r.bounds(i)
	return r.start(i).addr(r.is6), l.addr(r.is6), r.val[i]
}

func (r *Ranges) bounds(i int) (first, last u128) {
	first, last = r.start(i), top(r.is6)
	if i+1 < len(r.val) {
		last = r.start(i + 1).dec()
	}
	return first, last
}

// find returns the index of the range holding x (binary search; no allocation).
func (r *Ranges) find(x u128) int {
	lo, hi := 0, len(r.val) // the answer is in [lo, hi)
	if !r.is6 {
		v := uint32(x.lo)
		for hi-lo > 1 {
			m := int(uint(lo+hi) >> 1)
			if r.s4[m] <= v {
				lo = m
			} else {
				hi = m
			}
		}
		return lo
	}
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if !x.less(r.s6[m]) {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// add appends a range starting at x with value v, or extends the last one when it has the
// same value. Starts must come in increasing order, the first at the family's first address.
func (r *Ranges) add(x u128, v int32) {
	if n := len(r.val); n > 0 && r.val[n-1] == v {
		return
	}
	if r.is6 {
		r.s6 = append(r.s6, x)
	} else {
		r.s4 = append(r.s4, uint32(x.lo))
	}
	r.val = append(r.val, v)
}

// clip drops the spare capacity appends left behind: partitions live as long as their
// snapshot.
func (r *Ranges) clip() {
	r.s4, r.s6, r.val = slices.Clip(r.s4), slices.Clip(r.s6), slices.Clip(r.val)
}

// Uniform is the whole family's space as one range of value v.
func Uniform(is6 bool, v int32) Ranges {
	r := Ranges{is6: is6}
	r.add(u128{}, v)
	return r
}

// NetLayer cuts a family's space at the boundaries of nets (the prefixes of other families
// are ignored): each range's value is the index in nets of the longest prefix holding it,
// -1 where none does. Within a range, every address is held by the same prefixes of nets.
func NetLayer(nets []netip.Prefix, is6 bool) Ranges {
	cuts := []u128{{}}
	index := map[netip.Prefix]int32{}
	var lens []int // the prefix lengths nets have, longest first
	for i, n := range nets {
		if n.Addr().Is6() != is6 {
			continue
		}
		n = n.Masked()
		if _, dup := index[n]; !dup {
			index[n] = int32(i)
			if !slices.Contains(lens, n.Bits()) {
				lens = append(lens, n.Bits())
			}
		}
		first, last := prefixRange(n)
		cuts = append(cuts, first)
		if last != top(is6) {
			cuts = append(cuts, last.inc())
		}
	}
	slices.SortFunc(lens, func(a, b int) int { return b - a })
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].less(cuts[j]) })
	r := Ranges{is6: is6}
	for k, x := range cuts {
		if k > 0 && x == cuts[k-1] {
			continue
		}
		best := int32(-1)
		a := x.addr(is6)
		for _, l := range lens {
			p, _ := a.Prefix(l)
			if i, ok := index[p]; ok {
				best = i
				break
			}
		}
		r.add(x, best)
	}
	r.clip()
	return r
}

// Sweep cuts one family's space at every boundary of layers (each covering the whole
// family) and asks eval for the value of each piece, given the address the piece starts at
// and each layer's value there (vals is reused between calls). Neighbouring pieces of equal
// value merge, so the result is the coarsest cut that eval's answer allows. stop is asked
// now and then; when it says so, Sweep gives up and reports false.
func Sweep(is6 bool, layers []*Ranges, stop func() bool, eval func(start netip.Addr, vals []int32) int32) (Ranges, bool) {
	out := Ranges{is6: is6}
	idx := make([]int, len(layers))
	vals := make([]int32, len(layers))
	pos := u128{}
	for n := 0; ; n++ {
		if n&4095 == 4095 && stop != nil && stop() {
			return Ranges{}, false
		}
		next, more := u128{}, false
		for l, r := range layers {
			for idx[l]+1 < len(r.val) && !pos.less(r.start(idx[l]+1)) {
				idx[l]++
			}
			vals[l] = r.val[idx[l]]
			if idx[l]+1 < len(r.val) {
				if s := r.start(idx[l] + 1); !more || s.less(next) {
					next, more = s, true
				}
			}
		}
		out.add(pos, eval(pos.addr(is6), vals))
		if !more {
			break
		}
		pos = next
	}
	out.clip()
	return out, true
}

// Partition is the coarsest cut of the IPv4 and the IPv6 space into ranges over which some
// decision is the same; Sweep makes its two halves.
type Partition struct {
	V4, V6 Ranges
}

// Lookup returns the value of the range holding a (an IPv4 address unmapped) and the
// shortest prefix of a that lies inside that range: the widest network around a over which
// the value holds. It allocates nothing.
func (p *Partition) Lookup(a netip.Addr) (val int32, bits int) {
	r, is6 := &p.V4, a.Is6()
	if is6 {
		r = &p.V6
	}
	if len(r.val) == 0 {
		return -1, a.BitLen()
	}
	x := keyOf(a)
	i := r.find(x)
	first, last := r.bounds(i)
	// The prefix of a with b bits stays at or above first iff it does not hold first-1,
	// that is iff b exceeds the bits a and first-1 share; likewise for last+1.
	if first != (u128{}) {
		bits = common(x, first.dec(), is6) + 1
	}
	if last != top(is6) {
		bits = max(bits, common(x, last.inc(), is6)+1)
	}
	return r.val[i], bits
}

// Bytes is the memory the partition's ranges hold.
func (p *Partition) Bytes() int {
	n := 0
	for _, r := range []*Ranges{&p.V4, &p.V6} {
		n += cap(r.s4)*4 + cap(r.s6)*16 + cap(r.val)*4
	}
	return n
}
