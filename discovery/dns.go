package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ResolvConf is the file the host's resolvers are read from when a source names none.
var ResolvConf = "/etc/resolv.conf"

// Resolver asks DNS servers for records, TTL-aware (miekg/dns, not net.Resolver, which hides
// TTLs). The zero value uses the host's resolv.conf.
type Resolver struct {
	Servers []string      // host:port, tried in order; empty: resolv.conf
	Timeout time.Duration // per exchange; 0: 2s
}

// NewResolver returns a resolver asking server (host:port), or the host's resolv.conf's
// servers when server is "".
func NewResolver(server string) (*Resolver, error) {
	if server != "" {
		return &Resolver{Servers: []string{server}}, nil
	}
	cc, err := dns.ClientConfigFromFile(ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("no resolver given and %s cannot be read: %v", ResolvConf, err)
	}
	r := &Resolver{}
	for _, s := range cc.Servers {
		r.Servers = append(r.Servers, net.JoinHostPort(s, cc.Port))
	}
	if len(r.Servers) == 0 {
		return nil, fmt.Errorf("no resolver given and %s names no nameserver", ResolvConf)
	}
	return r, nil
}

// errNone is a believed "no such records" (NXDOMAIN, NODATA).
var errNone = errors.New("no records")

// exchange asks for name/qtype and returns the answer. NXDOMAIN and NODATA return errNone
// with the negative TTL; any other failure (timeout, SERVFAIL, REFUSED) is an error.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, uint32, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	q.SetEdns0(1232, false)
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var last error
	for _, server := range r.Servers {
		c := &dns.Client{Net: "udp", Timeout: timeout}
		ictx, cancel := context.WithTimeout(ctx, timeout)
		resp, _, err := c.ExchangeContext(ictx, q, server)
		if err == nil && resp.Truncated {
			c.Net = "tcp"
			resp, _, err = c.ExchangeContext(ictx, q, server)
		}
		cancel()
		if err != nil {
			last = fmt.Errorf("%s %s from %s: %v", strings.TrimSuffix(q.Question[0].Name, "."), dns.TypeToString[qtype], server, err)
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			if !hasType(resp, qtype) {
				return resp, negativeTTL(resp), errNone
			}
			return resp, 0, nil
		case dns.RcodeNameError:
			return resp, negativeTTL(resp), errNone
		}
		last = fmt.Errorf("%s %s from %s: %s", strings.TrimSuffix(q.Question[0].Name, "."), dns.TypeToString[qtype], server, dns.RcodeToString[resp.Rcode])
	}
	if last == nil {
		last = errors.New("no resolver to ask")
	}
	return nil, 0, last
}

func hasType(m *dns.Msg, qtype uint16) bool {
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype {
			return true
		}
	}
	return false
}

// negativeTTL is RFC 2308's: min(SOA TTL, SOA MINIMUM); 0 without an SOA.
func negativeTTL(m *dns.Msg) uint32 {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}

// Lookup returns the A and AAAA addresses of name and the lowest TTL among them (or the
// negative TTL). No records of either type is a believed empty answer, not an error.
func (r *Resolver) Lookup(ctx context.Context, name string) ([]netip.Addr, uint32, error) {
	var out []netip.Addr
	ttl := uint32(0)
	first := true
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, t, err := r.exchange(ctx, name, qtype)
		if errors.Is(err, errNone) {
			if first || t < ttl {
				ttl, first = t, false
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range resp.Answer {
			var a netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(v.A)
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(v.AAAA)
			default:
				continue // the CNAME chain to them
			}
			if first || rr.Header().Ttl < ttl {
				ttl, first = rr.Header().Ttl, false
			}
			out = append(out, a.Unmap())
		}
	}
	return out, ttl, nil
}

// DNS is the source of `members dns NAME`: NAME's A/AAAA, asked again when their TTL ends,
// never sooner than Min nor later than Max. After an error it asks again after Min.
type DNS struct {
	Name     string
	Resolver *Resolver
	Min, Max time.Duration
}

// Run implements Source.
func (d *DNS) Run(ctx context.Context, report func(Report)) {
	poll(ctx, d.Min, d.Max, func() ([]Member, uint32, error) {
		addrs, ttl, err := d.Resolver.Lookup(ctx, d.Name)
		if err != nil {
			return nil, 0, err
		}
		ms := make([]Member, len(addrs))
		for i, a := range addrs {
			ms[i] = Member{Addr: a, Weight: 1}
		}
		return ms, ttl, nil
	}, report)
}

// poll runs one lookup, reports it, and waits for the next: the TTL bounded by lo and hi
// after an answer, lo after an error.
func poll(ctx context.Context, lo, hi time.Duration, lookup func() ([]Member, uint32, error), report func(Report)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ms, ttl, err := lookup()
		if ctx.Err() != nil {
			return
		}
		wait := lo
		if err != nil {
			report(Report{Err: err})
		} else {
			report(Report{Members: ms})
			wait = min(max(time.Duration(ttl)*time.Second, lo), hi)
		}
		t.Reset(wait)
	}
}

// SRV is the source of `members srv _SERVICE._PROTO.NAME`: the A/AAAA of the SRV targets,
// each with the SRV port (for its checks), weight and priority.
type SRV struct {
	Name     string
	Resolver *Resolver
	Min, Max time.Duration
}

// Run implements Source.
func (s *SRV) Run(ctx context.Context, report func(Report)) {
	poll(ctx, s.Min, s.Max, func() ([]Member, uint32, error) { return s.lookup(ctx) }, report)
}

func (s *SRV) lookup(ctx context.Context) ([]Member, uint32, error) {
	resp, nttl, err := s.Resolver.exchange(ctx, s.Name, dns.TypeSRV)
	if errors.Is(err, errNone) {
		return nil, nttl, nil
	}
	if err != nil {
		return nil, 0, err
	}
	ttl := ^uint32(0)
	// Addresses the server sent along (additional section), by owner name.
	glue := map[string][]netip.Addr{}
	for _, rr := range resp.Extra {
		switch v := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(v.A)
			glue[strings.ToLower(v.Hdr.Name)] = append(glue[strings.ToLower(v.Hdr.Name)], a.Unmap())
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(v.AAAA)
			glue[strings.ToLower(v.Hdr.Name)] = append(glue[strings.ToLower(v.Hdr.Name)], a.Unmap())
		}
	}
	var out []Member
	for _, rr := range resp.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok || srv.Target == "." {
			continue // "." : the service is decidedly not available there (RFC 2782)
		}
		ttl = min(ttl, srv.Hdr.Ttl)
		target := strings.ToLower(srv.Target)
		addrs, ok := glue[target]
		if !ok {
			var t uint32
			addrs, t, err = s.Resolver.Lookup(ctx, target)
			if err != nil {
				return nil, 0, err
			}
			if len(addrs) > 0 {
				ttl = min(ttl, t)
			}
		}
		for _, a := range addrs {
			out = append(out, Member{Addr: a, Port: int(srv.Port), Weight: max(int(srv.Weight), 1), Priority: int(srv.Priority)})
		}
	}
	if ttl == ^uint32(0) {
		ttl = 0
	}
	// A target named by two records keeps the first of the lowest priority (normalize keeps
	// the first of a duplicated address after a stable sort by address).
	sortByPriority(out)
	return out, ttl, nil
}

func sortByPriority(ms []Member) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Priority < ms[j-1].Priority; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}
