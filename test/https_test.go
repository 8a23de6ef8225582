package test

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// servicesCorefile serves HTTPS and SRV answers (PRODUCT.md Part 3, "Answers beyond A and
// AAAA") on one port for UDP and TCP, signed when key is set.
func servicesCorefile(port int, key, extra string) string {
	var big strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&big, "      address 198.18.0.%d\n", i)
	}
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&big, "      address 2001:db8:18::%x\n", i)
	}
	dnssec := ""
	if key != "" {
		dnssec = fmt.Sprintf("    dnssec {\n      key file %s\n    }\n", key)
	}
	return fmt.Sprintf(`gtm.example.net:%d {
  bind 127.0.0.1
  gtm {
    ns ns1.gtm.example.net 127.0.0.1
%s    pool web {
      lb all
      address 192.0.2.1
      address 192.0.2.2 weight 3
      address 2001:db8::1
    }
    pool big {
      lb all
%s    }
    pool to-web {
      address web.gtm.example.net
    }
    pool off {
      address 192.0.2.9 disabled
    }
    domain web.gtm.example.net {
      route default web
      https 1 {
        alpn h3 h2
        port 443
      }
      srv _sip._udp 5060 10
    }
    domain big.gtm.example.net {
      route default big
      https {
        alpn h2
      }
      srv _sip._tcp 5060
    }
    domain www.gtm.example.net {
      route default to-web
      https {
        alpn h3
      }
    }
    domain plain.gtm.example.net {
      route default web
    }
    domain nodata.gtm.example.net {
      route default off
      fallback nodata
      https {
        alpn h2
      }
      srv _sip._udp 5060
    }
    domain servfail.gtm.example.net {
      route default off
      fallback servfail
      https {
        alpn h2
      }
    }
    domain *.wild.gtm.example.net {
      route default web
      https {
        alpn h3
      }
      srv _sip._udp 5060
    }
%s  }
}
`, port, dnssec, big.String(), extra)
}

func startServices(t *testing.T, key string) (*server, int) {
	t.Helper()
	port := freePort(t)
	return start(t, servicesCorefile(port, key, "")), port
}

func httpsOf(t *testing.T, m *dns.Msg) (rr *dns.HTTPS, v4, v6 []string) {
	t.Helper()
	for _, a := range m.Answer {
		h, ok := a.(*dns.HTTPS)
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
	return rr, v4, v6
}

func sortedAnswers(m *dns.Msg) []string {
	out := answers(m)
	slices.Sort(out)
	return out
}

// HTTPS and SRV over the wire (miekg/dns parses every answer): the record's hints are the
// A and AAAA answers; a pool of names answers a CNAME and the chain is followed; fallback
// nodata and servfail answer as for A; a wildcard answers HTTPS and SRV at each name; a
// large lb all answer is truncated over UDP and complete over TCP.
func TestHTTPSAndSRVAnswers(t *testing.T) {
	s, _ := startServices(t, "")
	r := s.ask(query{name: "web.gtm.example.net", qtype: dns.TypeHTTPS, edns: true})
	h, v4, v6 := httpsOf(t, r)
	if h == nil || h.Priority != 1 || h.Target != "." || !r.Authoritative {
		t.Fatalf("HTTPS web: %v", r)
	}
	if a := sortedAnswers(s.ask(query{name: "web.gtm.example.net", qtype: dns.TypeA})); !slices.Equal(v4, a) {
		t.Errorf("ipv4hint %v, A %v", v4, a)
	}
	if a := sortedAnswers(s.ask(query{name: "web.gtm.example.net", qtype: dns.TypeAAAA})); !slices.Equal(v6, a) {
		t.Errorf("ipv6hint %v, AAAA %v", v6, a)
	}
	if txt := h.String(); !strings.Contains(txt, `alpn="h3,h2"`) || !strings.Contains(txt, `port="443"`) {
		t.Errorf("HTTPS web: %s", txt)
	}

	// No https: NODATA, as before.
	if r := s.ask(query{name: "plain.gtm.example.net", qtype: dns.TypeHTTPS}); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 1 {
		t.Errorf("HTTPS plain: %v", r)
	}
	// A pool of names: the CNAME, followed to web's HTTPS record.
	r = s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeHTTPS})
	if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "web.gtm.example.net." || r.Answer[1].Header().Rrtype != dns.TypeHTTPS {
		t.Errorf("HTTPS www: %v", r.Answer)
	}
	// fallback nodata and servfail.
	for _, q := range []query{{name: "nodata.gtm.example.net", qtype: dns.TypeHTTPS}, {name: "_sip._udp.nodata.gtm.example.net", qtype: dns.TypeSRV}} {
		if r := s.ask(q); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 1 {
			t.Errorf("%s: %v, want NODATA", q.name, r)
		}
	}
	if r := s.ask(query{name: "servfail.gtm.example.net", qtype: dns.TypeHTTPS}); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("HTTPS servfail: %v", r)
	}
	// A wildcard's names.
	r = s.ask(query{name: "a.b.wild.gtm.example.net", qtype: dns.TypeHTTPS})
	if h, _, _ := httpsOf(t, r); h == nil || h.Hdr.Name != "a.b.wild.gtm.example.net." {
		t.Errorf("HTTPS wildcard: %v", r.Answer)
	}
	r = s.ask(query{name: "_sip._udp.x.wild.gtm.example.net", qtype: dns.TypeSRV})
	if len(r.Answer) != 3 {
		t.Fatalf("SRV wildcard: %v", r.Answer)
	}
	var got []string
	for _, rr := range r.Answer {
		target := rr.(*dns.SRV).Target
		if !strings.HasSuffix(target, ".x.wild.gtm.example.net.") {
			t.Errorf("SRV wildcard target %s", target)
		}
		a := s.ask(query{name: target, qtype: dns.TypeA})
		aaaa := s.ask(query{name: target, qtype: dns.TypeAAAA})
		got = append(got, answers(a)...)
		got = append(got, answers(aaaa)...)
	}
	slices.Sort(got)
	if want := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}; !slices.Equal(got, want) {
		t.Errorf("the SRV targets resolve to %v, want %v", got, want)
	}

	// Truncation: 60 IPv4 and 30 IPv6 hints do not fit 512 bytes; over TCP they all come.
	for _, q := range []query{{name: "big.gtm.example.net", qtype: dns.TypeHTTPS}, {name: "_sip._tcp.big.gtm.example.net", qtype: dns.TypeSRV}} {
		r := s.ask(q)
		if !r.Truncated {
			t.Errorf("%s %s over UDP without EDNS: %d records, not truncated", q.name, dns.TypeToString[q.qtype], len(r.Answer))
		}
		q.tcp = true
		r = s.ask(q)
		n := len(r.Answer)
		if q.qtype == dns.TypeHTTPS {
			_, v4, v6 := httpsOf(t, r)
			n = len(v4) + len(v6)
		}
		if r.Truncated || n != 90 {
			t.Errorf("%s %s over TCP: truncated %v, %d addresses, want 90", q.name, dns.TypeToString[q.qtype], r.Truncated, n)
		}
	}
}

