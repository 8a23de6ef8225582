package gtm

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// SRV answers (RFC 2782) of a domain's `srv _SERVICE._PROTO PORT [PRIORITY]`: at
// _SERVICE._PROTO.NAME, one record per address the client's A and AAAA queries get, from
// the same decision, weighted by the addresses' weights. Their targets are names gtm answers
// itself, ADDRESS-LABEL.NAME (192-0-2-10.NAME, 2001-db8-0-0-0-0-0-1.NAME), each with its one
// address, so a resolver that follows a target reaches the address the decision chose; a
// pool of names gives its names as targets.

// serveService answers the names `srv` adds under a managed domain: the SRV RRset, the
// empty non-terminal _PROTO.NAME, and the target names. ok is false for any other name
// (ServeDNS then answers it as before). A managed domain of that name (not a wildcard's)
// is never one of these.
//
//go:noinline
func (g *GTM) serveService(ctx context.Context, state *request.Request, cs *control.Snapshot, zone string, subnet *geo.ClientSubnet) (rc int, ok bool) {
	qname := state.Name()
	if cs.Domain(qname) != nil {
		return 0, false
	}
	off1, end := dns.NextLabel(qname, 0)
	if end || !policy.InZone(qname[off1:], zone) {
		return 0, false
	}
	label, rest := qname[:off1-1], qname[off1:]
	if label[0] == '_' {
		if off2, end := dns.NextLabel(qname, off1); !end && qname[off1] == '_' && policy.InZone(qname[off2:], zone) {
			if pd := cs.Lookup(qname[off2:], zone); pd != nil {
				if svcs := pd.Services.SRVFor(qname[:off2-1]); len(svcs) > 0 {
					return g.answerSRV(ctx, state, cs, zone, pd, qname[off2:], svcs, subnet), true
				}
			}
		}
		if pd := cs.Lookup(rest, zone); pd != nil && pd.Services.HasProto(label) {
			return g.serviceNoData(state, cs, zone, subnet), true // _PROTO.NAME: an empty non-terminal
		}
		return 0, false
	}
	ip, isAddr := parseAddrLabel(label)
	if !isAddr {
		return 0, false
	}
	pd := cs.Lookup(rest, zone)
	if pd == nil || pd.Services == nil || len(pd.Services.SRV) == 0 {
		return 0, false
	}
	a := servedAddress(cs, pd, ip)
	if a == nil {
		return 0, false
	}
	m := new(dns.Msg)
	m.SetReply(state.Req)
	m.Authoritative = true
	switch qt := state.QType(); {
	case qt == dns.TypeA && ip.Is4(), qt == dns.TypeAAAA && ip.Is6():
		m.Answer = appendAddrs(nil, qname, qt, pd.TTL, []*policy.Address{a})
	default:
		m.Ns = []dns.RR{cs.NegSOA(zone)}
	}
	g.reply(state, m, subnet, 0) // the same address for every client
	return dns.RcodeSuccess, true
}

// serviceNoData answers a name `srv` makes exist that has no records of any type.
func (g *GTM) serviceNoData(state *request.Request, cs *control.Snapshot, zone string, subnet *geo.ClientSubnet) int {
	m := new(dns.Msg)
	m.SetReply(state.Req)
	m.Authoritative = true
	m.Ns = []dns.RR{cs.NegSOA(zone)}
	g.reply(state, m, subnet, 0)
	return dns.RcodeSuccess
}

// answerSRV answers at _SERVICE._PROTO.NAME (parent is NAME) for the client of the query.
func (g *GTM) answerSRV(ctx context.Context, state *request.Request, cs *control.Snapshot, zone string, d *policy.Domain, parent string, svcs []policy.SRV, subnet *geo.ClientSubnet) int {
	if internalLookup(ctx, state.W) && clientRouted(d) {
		return dns.RcodeRefused // another plugin's internal lookup: as ServeDNS refuses A
	}
	if state.QType() != dns.TypeSRV {
		return g.serviceNoData(state, cs, zone, subnet)
	}
	m := new(dns.Msg)
	m.SetReply(state.Req)
	m.Authoritative = true
	var cl policy.Client
	var src netip.Addr
	if subnet == nil {
		src = remoteAddr(state.W)
	}
	mapped := control.ClientOf(&cl, subnet, src)
	if cl.Known && cl.Addr.IsValid() {
		g.locate(d, &cl)
	}
	var buf [8]*policy.Address
	v4buf, v6buf := splitBuf(buf[:0])
	b := decideBoth(cs, d, &cl, v4buf, v6buf)
	v4, v6 := &b.v4, &b.v6
	scope := max(v4.scope, v6.scope)
	switch {
	case b.servfail:
		m.Rcode, m.Authoritative = dns.RcodeServerFailure, false // as answer's
	case v4.res.Pool != nil && v4.res.Pool.CNAME:
		m.Answer = srvRecords(m.Answer, state.Name(), parent, svcs, v4.ttl, v4.res.Addrs, nil)
	default:
		m.Answer = srvRecords(m.Answer, state.Name(), parent, svcs, bothTTL(v4, v6), v4.res.Addrs, v6.res.Addrs)
	}
	if len(m.Answer) == 0 {
		scope = b.emptyScope(cs, d, &cl)
		if m.Rcode != dns.RcodeServerFailure {
			g.deny(ctx, state.W, cs, m, zone, b.negTTL)
		}
	}
	if scope > 0 {
		scope += mapped
	}
	g.reply(state, m, subnet, scope)
	return dns.RcodeSuccess
}

