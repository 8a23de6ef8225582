package gtm

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// propertyBlock routes by nets (so scopes vary with the client), answers from pools whose
// choice is a function of the client and the state (lb all, hashed, priority: no random
// draw, so two queries of one client get the same addresses), and has a degraded TTL.
const propertyBlock = `gtm gtm.example.net {
    pool a {
        address 192.0.2.1
        address 192.0.2.2
        address 2001:db8::a1
        lb all
    }
    pool b {
        address 198.51.100.1 weight 2
        address 198.51.100.2
        address 198.51.100.3
        address 2001:db8::b1
        address 2001:db8::b2
        lb hashed
    }
    pool c {
        address 203.0.113.1 priority 1
        address 203.0.113.2 priority 2
        address 2001:db8::c1 priority 1
        address 2001:db8::c2 priority 2
        lb priority
    }
    pool v4only {
        address 203.0.113.9
        lb all
    }
    domain www.gtm.example.net {
        route net:10.0.0.0/8 b a
        route net:10.1.0.0/16 c a
        route net:2001:db8:1::/48 v4only a
        route net:2001:db8:2::/48 b c select all
        route default a b
        ttl 30 5
        https 1 {
            alpn h3 h2
        }
        srv _sip._udp 5060
    }
}`

// For random ECS clients and states (addresses down, a pool drained, the domain pinned),
// the HTTPS hints are the addresses of the same client's A and AAAA answers, with their
// TTL and scope; the SRV targets name the same addresses; explain says the same.
func TestHTTPSHintsProperty(t *testing.T) {
	g := newTestGTM(t, propertyBlock)
	cs := g.ctl.Snapshot()
	d := cs.Domain("www.gtm.example.net.")
	seed := uint64(20261206)
	rng := rand.New(rand.NewPCG(seed, 1))
	var addrs []*policy.Address
	for _, p := range cs.Pools {
		addrs = append(addrs, p.Addrs...)
	}
	pools := []string{"a", "b", "c", "v4only"}
	clients := []func() (string, uint16, uint8){
		func() (string, uint16, uint8) { return fmt.Sprintf("10.%d.%d.0", rng.IntN(3), rng.IntN(256)), 1, 24 },
		func() (string, uint16, uint8) { return fmt.Sprintf("10.1.%d.%d", rng.IntN(256), rng.IntN(256)), 1, 32 },
		func() (string, uint16, uint8) { return fmt.Sprintf("%d.%d.0.0", 1+rng.IntN(200), rng.IntN(256)), 1, 16 },
		func() (string, uint16, uint8) {
			return fmt.Sprintf("2001:db8:%x:%x00::", 1+rng.IntN(3), 1+rng.IntN(255)), 2, 56
		},
		func() (string, uint16, uint8) { return "0.0.0.0", 1, 0 },
	}
	both, scoped := 0, 0
	for i := range 400 {
		// The state: each address down with 1/5, a pool drained with 1/6, a pin with 1/5.
		for _, a := range addrs {
			a.Mode.Set(policy.ModeAuto)
			if rng.IntN(5) == 0 {
				a.Mode.Set(policy.ModeDown)
			}
		}
		if rng.IntN(6) == 0 {
			for _, a := range cs.Pool(pools[rng.IntN(len(pools))]).Addrs {
				a.Mode.Set(policy.ModeDown)
			}
		}
		d.Pin.Set("")
		if rng.IntN(5) == 0 {
			d.Pin.Set(pools[rng.IntN(len(pools))])
		}
		addr, fam, bits := clients[rng.IntN(len(clients))]()
		ask := func(name string, qtype uint16) *dns.Msg {
			q := ecsQuery(name, fam, bits, addr, 0)
			q.Question[0].Qtype = qtype
			return serve(t, g, q)
		}
		www := "www.gtm.example.net."
		ra, raaaa, rh, rs := ask(www, dns.TypeA), ask(www, dns.TypeAAAA), ask(www, dns.TypeHTTPS), ask("_sip._udp."+www, dns.TypeSRV)
		sa, saaaa, sh := echoScope(ra), echoScope(raaaa), echoScope(rh)
		what := fmt.Sprintf("case %d (seed %d): client %s/%d pin %q", i, seed, addr, bits, d.Pin.Get())
		if ra.Rcode == dns.RcodeFormatError {
			t.Fatalf("%s: FORMERR: the test's ECS option is invalid", what)
		}
		v4, v6 := answerIPs(ra), answerIPs(raaaa)
		if len(v4) > 0 && len(v6) > 0 {
			both++
		}
		if sa > 0 {
			scoped++
		}
		h4, h6, hint := hintIPs(rh)
		if len(v4)+len(v6) == 0 {
			if len(rh.Answer) != 0 || rh.Rcode != ra.Rcode {
				t.Fatalf("%s: A and AAAA empty (%s), HTTPS %v", what, dns.RcodeToString[ra.Rcode], rh)
			}
		} else {
			if hint == nil {
				t.Fatalf("%s: A %v AAAA %v, HTTPS %v: want a record", what, v4, v6, rh.Answer)
			}
			if !slices.Equal(h4, v4) || !slices.Equal(h6, v6) {
				t.Fatalf("%s: hints %v %v, A %v AAAA %v", what, h4, h6, v4, v6)
			}
			want := ttlOf(ra, raaaa)
			if hint.Hdr.Ttl != want {
				t.Fatalf("%s: HTTPS ttl %d, A/AAAA ttl %d", what, hint.Hdr.Ttl, want)
			}
		}
		// Empty answers carry the decision's scope too (PRODUCT.md Part 3).
		if sh != max(sa, saaaa) {
			t.Fatalf("%s: HTTPS scope %d, A %d AAAA %d (answers %v %v)", what, sh, sa, saaaa, v4, v6)
		}
		// SRV: one record per address, its target naming that address.
		var targets []string
		for _, rr := range rs.Answer {
			ip, ok := parseAddrLabel(strings.SplitN(rr.(*dns.SRV).Target, ".", 2)[0])
			if !ok {
				t.Fatalf("%s: SRV target %s", what, rr)
			}
			targets = append(targets, ip.String())
		}
		slices.Sort(targets)
		all := slices.Sorted(slices.Values(append(slices.Clone(v4), v6...)))
		if !slices.Equal(targets, all) || echoScope(rs) != sh {
			t.Fatalf("%s: SRV targets %v scope %d, A+AAAA %v scope %d", what, targets, echoScope(rs), all, sh)
		}
		// Explain gives the same record (hints in any order) and scope.
		p := netip.PrefixFrom(netip.MustParseAddr(addr), int(bits)).Masked()
		doc, err := g.Explain(api.ExplainQuery{Domain: "www.gtm.example.net.", Type: dns.TypeHTTPS, Subnet: &p})
		if err != nil {
			t.Fatalf("%s: explain: %v", what, err)
		}
		if doc.Scope != sh || len(doc.Answer) != len(rh.Answer) {
			t.Fatalf("%s: explain %+v, query scope %d answer %v", what, doc, sh, rh.Answer)
		}
		for _, ip := range all {
			if !strings.Contains(doc.Answer[0], ip) {
				t.Fatalf("%s: explain answer %q lacks %s", what, doc.Answer[0], ip)
			}
		}
	}
	for _, a := range addrs {
		a.Mode.Set(policy.ModeAuto)
	}
	d.Pin.Set("")
	if both < 100 || scoped < 100 {
		t.Errorf("only %d cases answered both families and %d had a scope: the cases do not cover enough", both, scoped)
	}
	t.Logf("%d cases with both families, %d with a scope", both, scoped)
}

func answerIPs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if ip := answerIP(rr); ip != "" {
			out = append(out, ip)
		}
	}
	slices.Sort(out)
	return out
}

func hintIPs(m *dns.Msg) (v4, v6 []string, rr *dns.HTTPS) {
	for _, a := range m.Answer {
		h, ok := asHTTPS(a)
		if !ok {
			continue
		}
		rr = h
		for _, kv := range h.Value {
			switch x := kv.(type) {
			case *dns.SVCBIPv4Hint:
				for _, ip := range x.Hint {
					v4 = append(v4, ip.String())
				}
			case *dns.SVCBIPv6Hint:
				for _, ip := range x.Hint {
					v6 = append(v6, ip.String())
				}
			}
		}
	}
	slices.Sort(v4)
	slices.Sort(v6)
	return v4, v6, rr
}

func ttlOf(ms ...*dns.Msg) uint32 {
	ttl := uint32(1 << 31)
	for _, m := range ms {
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	return ttl
}

func echoScope(m *dns.Msg) int {
	if e := echoed(m); e != nil {
		return int(e.SourceScope)
	}
	return -1
}
