package gtm

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/cache"
	"github.com/coredns/coredns/plugin/pkg/singleflight"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/geo"
)

// signer signs gtm's answers online with CoreDNS's dnssec code: its key files, its RRSIGs,
// its signature cache and its NSEC black lies. Each zone is signed with the keys listed for
// it (a key's owner name is its zone), so one gtm block can serve several signed zones.
type signer struct {
	zones  map[string]*zoneSigner
	server string // the server label of CoreDNS's dnssec metrics (coredns_dnssec_cache_*)
}

// zoneSigner is the signing side of one zone: its keys (sign.go), and the zone's DNSKEY
// RRset, answered at the apex.
type zoneSigner struct {
	name string
	d    *keySet
	keys []dns.RR
}

// defaultSigCache is the signature cache's capacity (RRsets), the dnssec plugin's default.
const defaultSigCache = 10000

// parseDNSSEC reads `dnssec { key file FILE... [cache_capacity N] }`, the syntax of CoreDNS's
// dnssec plugin. Keys are read here, so a missing or broken key file stops the Corefile
// with its line.
func parseDNSSEC(c *caddy.Controller, b *block, args []string, isBlock bool) error {
	if b.dnssec != nil {
		return c.Errf("dnssec: only one dnssec block per gtm block")
	}
	if len(args) != 0 {
		return c.Errf("dnssec: unexpected %q; the keys go in a block: dnssec { key file FILE... }", args[0])
	}
	if !isBlock {
		return c.Errf("dnssec: expected a block: dnssec { key file FILE... }")
	}
	line := c.Line()
	var keys []*zoneKey
	files := map[string]string{} // zone/tag -> file, to refuse one key listed twice
	capacity := defaultSigCache
	err := eachLine(c, "dnssec", func(dir string, args []string) error {
		switch dir {
		case "key":
			if len(args) < 2 || args[0] != "file" {
				return c.Errf("dnssec: key: expected key file FILE... (dnssec-keygen's K<zone>+<alg>+<tag> files)")
			}
			for _, f := range args[1:] {
				k, err := readKey(b.path(f))
				if err != nil {
					return c.Errf("dnssec: key file %s: %v", f, err)
				}
				zone := dns.CanonicalName(k.K.Hdr.Name)
				if !slices.Contains(b.zones, zone) {
					return c.Errf("dnssec: key file %s is a key for %s, a zone this gtm block does not serve (zones: %s)", f, zone, strings.Join(b.zones, " "))
				}
				id := zone + "/" + strconv.Itoa(int(k.K.KeyTag()))
				if prev, dup := files[id]; dup {
					return c.Errf("dnssec: key file %s: the key of %s is listed twice (also as %s)", f, zone, prev)
				}
				files[id] = f
				keys = append(keys, k)
			}
		case "cache_capacity":
			if len(args) != 1 {
				return c.Errf("dnssec: cache_capacity: expected a number of RRsets")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return c.Errf("dnssec: cache_capacity %q: expected a positive number of RRsets", args[0])
			}
			capacity = n
		default:
			return c.Errf("dnssec: unknown directive %q; expected key or cache_capacity", dir)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errAt(c, line, "dnssec: no key: expected key file FILE...")
	}
	b.dnssec = newSigner(keys, capacity, serverLabel(dnsserver.GetConfig(c)))
	return nil
}

// readKey reads a key pair as CoreDNS's dnssec plugin does: FILE may name the .key, the
// .private, or neither (Kexample.org.+013+12345).
func readKey(file string) (*zoneKey, error) {
	base := strings.TrimSuffix(strings.TrimSuffix(file, ".key"), ".private")
	k, err := parseKeyFiles(base+".key", base+".private")
	if err != nil {
		return nil, err
	}
	if k.K.Flags&dns.ZONE == 0 {
		return nil, fmt.Errorf("not a zone key (flags %d; expected 256 or 257, as dnssec-keygen makes)", k.K.Flags)
	}
	return k, nil
}

// newSigner groups the keys by zone. Two keys of a zone (a rollover) both sign and both
// are published; a zone with a KSK and a ZSK signs its DNSKEY RRset with the KSK and the
// rest with the ZSK, as the dnssec plugin does.
func newSigner(keys []*zoneKey, capacity int, server string) *signer {
	byZone := map[string][]*zoneKey{}
	for _, k := range keys {
		z := dns.CanonicalName(k.K.Hdr.Name)
		byZone[z] = append(byZone[z], k)
	}
	s := &signer{zones: map[string]*zoneSigner{}, server: server}
	sigs := cache.New[[]dns.RR](capacity)
	for z, ks := range byZone {
		ksk, zsk := 0, 0
		zs := &zoneSigner{name: z}
		for _, k := range ks {
			if k.K.Flags&dns.SEP != 0 {
				ksk++
			} else {
				zsk++
			}
			rr := dns.Copy(k.K)
			rr.Header().Name = z
			zs.keys = append(zs.keys, rr)
		}
		zs.d = &keySet{zone: z, keys: ks, split: ksk > 0 && zsk > 0, cache: sigs, inflight: new(singleflight.Group)}
		s.zones[z] = zs
	}
	return s
}

// serverLabel is what metrics.WithServer reports for the server block: its first listener.
func serverLabel(cfg *dnsserver.Config) string {
	host := ""
	if len(cfg.ListenHosts) > 0 {
		host = cfg.ListenHosts[0]
	}
	return cfg.Transport + "://" + net.JoinHostPort(host, cfg.Port)
}

// zone is the signer of the closest enclosing signed zone of name, nil for none.
func (s *signer) zone(name string) *zoneSigner {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if zs, ok := s.zones[name[off:]]; ok {
			return zs
		}
	}
	return nil
}

// signed is the write point's signing: m with the DNSKEY RRset when it answers the apex
// DNSKEY query of a signed zone, and for a query with DO its RRSIGs and NSEC denial. Apart
// from reply's one call it keeps ServeDNS's frame as it was.
func (g *GTM) signed(state *request.Request, m *dns.Msg) *dns.Msg {
	if g.block == nil || g.block.dnssec == nil {
		return m
	}
	s := g.block.dnssec
	s.dnskey(state.Name(), state.QType(), m)
	if !state.Do() {
		return m
	}
	return s.sign(state.Name(), state.QType(), m, time.Now().UTC())
}

// dnskey makes m the answer with the zone's DNSKEY RRset when qname is the apex of a
// signed zone and qtype DNSKEY, with or without DO, as the dnssec plugin answers it.
func (s *signer) dnskey(qname string, qtype uint16, m *dns.Msg) {
	if zs, ok := s.zones[qname]; ok && qtype == dns.TypeDNSKEY {
		// Clipped: Sign appends the RRSIGs, and must not write into the shared RRset.
		m.Answer, m.Ns, m.Rcode = slices.Clip(zs.keys), nil, dns.RcodeSuccess
	}
}

// dnssecNext is next's part: the DNSKEY RRset at a signed zone's apex is gtm's own, answered
// here (answered is then true), and a query with DO for a signed zone that gtm hands to the
// next plugin (fallthrough) gets its answer signed on the way out, as the dnssec plugin
// signs what the plugins after it write.
func (g *GTM) dnssecNext(w dns.ResponseWriter, r *dns.Msg) (_ dns.ResponseWriter, answered bool) {
	if g.block == nil || g.block.dnssec == nil || len(r.Question) != 1 {
		return w, false
	}
	state := request.Request{W: w, Req: r}
	s := g.block.dnssec
	qtype := state.QType()
	if qtype == dns.TypeDNSKEY && r.Opcode == dns.OpcodeQuery && s.zones[state.Name()] != nil {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		g.reply(&state, m, g.querySubnet(r), 0)
		return w, true
	}
	if !state.Do() {
		return w, false
	}
	qname := state.Name()
	if s.zone(qname) == nil {
		return w, false
	}
	return &signingWriter{ResponseWriter: w, s: s, qname: qname, qtype: qtype}, false
}

// querySubnet is the query's ECS option (ServeDNS already refused an invalid one), to echo
// it with scope 0 on an answer that does not depend on the client.
func (g *GTM) querySubnet(r *dns.Msg) *geo.ClientSubnet {
	o := r.IsEdns0()
	if !g.ecs || o == nil {
		return nil
	}
	for _, opt := range o.Option {
		if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
			if s, err := geo.ParseECS(e); err == nil {
				return &s
			}
			return nil
		}
	}
	return nil
}