// srvRecords appends one SRV record per setting and address: the target is the address's
// label under parent (a pool of names: the name itself), the weight the address's weight
// (scaled into 1..65535 when some weight is larger).
func srvRecords(answer []dns.RR, name, parent string, svcs []policy.SRV, ttl uint32, v4, v6 []*policy.Address) []dns.RR {
	most := 0
	for _, as := range [2][]*policy.Address{v4, v6} {
		for _, a := range as {
			most = max(most, a.Weight)
		}
	}
	for _, s := range svcs {
		for _, as := range [2][]*policy.Address{v4, v6} {
			for _, a := range as {
				target := a.Target
				if target == "" {
					target = addrLabel(a.IP) + "." + parent
				}
				answer = append(answer, &dns.SRV{Hdr: hdr(name, dns.TypeSRV, ttl), Priority: s.Priority,
					Weight: srvWeight(a.Weight, most), Port: s.Port, Target: target})
			}
		}
	}
	return answer
}

// srvWeight is an address's weight as an SRV weight: as it is when every weight of the
// answer fits 16 bits, else scaled by the largest (and at least 1: weight 0 means "rarely").
func srvWeight(w, most int) uint16 {
	if most <= 65535 {
		return uint16(w)
	}
	return uint16(max(1, w*65535/most))
}

// servedAddress returns the address ip of a pool d may answer from (its routes', its
// fallback pool, the pool it is pinned to), or nil: only those have target names.
func servedAddress(cs *control.Snapshot, d *policy.Domain, ip netip.Addr) *policy.Address {
	find := func(p *policy.Pool) *policy.Address {
		if p == nil || p.CNAME {
			return nil
		}
		for _, a := range p.Addrs {
			if a.IP == ip {
				return a
			}
		}
		return nil
	}
	for _, r := range d.Routes {
		for _, p := range r.Pools {
			if a := find(p); a != nil {
				return a
			}
		}
	}
	if a := find(d.FallbackPool); a != nil {
		return a
	}
	if pin := d.Pin.Get(); pin != "" {
		return find(cs.Pool(pin))
	}
	return nil
}

// addrLabel is the DNS label of an address's target name: an IPv4 address with dashes for
// dots (192-0-2-10), an IPv6 address as its eight groups in hex joined by dashes
// (2001-db8-0-0-0-0-0-1): letters, digits and inner hyphens only, a valid host name label.
func addrLabel(ip netip.Addr) string {
	if ip.Is4() {
		return strings.ReplaceAll(ip.String(), ".", "-")
	}
	b := ip.As16()
	var sb strings.Builder
	sb.Grow(39)
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
	}
	return sb.String()
}

// parseAddrLabel reads addrLabel's form back (lower case, as the query path's names are);
// it accepts exactly the labels addrLabel makes, so each address has one target name.
func parseAddrLabel(s string) (netip.Addr, bool) {
	var groups [8]uint32
	n, digits, dec := 0, 0, true
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '-' {
			if digits == 0 || n == 8 {
				return netip.Addr{}, false
			}
			n, digits = n+1, 0
			continue
		}
		c := s[i]
		var v uint32
		switch {
		case c >= '0' && c <= '9':
			v = uint32(c - '0')
		case c >= 'a' && c <= 'f':
			v, dec = uint32(c-'a'+10), false
		default:
			return netip.Addr{}, false
		}
		if n == 8 || digits > 0 && groups[n] == 0 || digits == 4 {
			return netip.Addr{}, false // a leading zero, or more than four digits
		}
		groups[n] = groups[n]<<4 | v
		digits++
	}
	switch {
	case n == 4 && dec:
		var b [4]byte
		for i := range 4 {
			// The groups were read as hex digits: read them again as decimal.
			v, ok := hexAsDecimal(groups[i])
			if !ok || v > 255 {
				return netip.Addr{}, false
			}
			b[i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	case n == 8:
		var b [16]byte
		for i, g := range groups {
			b[2*i], b[2*i+1] = byte(g>>8), byte(g)
		}
		ip := netip.AddrFrom16(b)
		if ip.Is4In6() {
			return netip.Addr{}, false // pools hold mapped addresses as IPv4
		}
		return ip, true
	}
	return netip.Addr{}, false
}

// hexAsDecimal reads the nibbles of v (each 0..9) as decimal digits.
func hexAsDecimal(v uint32) (uint32, bool) {
	out, mul := uint32(0), uint32(1)
	for v > 0 {
		d := v & 0xf
		if d > 9 {
			return 0, false
		}
		out += d * mul
		mul *= 10
		v >>= 4
	}
	return out, true
}
