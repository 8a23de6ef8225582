// Package gtm is the CoreDNS plugin of coredns-gtm: it answers managed domains with the
// addresses of the best healthy servers for each client.
package gtm

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// GTM is the plugin handler.
type GTM struct {
	Next plugin.Handler
	Fall fall.F

	ecs     bool
	geo     *geo.DB
	asn     *geo.DB
	ctl     *control.Block // what the block runs: its snapshot, store, probers (control/)
	block   *block         // the Corefile's block (dnssec keys)
	nextSOA sync.Map       // zone -> *cachedSOA: the next plugin's SOA, for negative answers
}

// Name implements plugin.Handler.
func (g *GTM) Name() string { return "gtm" }

// ServeDNS implements plugin.Handler.
func (g *GTM) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	cs := g.ctl.Snapshot()
	if cs == nil || len(r.Question) != 1 {
		return g.next(ctx, w, r)
	}
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	zone := cs.Zone(qname)
	if zone == "" {
		return g.next(ctx, w, r)
	}
	// With no plugin after gtm there is nothing to fall through to: gtm answers itself.
	fall := g.Next != nil && g.Fall.Through(qname)
	qtype := state.QType()
	if r.Opcode != dns.OpcodeQuery || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		// gtm transfers nothing and is nobody's secondary: as the file plugin does without
		// transfer, refuse zone transfers and NOTIFY, unless fallthrough hands them to a
		// plugin that may hold the zone (transfer, secondary). The server only lets through
		// the opcodes some plugin asked for (dynupdate: UPDATE); those are not ours.
		switch {
		case fall:
			return g.next(ctx, w, r)
		case r.Opcode == dns.OpcodeQuery || r.Opcode == dns.OpcodeNotify:
			return dns.RcodeRefused, nil
		}
		return dns.RcodeNotImplemented, nil
	}
	// Every answer from our zones echoes a valid ECS option (scope 0 unless the answer depended
	// on the client), and an invalid one is FORMERR for any name in the zones, also one that
	// falls through to the next plugin.
	subnet, bad := g.clientSubnet(r)
	if bad {
		return g.formErr(&state, r)
	}
	if cs.HasSRV() {
		if rc, ok := g.serveService(ctx, &state, cs, zone, subnet); ok {
			return rc, nil // srv.go: an SRV name or a target name of one
		}
	}
	d := cs.Lookup(qname, zone)
	if d != nil && clientRouted(d) && internalLookup(ctx, w) {
		// A plugin resolving a target through the server (plugin/pkg/upstream: file chasing
		// a CNAME to a managed name, after gtm or in another server block). Whatever it
		// builds from our answer goes out without our ECS scope, and a cache in its block
		// stores it under its own name for every client. Refuse: file then answers the
		// CNAME alone, and the resolver asks for the target itself, with ECS, and gets a
		// scoped answer.
		return dns.RcodeRefused, nil
	}
	apex := qname == zone && (qtype == dns.TypeSOA || qtype == dns.TypeNS)
	if fall && (apex || d != nil && !control.AnswersType(d, qtype)) {
		// The next plugin holds the zone's own data (SOA, NS, MX, TXT, CAA at the apex and at
		// managed names): gtm answers only what it manages. A managed name exists: the
		// next plugin's NXDOMAIN for it becomes NODATA (resolvers deny every type of a
		// name from one NXDOMAIN, RFC 8020; browsers ask HTTPS for every name).
		return g.next(ctx, existsWriterFor(w, cs.NegSOA(zone)), r)
	}
	if addrs, host := cs.NSHost(qname); d == nil && host && !(fall && len(addrs) == 0) {
		return g.nsHost(&state, r, qtype, addrs, subnet, cs.NegSOA(zone), cs.TTL)
	}
	if d == nil && fall {
		if cs.HasBelow(qname) {
			// An empty non-terminal above a managed domain: the next plugin may hold records
			// here, but it must not deny the name, or resolvers that trust NXDOMAIN for the
			// whole subtree (RFC 8020) lose the managed domains below it.
			w = existsWriterFor(w, cs.NegSOA(zone))
		}
		return g.next(ctx, w, r)
	}

	if d == nil || apex { // a managed apex still has its SOA and NS
		return g.zoneAnswer(&state, cs, zone, apex, subnet)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true

	var cl policy.Client
	var src netip.Addr
	if subnet == nil {
		src = remoteAddr(w)
	}
	mapped := control.ClientOf(&cl, subnet, src)
	var buf [8]*policy.Address
	n, scope, target, negTTL := g.answer(cs, m, d, qname, qtype, &cl, buf[:0])
	// A CNAME to another managed name of ours is followed, as the file plugin follows
	// in-zone targets (RFC 1034 section 4.3.2): the resolver gets the whole chain, and the
	// answer's scope covers every decision in it. A bound (and a name seen before) stops loops.
	for hop := 1; target != "" && qtype != dns.TypeCNAME && hop <= control.MaxChase; hop++ {
		tz := cs.Zone(target)
		if tz == "" || inAnswer(m, target) {
			break // not ours (the resolver follows it), or a loop
		}
		td := cs.Lookup(target, tz)
		if td == nil {
			if g.Next != nil && g.Fall.Through(target) {
				break // the next plugin's name: the resolver asks for it
			}
			if !cs.HasBelow(target) {
				m.Rcode = dns.RcodeNameError // the rcode of the chain's last name (RFC 6604)
			}
			zone, n = tz, 0
			break
		}
		if clientRouted(td) && internalLookup(ctx, w) {
			break // as above: not through another plugin's lookup
		}
		zone = tz
		var s int
		n, s, target, negTTL = g.answer(cs, m, td, target, qtype, &cl, buf[:0])
		scope = max(scope, s)
	}
	if n == 0 && m.Rcode != dns.RcodeServerFailure { // SERVFAIL: `fallback servfail`
		// NODATA (or NXDOMAIN) for the last name of the chain, with the zone's SOA: the next
		// plugin's when it holds the zone's data (fallthrough), else gtm's own.
		g.deny(ctx, w, cs, m, zone, negTTL)
	}
	if scope > 0 {
		scope += mapped
	}
	g.reply(&state, m, subnet, scope)
	return dns.RcodeSuccess, nil
}