// Real clients read the answers: dig (bind9-dnsutils) and kdig (knot-dnsutils), which
// parses each SvcParam.
func TestHTTPSAndSRVRealClients(t *testing.T) {
	dig := requireTool(t, "dig", "bind9-dnsutils")
	kdig := requireTool(t, "kdig", "knot-dnsutils")
	_, port := startServices(t, "")
	run := func(bin string, args ...string) string {
		t.Helper()
		opts := []string{"@127.0.0.1", "-p", strconv.Itoa(port), "+time=3", "+tries=1"}
		if bin == kdig {
			opts = []string{"@127.0.0.1", "-p", strconv.Itoa(port), "+timeout=3", "+retry=0"}
		}
		out, err := exec.Command(bin, append(opts, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}
	out := run(dig, "+short", "web.gtm.example.net", "HTTPS")
	for _, want := range []string{`1 . alpn="h3,h2" port=443 ipv4hint=`, "192.0.2.1", "192.0.2.2", "ipv6hint=2001:db8::1"} {
		if !strings.Contains(out, want) {
			t.Errorf("dig HTTPS: %q lacks %q", out, want)
		}
	}
	out = run(kdig, "+short", "web.gtm.example.net", "HTTPS")
	for _, want := range []string{"1 . alpn=h3,h2 port=443 ipv4hint=", "192.0.2.1", "192.0.2.2", "ipv6hint=2001:db8::1"} {
		if !strings.Contains(out, want) {
			t.Errorf("kdig HTTPS: %q lacks %q", out, want)
		}
	}
	// The SRV RRset, and each target through dig again.
	for _, bin := range []string{dig, kdig} {
		out = run(bin, "+short", "_sip._udp.web.gtm.example.net", "SRV")
		lines := strings.Fields(strings.TrimSpace(out))
		if len(lines) != 12 {
			t.Fatalf("%s SRV: %q, want three records", bin, out)
		}
		var addrs []string
		for i := 0; i < len(lines); i += 4 {
			pri, weight, port, target := lines[i], lines[i+1], lines[i+2], lines[i+3]
			if pri != "10" || port != "5060" {
				t.Errorf("%s SRV: %q", bin, out)
			}
			qt := "A"
			if strings.HasPrefix(target, "2001-") {
				qt = "AAAA"
			}
			a := strings.TrimSpace(run(dig, "+short", target, qt))
			if want := map[string]string{"192.0.2.2": "3"}[a]; want != "" && weight != want {
				t.Errorf("%s SRV: %s weight %s, want %s", bin, target, weight, want)
			}
			addrs = append(addrs, a)
		}
		slices.Sort(addrs)
		if want := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}; !slices.Equal(addrs, want) {
			t.Errorf("%s: the SRV targets resolve to %v, want %v", bin, addrs, want)
		}
	}
	// A large answer: dig retries over TCP after the truncated UDP answer and gets all.
	out = run(dig, "+short", "+ignore", "+noedns", "big.gtm.example.net", "HTTPS")
	if strings.Contains(out, "198.18.0.60") {
		t.Errorf("dig +ignore +noedns: a complete answer over UDP: %q", out)
	}
	out = run(kdig, "+short", "+tcp", "big.gtm.example.net", "HTTPS")
	if !strings.Contains(out, "198.18.0.60") || !strings.Contains(out, "2001:db8:18::1e") {
		t.Errorf("kdig +tcp: %q lacks the 60th IPv4 and 30th IPv6 hint", out)
	}
}

// unbound, validating with the zone's DS as trust anchor, validates the signed HTTPS and
// SRV answers (AD), the SRV targets, the CNAME chain to an HTTPS record, the NSEC denial
// of HTTPS at a domain without `https`, and a large SRV RRset it fetches over TCP.
func TestHTTPSAndSRVValidated(t *testing.T) {
	ub := requireTool(t, "unbound", "unbound")
	dir := t.TempDir()
	base, key := makeKey(t, dir, signedZoneName, true)
	s, port := startServices(t, base)
	// The server's own signature, checked with the key before a resolver sees it.
	m := new(dns.Msg)
	m.SetQuestion("web.gtm.example.net.", dns.TypeHTTPS)
	m.SetEdns0(1232, true)
	r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, s.udp)
	if err != nil {
		t.Fatal(err)
	}
	checkSigned(t, r, []*dns.DNSKEY{key})

	resolve := startUnbound(t, ub, "127.0.53.3", key.ToDS(dns.SHA256).String(), port)
	expectValidated(t, resolve, []validatedCase{
		{"web.gtm.example.net.", dns.TypeHTTPS, 1},
		{"_sip._udp.web.gtm.example.net.", dns.TypeSRV, 3},
		{"192-0-2-2.web.gtm.example.net.", dns.TypeA, 1},
		{"2001-db8-0-0-0-0-0-1.web.gtm.example.net.", dns.TypeAAAA, 1},
		{"www.gtm.example.net.", dns.TypeHTTPS, 2},
		{"plain.gtm.example.net.", dns.TypeHTTPS, 0},
		{"_sip._udp.nodata.gtm.example.net.", dns.TypeSRV, 0},
		{"big.gtm.example.net.", dns.TypeHTTPS, 1},
		{"_sip._tcp.big.gtm.example.net.", dns.TypeSRV, 90},
		{"_sip._udp.q.wild.gtm.example.net.", dns.TypeSRV, 3},
	})
}