// signingWriter signs the next plugin's answer for a name of a signed zone.
type signingWriter struct {
	dns.ResponseWriter
	s     *signer
	qname string
	qtype uint16
}

// WriteMsg implements dns.ResponseWriter.
func (w *signingWriter) WriteMsg(m *dns.Msg) error {
	m = w.s.sign(w.qname, w.qtype, m, time.Now().UTC())
	// A record the next plugin took from gtm through the server (an in-zone CNAME's target)
	// was signed there already.
	m.Answer = dns.Dedup(m.Answer, nil)
	return w.ResponseWriter.WriteMsg(m)
}

// sign adds to m, the answer to qname/qtype, what a validating resolver needs: RRSIGs over
// every RRset of our zones, and for NXDOMAIN and NODATA (also at the end of a CNAME chain)
// an NSEC black lie with its RRSIG, which turns NXDOMAIN into NODATA, as CoreDNS's dnssec
// plugin does.
func (s *signer) sign(qname string, qtype uint16, m *dns.Msg, now time.Time) *dns.Msg {
	zs := s.zone(qname)
	if zs == nil {
		return m
	}
	if len(m.Answer) == 0 {
		zs.d.signMsg(m, now, s.server)
		return m
	}
	if target := deniedTarget(m); target != "" {
		// The chain ends in a name with no such record (or none at all): the denial is the
		// target's, signed by the target's zone, after the chain's own RRSIGs.
		deny := &dns.Msg{MsgHdr: m.MsgHdr, Ns: m.Ns}
		deny.Question = []dns.Question{{Name: target, Qtype: qtype, Qclass: dns.ClassINET}}
		if tz := s.zone(dns.CanonicalName(target)); tz != nil {
			tz.d.signMsg(deny, now, s.server)
		}
		m.Ns, m.Rcode = nil, dns.RcodeSuccess
		s.signAnswer(zs, m, now)
		m.Ns, m.Rcode = deny.Ns, deny.Rcode
		return m
	}
	s.signAnswer(zs, m, now)
	return m
}