// clientSubnet is the query's ECS option when ECS is on (nil without one); bad when the
// option is invalid (RFC 7871 section 7.1.1: FORMERR).
func (g *GTM) clientSubnet(r *dns.Msg) (subnet *geo.ClientSubnet, bad bool) {
	if !g.ecs {
		return nil, false
	}
	o := r.IsEdns0()
	if o == nil {
		return nil, false
	}
	for _, opt := range o.Option {
		e, ok := opt.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		s, err := geo.ParseECS(e)
		if err == nil {
			err = geo.CheckWireLength(o, e)
		}
		if err != nil {
			return nil, true
		}
		return &s, false
	}
	return nil, false
}

// nsHost answers an in-zone name server of `ns` (its A and AAAA; NODATA for other types and
// for the synthesized ns1.ZONE that has no address).
func (g *GTM) nsHost(state *request.Request, r *dns.Msg, qtype uint16, addrs []netip.Addr, subnet *geo.ClientSubnet, soa dns.RR, ttl uint32) (int, error) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	name := state.Name()
	for _, a := range addrs {
		switch {
		case a.Is4() && qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: a.AsSlice()})
		case a.Is6() && qtype == dns.TypeAAAA:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: a.AsSlice()})
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa}
	}
	g.reply(state, m, subnet, 0)
	return dns.RcodeSuccess, nil
}

// negativeSOA is the SOA of a negative answer in zone: with fallthrough for the zone, the
// next plugin's (it holds the zone's data: its serial and negative TTL are the zone's),
// asked at most once a minute; else, or when it has none, gtm's own.
func (g *GTM) negativeSOA(ctx context.Context, w dns.ResponseWriter, cs *control.Snapshot, zone string) dns.RR {
	own := cs.NegSOA(zone)
	if g.Next == nil || !g.Fall.Through(zone) {
		return own
	}
	now := time.Now().UnixNano()
	if v, ok := g.nextSOA.Load(zone); ok && v.(*cachedSOA).until > now {
		if rr := v.(*cachedSOA).rr; rr != nil {
			return rr
		}
		return own
	}
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	rec := nonwriter.New(w)
	var rr dns.RR
	if _, err := g.next(ctx, rec, q); err == nil && rec.Msg != nil {
		for _, a := range rec.Msg.Answer {
			if soa, ok := a.(*dns.SOA); ok && soa.Hdr.Name == zone {
				rr = negativeTTL(soa) // RFC 2308: min(TTL, MINIMUM)
			}
		}
	}
	g.nextSOA.Store(zone, &cachedSOA{rr: rr, until: now + int64(time.Minute)})
	if rr == nil {
		return own
	}
	return rr
}

// cachedSOA is the next plugin's SOA of a zone, and until when it is used without asking.
type cachedSOA struct {
	rr    dns.RR
	until int64
}

// clientRouted reports whether d's answer now depends on who asks.
func clientRouted(d *policy.Domain) bool { return d.DependsOnClient() && d.Pin.Get() == "" }