// The worked example of the README's "HTTPS and SRV" section answers what it shows.
func TestHTTPSReadmeExample(t *testing.T) {
	dig := requireTool(t, "dig", "bind9-dnsutils")
	port := freePort(t)
	start(t, fmt.Sprintf(`gtm.example.net:%d {
  bind 127.0.0.1
  gtm gtm.example.net {
    pool eu {
        address 192.0.2.10 weight 2
        address 192.0.2.11
        address 2001:db8::10
        lb all
    }
    domain www.gtm.example.net {
        route default eu
        https {
            alpn h3 h2
        }
        srv _sip._udp 5060 10
    }
  }
}`, port))
	run := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command(dig, append([]string{"@127.0.0.1", "-p", strconv.Itoa(port), "+time=3", "+tries=1", "+short"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		slices.Sort(lines)
		return lines
	}
	got := run("www.gtm.example.net", "HTTPS")
	if len(got) != 1 || !slices.Contains([]string{
		`1 . alpn="h3,h2" ipv4hint=192.0.2.10,192.0.2.11 ipv6hint=2001:db8::10`,
		`1 . alpn="h3,h2" ipv4hint=192.0.2.11,192.0.2.10 ipv6hint=2001:db8::10`,
	}, got[0]) {
		t.Errorf("HTTPS: %q", got)
	}
	want := []string{"10 1 5060 192-0-2-11.www.gtm.example.net.", "10 1 5060 2001-db8-0-0-0-0-0-10.www.gtm.example.net.", "10 2 5060 192-0-2-10.www.gtm.example.net."}
	if got := run("_sip._udp.www.gtm.example.net", "SRV"); !slices.Equal(got, want) {
		t.Errorf("SRV: %q, want %q", got, want)
	}
	if got := run("192-0-2-10.www.gtm.example.net", "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Errorf("A: %q", got)
	}
}