// deniedTarget is the last CNAME target of an answer that ends in a denial (only the zone's
// SOA in authority), else "".
func deniedTarget(m *dns.Msg) string {
	if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		return ""
	}
	if c, ok := m.Answer[len(m.Answer)-1].(*dns.CNAME); ok {
		return c.Target
	}
	return ""
}

// signAnswer signs a positive answer. Its RRsets are signed by their zones' keys: all by
// zs, the query's zone, but for a CNAME chain through another signed zone of the block.
func (s *signer) signAnswer(zs *zoneSigner, m *dns.Msg, now time.Time) {
	var others []*zoneSigner
	for _, rr := range m.Answer {
		if z := s.zone(dns.CanonicalName(rr.Header().Name)); z != nil && z != zs && !slices.Contains(others, z) {
			others = append(others, z)
		}
	}
	if len(others) == 0 {
		zs.d.signMsg(m, now, s.server)
		return
	}
	// Each Dnssec signs only its own zone's RRsets: sign the answer once per zone and keep
	// every zone's RRSIGs. The authority and additional sections go with the query's zone.
	out := slices.Clip(m.Answer)
	for i, z := range append([]*zoneSigner{zs}, others...) {
		part := &dns.Msg{MsgHdr: m.MsgHdr, Question: m.Question, Answer: slices.Clip(m.Answer)}
		if i == 0 {
			part.Ns, part.Extra = m.Ns, m.Extra
		}
		z.d.signMsg(part, now, s.server)
		out = append(out, part.Answer[len(m.Answer):]...)
		if i == 0 {
			m.Ns, m.Extra = part.Ns, part.Extra
		}
	}
	m.Answer = out
}