// inAnswer reports whether name already owns a record of the answer (the chain loops).
func inAnswer(m *dns.Msg, name string) bool {
	for _, rr := range m.Answer {
		if rr.Header().Name == name {
			return true
		}
	}
	return false
}

// answer appends managed domain d's records for name and qtype to m. It returns how many it
// added, the ECS scope they depend on (0 for none and for a pinned domain; also for no
// records, when that emptiness depends on the client), the target when they are a CNAME,
// and for none the TTL that caps the negative answer's (0: the SOA's alone).
func (g *GTM) answer(cs *control.Snapshot, m *dns.Msg, d *policy.Domain, name string, qtype uint16, cl *policy.Client, buf []*policy.Address) (n, scope int, target string, negTTL uint32) {
	if cl.Known && cl.Addr.IsValid() {
		g.locate(d, cl)
	}
	if qtype == dns.TypeHTTPS && d.Services != nil && d.Services.HTTPS != nil {
		return g.answerHTTPS(cs, m, d, name, cl, buf) // https.go
	}
	fam := policy.IPv4
	if qtype == dns.TypeAAAA {
		fam = policy.IPv6
	}
	res, route, pinned := cs.Decide(d, cl, fam, buf)
	cs.Account(d, route, &res)
	if res.InFallback && res.Fallback == policy.FallbackServFail {
		// Failing closed is no authoritative statement about the name: resolvers treat it
		// as the server's failure and ask elsewhere or serve stale.
		m.Rcode, m.Authoritative = dns.RcodeServerFailure, false
	}
	ttl := d.TTLOf(&res)

	before := len(m.Answer)
	switch {
	case len(res.Addrs) == 0:
	case res.Pool.CNAME:
		target = res.Addrs[0].Target
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, ttl), Target: target})
	case qtype == dns.TypeA || qtype == dns.TypeAAAA:
		m.Answer = appendAddrs(m.Answer, name, qtype, ttl, res.Addrs)
	}
	n = len(m.Answer) - before
	if n > 0 && !pinned {
		scope = cs.Scope(d, cl)
	}
	if n > 0 {
		scope = max(scope, res.HashBits) // lb hashed: the hashed network, when narrower
		return n, scope, target, 0
	}
	return 0, emptyScope(cs, d, cl, qtype, pinned, m.Rcode), "", emptyTTL(d, &res, ttl)
}

// next hands the query to the next plugin. With none (gtm last in its server block), a name
// gtm does not answer is REFUSED, as the file plugin does: an authoritative server has no
// answer for it, and SERVFAIL would make resolvers retry elsewhere and mark the server bad.
func (g *GTM) next(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if g.Next == nil {
		return dns.RcodeRefused, nil
	}
	if ctx.Value(handedOnKey{}) == nil {
		ctx = context.WithValue(ctx, handedOnKey{}, true)
	}
	w, answered := g.dnssecNext(w, r)
	if answered {
		return dns.RcodeSuccess, nil
	}
	return plugin.NextOrFailure(g.Name(), g.Next, ctx, w, r)
}

// handedOnKey marks the context of a query gtm handed to the next plugin. A query that comes
// back through gtm with it is a plugin's internal lookup (plugin/pkg/upstream passes its
// context on), not a client's.
type handedOnKey struct{}

// locate fills in the client's geo facts, looking up only what the domain's routes use.
func (g *GTM) locate(d *policy.Domain, cl *policy.Client) { control.Locate(g.geo, g.asn, d, cl) }

// reply adds our OPT record (echoing ECS with scope when the query had one) and writes m.
func (g *GTM) reply(state *request.Request, m *dns.Msg, subnet *geo.ClientSubnet, scope int) {
	m = g.signed(state, m)
	if state.Req.IsEdns0() != nil {
		// Our own OPT, never the request's: SizeAndDo normalises it (size, DO bit) and keeps
		// its options, so only the ECS answer we mean is echoed.
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		if subnet != nil {
			o.Option = []dns.EDNS0{subnet.Echo(scope)}
		}
		m.Extra = append(m.Extra, o)
		state.SizeAndDo(m)
	}
	write(state, m)
}

// formErr answers a query whose ECS option is invalid (RFC 7871 section 7.1.1).
func (g *GTM) formErr(state *request.Request, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeFormatError)
	g.reply(state, m, nil, 0)
	return dns.RcodeSuccess, nil
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// remoteAddr is the query's source address without the string round trip of request.IP.
func remoteAddr(w dns.ResponseWriter) netip.Addr {
	var ip net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}
