package test

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Answers at the seams (PRODUCT.md Part 3): what real resolvers in front of gtm cache from
// its answers, and how gtm composes with file and cache. The resolvers are real: unbound with
// its ECS cache (subnetcache) and BIND forwarding; clients are told apart by their source
// address (127.1.0.0/16 is JP in the demo database, 127.2.0.0/16 DE), from which unbound
// makes the ECS option it sends.

// seamsServer is the built binary serving a Corefile on 127.0.0.1:port.
type seamsServer struct {
	*server
	port int
	dir  string
	proc *proc
}

// runGTM writes corefile (with %[1]d for the port and %[2]s for the demo city database) and
// runs the binary on it until probe answers.
func runGTM(t *testing.T, dir, corefile, probe string) *seamsServer {
	t.Helper()
	city, err := filepath.Abs("../demo/geo-city.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := writeFile(t, filepath.Join(dir, "Corefile"), fmt.Sprintf(corefile, port, city))
	p := startBinary(t, dir, conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &seamsServer{server: &server{t: t, udp: addr, tcp: addr}, port: port, dir: dir, proc: p}
	eventually(t, 20*time.Second, func() string {
		if _, err := s.exchange(query{name: probe, qtype: dns.TypeA}); err != nil {
			return "not answering: " + err.Error() + "\n" + p.out.String()
		}
		return ""
	})
	return s
}

// stub is a real resolver in front of gtm, asked from a chosen source address.
type stub struct {
	t    *testing.T
	addr string
	out  *syncBuffer
}

// ask resolves name/qtype through the resolver from source address src (with DO when do).
func (s *stub) ask(src, name string, qtype uint16, do bool) *dns.Msg {
	s.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, do)
	c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{
		Timeout: 5 * time.Second, LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)},
	}}
	var r *dns.Msg
	var err error
	for range 3 { // a lost UDP datagram on a loaded machine is not the fault under test
		if r, _, err = c.Exchange(m, s.addr); err == nil {
			return r
		}
	}
	s.t.Fatalf("%s %s from %s through %s: %v\n%s", name, dns.TypeToString[qtype], src, s.addr, err, s.out.String())
	return nil
}

// startSubnetUnbound runs unbound as a resolver with its ECS cache: module subnetcache in
// front of the iterator (and the validator, with a trust anchor), ECS sent to every
// loopback authority (gtm), and zone as a stub zone on gtm's port.
func startSubnetUnbound(t *testing.T, ip, zone string, gtmPort int, anchor string) *stub {
	t.Helper()
	ub := requireTool(t, "unbound", "unbound")
	port := freeUDPPort(t, ip)
	dir := t.TempDir()
	modules := "subnetcache iterator"
	trust := ""
	if anchor != "" {
		modules = "subnetcache validator iterator"
		trust = fmt.Sprintf("  trust-anchor: \"%s\"\n  val-permissive-mode: no\n  harden-dnssec-stripped: yes\n", anchor)
	}
	conf := writeFile(t, filepath.Join(dir, "unbound.conf"), fmt.Sprintf(`server:
  interface: %s
  port: %d
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "%s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  num-threads: 1
  do-ip6: no
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  qname-minimisation: no
  module-config: "%s"
  send-client-subnet: 127.0.0.0/8
  client-subnet-always-forward: yes
  max-client-subnet-ipv4: 24
  local-zone: "test." nodefault
%sremote-control:
  control-enable: no
stub-zone:
  name: "%s"
  stub-addr: 127.0.0.1@%d
`, ip, port, dir, modules, trust, zone, gtmPort))
	out := &syncBuffer{}
	cmd := exec.Command(ub, "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("unbound on %s:\n%s", ip, out.String())
		}
	})
	s := &stub{t: t, addr: fmt.Sprintf("%s:%d", ip, port), out: out}
	waitResolver(t, s, zone)
	return s
}

// waitResolver waits until the resolver answers the zone's SOA.
func waitResolver(t *testing.T, s *stub, zone string) {
	t.Helper()
	eventually(t, 20*time.Second, func() string {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
		if _, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, s.addr); err != nil {
			return "resolver not answering: " + err.Error() + "\n" + s.out.String()
		}
		return ""
	})
}

// The clients: loopback sources the demo database places in Japan and in Germany.
const (
	jpClient = "127.1.0.1"
	deClient = "127.2.0.1"
)

// seamsGeoCorefile holds the three ways a geo route gives one client an empty answer:
// a pool without the asked family, geo-fencing, and `fallback nodata` of a pool that is
// down. %[3]s is extra block configuration (dnssec).
const seamsGeoCorefile = `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        geoip %[2]s
        ttl 30
        ns ns1.gtm.test 127.0.0.1
%[3]s
        pool jp4 {
            address 192.0.2.1
        }
        pool dual {
            address 192.0.2.2
            address 2001:db8::2
        }
        pool dead {
            address 192.0.2.9 disabled
        }
        domain www.gtm.test {
            route country:JP jp4
            route default dual
        }
        domain fenced.gtm.test {
            route country:JP jp4
        }
        domain fb.gtm.test {
            fallback nodata
            ttl 30 5
            route country:JP dead
            route default dual
        }
    }
}
`

// seamsCase is one client's empty answer followed by another client's query.
type seamsCase struct {
	name         string
	qtype        uint16
	empty, other string // the client with the empty answer, then the other one
	want         string // the other client's answer
}

var seamsCases = []seamsCase{
	{"www.gtm.test", dns.TypeAAAA, jpClient, deClient, "2001:db8::2"},
	{"fenced.gtm.test", dns.TypeA, deClient, jpClient, "192.0.2.1"},
	{"fb.gtm.test", dns.TypeA, jpClient, deClient, "192.0.2.2"},
}

// Directly: every empty answer that depends on the client carries the scope of its decision;
// the emptiness every client shares carries 0.
func TestEmptyAnswerScope(t *testing.T) {
	s := runGTM(t, t.TempDir(), strings.Replace(seamsGeoCorefile, "%[3]s", "", 1), "www.gtm.test")
	for _, tc := range []struct {
		name   string
		qtype  uint16
		subnet string
		want   int // scope; -2: any non-zero
	}{
		{"www.gtm.test", dns.TypeAAAA, "1.0.16.0/24", -2},   // JP: jp4 has no IPv6
		{"fenced.gtm.test", dns.TypeA, "81.2.69.0/24", -2},  // GB: fenced
		{"fb.gtm.test", dns.TypeA, "1.0.16.0/24", -2},       // JP: fallback nodata
		{"fenced.gtm.test", dns.TypeAAAA, "1.0.16.0/24", 0}, // no pool has IPv6: everyone's
		{"www.gtm.test", dns.TypeMX, "1.0.16.0/24", 0},      // no pool answers MX
		{"nope.gtm.test", dns.TypeA, "1.0.16.0/24", 0},      // NXDOMAIN
	} {
		m := s.ask(query{name: tc.name, qtype: tc.qtype, subnet: tc.subnet})
		got := scope(m)
		if len(m.Answer) != 0 || (tc.want == -2 && got <= 0) || (tc.want >= 0 && got != tc.want) {
			t.Errorf("%s %s for %s: %d answers, scope %d (want empty, scope %s):\n%s", tc.name,
				dns.TypeToString[tc.qtype], tc.subnet, len(m.Answer), got, map[bool]string{true: "> 0", false: fmt.Sprint(tc.want)}[tc.want == -2], m)
		}
	}
}

// Through unbound's ECS cache: one client's empty answer is never served to another client
// that gets addresses.
func TestEmptyAnswerThroughSubnetCache(t *testing.T) {
	s := runGTM(t, t.TempDir(), strings.Replace(seamsGeoCorefile, "%[3]s", "", 1), "www.gtm.test")
	ub := startSubnetUnbound(t, "127.0.54.1", "gtm.test.", s.port, "")
	for _, tc := range seamsCases {
		if m := ub.ask(tc.empty, tc.name, tc.qtype, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Fatalf("%s %s from %s: want NODATA first:\n%s", tc.name, dns.TypeToString[tc.qtype], tc.empty, m)
		}
		m := ub.ask(tc.other, tc.name, tc.qtype, false)
		if got := join(answers(m)); got != tc.want {
			t.Errorf("%s %s from %s after %s's empty answer: %q (rcode %s), want %q", tc.name,
				dns.TypeToString[tc.qtype], tc.other, tc.empty, got, dns.RcodeToString[m.Rcode], tc.want)
		}
	}
}

// The same through a validating unbound trusting the signed zone's DS: the other client's
// answer validates (AD) and has its addresses.
func TestEmptyAnswerThroughValidatingSubnetCache(t *testing.T) {
	dir := t.TempDir()
	base, key := makeKey(t, dir, "gtm.test.", true)
	s := runGTM(t, dir, strings.Replace(seamsGeoCorefile, "%[3]s",
		fmt.Sprintf("        dnssec {\n            key file %s\n        }", base), 1), "www.gtm.test")
	ub := startSubnetUnbound(t, "127.0.54.2", "gtm.test.", s.port, key.ToDS(dns.SHA256).String())
	for _, tc := range seamsCases {
		m := ub.ask(tc.empty, tc.name, tc.qtype, true)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || !m.AuthenticatedData {
			t.Fatalf("%s %s from %s: want a validated NODATA first:\n%s", tc.name, dns.TypeToString[tc.qtype], tc.empty, m)
		}
		m = ub.ask(tc.other, tc.name, tc.qtype, true)
		var got []string
		for _, rr := range m.Answer {
			if rr.Header().Rrtype != dns.TypeRRSIG {
				got = append(got, answers(&dns.Msg{Answer: []dns.RR{rr}})...)
			}
		}
		if join(got) != tc.want || !m.AuthenticatedData {
			t.Errorf("%s %s from %s after %s's empty answer: %q (rcode %s, AD %v), want %q validated", tc.name,
				dns.TypeToString[tc.qtype], tc.other, tc.empty, join(got), dns.RcodeToString[m.Rcode], m.AuthenticatedData, tc.want)
		}
	}
}

// startNamed runs BIND's named as a forward-only resolver for zone to gtm, with validation
// when anchor (a DS record's text) is set, and returns it as a stub. named listens only on
// addresses of the host's interfaces: 127.0.0.1, on a port of its own.
func startNamed(t *testing.T, zone string, gtmPort int, anchor string) *stub {
	t.Helper()
	named := requireTool(t, "named", "bind9")
	ip := "127.0.0.1"
	port := freeUDPPort(t, ip)
	dir := t.TempDir()
	validation := "no"
	anchors := ""
	if anchor != "" {
		validation = "yes"
		ds, err := dns.NewRR(anchor)
		if err != nil {
			t.Fatal(err)
		}
		d := ds.(*dns.DS)
		anchors = fmt.Sprintf("trust-anchors {\n  %q static-ds %d %d %d %q;\n};\n", d.Hdr.Name, d.KeyTag, d.Algorithm, d.DigestType, d.Digest)
	}
	conf := writeFile(t, filepath.Join(dir, "named.conf"), fmt.Sprintf(`options {
  directory "%[1]s";
  pid-file none;
  listen-on port %[2]d { %[3]s; };
  listen-on-v6 { none; };
  recursion yes;
  allow-query { any; };
  allow-recursion { any; };
  dnssec-validation %[4]s;
  qname-minimization off;
  notify no;
};
controls { };
%[5]szone "%[6]s" {
  type forward;
  forward only;
  forwarders { 127.0.0.1 port %[7]d; };
};
`, dir, port, ip, validation, anchors, zone, gtmPort))
	out := &syncBuffer{}
	cmd := exec.Command(named, "-g", "-n", "1", "-4", "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("named on %s:\n%s", ip, out.String())
		}
	})
	s := &stub{t: t, addr: fmt.Sprintf("%s:%d", ip, port), out: out}
	waitResolver(t, s, zone)
	return s
}

// seamsFileCorefile is the README's setup: gtm with fallthrough before file, which holds the
// zone's SOA, NS and MX; the managed name is not in the file.
const seamsFileCorefile = `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        fallthrough
%[3]s
        pool web {
            address 192.0.2.1
            address 2001:db8::1
        }
        domain www.gtm.test {
            route default web
        }
    }
    file db.gtm.test
}
`

const seamsZoneFile = `$ORIGIN gtm.test.
@   300 IN SOA ns1.gtm.test. hostmaster.gtm.test. 1 3600 600 604800 60
@   300 IN NS  ns1.gtm.test.
@   300 IN MX  10 mail.gtm.test.
ns1 300 IN A   127.0.0.1
`

// With fallthrough, the next plugin's NXDOMAIN at a managed name becomes NODATA with the
// zone's SOA: through BIND, after the HTTPS query every browser sends, A and AAAA still answer.
func TestManagedNameNeverDenied(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(map[bool]string{false: "unsigned", true: "signed"}[signed], func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "db.gtm.test"), seamsZoneFile)
			keys, anchor := "", ""
			if signed {
				base, key := makeKey(t, dir, "gtm.test.", true)
				keys = fmt.Sprintf("        dnssec {\n            key file %s\n        }", base)
				anchor = key.ToDS(dns.SHA256).String()
			}
			s := runGTM(t, dir, strings.Replace(seamsFileCorefile, "%[3]s", keys, 1), "www.gtm.test")
			// Directly: every type gtm does not answer at www is NODATA with the zone's SOA.
			for _, qt := range []uint16{dns.TypeHTTPS, dns.TypeMX, dns.TypeTXT, dns.TypeSVCB, dns.TypeCAA, dns.TypeNS} {
				m := s.ask(query{name: "www.gtm.test", qtype: qt})
				if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("www %s: want NODATA with the SOA:\n%s", dns.TypeToString[qt], m)
				}
			}
			bind := startNamed(t, "gtm.test.", s.port, anchor)
			if m := bind.ask(jpClient, "www.gtm.test", dns.TypeHTTPS, signed); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
				t.Errorf("HTTPS www through BIND: want NODATA:\n%s", m)
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				m := bind.ask(jpClient, "www.gtm.test", qt, signed)
				want := map[uint16]string{dns.TypeA: "192.0.2.1", dns.TypeAAAA: "2001:db8::1"}[qt]
				var got []string
				for _, rr := range m.Answer {
					if rr.Header().Rrtype == qt {
						got = append(got, answers(&dns.Msg{Answer: []dns.RR{rr}})...)
					}
				}
				if m.Rcode != dns.RcodeSuccess || join(got) != want || signed && !m.AuthenticatedData {
					t.Errorf("www %s through BIND after HTTPS: rcode %s, %q, AD %v (want %s%s):\n%s", dns.TypeToString[qt],
						dns.RcodeToString[m.Rcode], join(got), m.AuthenticatedData, want, map[bool]string{true: ", validated"}[signed], m)
				}
			}
		})
	}
}

// The classic GSLB layout: the company zone, in another server block of the same server with
// cache and file, CNAMEs into the gtm zone. file's lookup of the target through the server is
// not a client's: gtm refuses it, file answers the CNAME alone, and the resolver asks for the
// target itself, with its ECS, and gets a scoped answer. No client gets another's address.
func TestOtherBlockLookupNeverLeaks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "db.other.test"), `$ORIGIN other.test.
@     300 IN SOA ns1.other.test. hostmaster.other.test. 1 3600 600 604800 60
@     300 IN NS  ns1.other.test.
ns1   300 IN A   127.0.0.1
alias 300 IN CNAME geo.gtm.test.
`)
	s := runGTM(t, dir, `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        pool a {
            address 192.0.2.1
        }
        pool b {
            address 192.0.2.2
        }
        domain geo.gtm.test {
            route net:10.1.0.0/16 a
            route default b
        }
    }
}
other.test:%[1]d {
    bind 127.0.0.1
    cache 60
    file db.other.test
}
`, "geo.gtm.test")
	for _, subnet := range []string{"10.1.0.0/16", "10.2.0.0/16", "10.1.0.0/16"} {
		m := s.ask(query{name: "alias.other.test", qtype: dns.TypeA, subnet: subnet})
		for _, rr := range m.Answer {
			if a, ok := rr.(*dns.A); ok {
				t.Errorf("alias.other.test A for %s: the chain carries %s, an answer for some client, without ECS scope %d:\n%s", subnet, a.A, scope(m), m)
			}
		}
		if got := join(answers(m)); got != "geo.gtm.test." {
			t.Errorf("alias.other.test A for %s: %q, want the CNAME alone", subnet, got)
		}
	}
	// The resolver's own query for the target gets each client's answer, scoped.
	for subnet, want := range map[string]string{"10.1.0.0/16": "192.0.2.1", "10.2.0.0/16": "192.0.2.2"} {
		m := s.ask(query{name: "geo.gtm.test", qtype: dns.TypeA, subnet: subnet})
		if got := join(answers(m)); got != want || scope(m) <= 0 {
			t.Errorf("geo.gtm.test A for %s: %q scope %d, want %s with a scope", subnet, got, scope(m), want)
		}
	}
}

// soaTTLOf returns the TTL of the SOA in a negative answer's authority section (-1: none).
func soaTTLOf(m *dns.Msg) int {
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return int(rr.Header().Ttl)
		}
	}
	return -1
}

// Negative TTLs follow RFC 2308: min(SOA TTL, MINIMUM), MINIMUM above or below the block's
// ttl; `fallback nodata` answers with the domain's DEGRADED TTL.
func TestNegativeTTLs(t *testing.T) {
	for _, tc := range []struct {
		ttl, minimum int
	}{{30, 300}, {300, 30}} {
		t.Run(fmt.Sprintf("ttl %d minimum %d", tc.ttl, tc.minimum), func(t *testing.T) {
			s := runGTM(t, t.TempDir(), `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        geoip %[2]s
        ttl `+fmt.Sprint(tc.ttl)+`
        soa ns1.gtm.test. hostmaster.gtm.test. `+fmt.Sprint(tc.minimum)+`
        pool v4 {
            address 192.0.2.1
        }
        pool dead {
            address 192.0.2.9 disabled
        }
        domain www.gtm.test {
            route default v4
        }
        domain fb.gtm.test {
            fallback nodata
            ttl 30 5
            route default dead
        }
    }
}
`, "www.gtm.test")
			// min(SOA TTL, MINIMUM), where the SOA's own TTL is the block's ttl raised to
			// MINIMUM: the negative TTL is MINIMUM, above the ttl or below it.
			want := tc.minimum
			for _, q := range []query{
				{name: "www.gtm.test", qtype: dns.TypeAAAA}, // NODATA
				{name: "nope.gtm.test", qtype: dns.TypeA},   // NXDOMAIN
				{name: "gtm.test", qtype: dns.TypeMX},       // NODATA at the apex
			} {
				m := s.ask(q)
				if got := soaTTLOf(m); got != want || len(m.Answer) != 0 {
					t.Errorf("%s %s: negative TTL %d, want %d (MINIMUM %d, ttl %d):\n%s", q.name, dns.TypeToString[q.qtype], got, want, tc.minimum, tc.ttl, m)
				}
			}
			// The apex SOA itself: its TTL is not below MINIMUM, its MINIMUM is MINIMUM.
			m := s.ask(query{name: "gtm.test", qtype: dns.TypeSOA})
			if len(m.Answer) != 1 || m.Answer[0].(*dns.SOA).Minttl != uint32(tc.minimum) || m.Answer[0].Header().Ttl < uint32(tc.minimum) {
				t.Errorf("apex SOA: %v", m.Answer)
			}
			m = s.ask(query{name: "fb.gtm.test", qtype: dns.TypeA})
			if got := soaTTLOf(m); got != 5 || len(m.Answer) != 0 || m.Rcode != dns.RcodeSuccess {
				t.Errorf("fallback nodata: negative TTL %d, want the DEGRADED 5:\n%s", got, m)
			}
		})
	}
}

// Every RRSIG's original TTL is the TTL of the RRset it covers, above 3600 and below.
func TestRRSIGOriginalTTL(t *testing.T) {
	for _, ttl := range []int{86400, 60} {
		t.Run(fmt.Sprint(ttl), func(t *testing.T) {
			dir := t.TempDir()
			base, _ := makeKey(t, dir, "gtm.test.", true)
			s := runGTM(t, dir, `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        ttl `+fmt.Sprint(ttl)+`
        ns ns1.gtm.test 127.0.0.1
        dnssec {
            key file `+base+`
        }
        pool v4 {
            address 192.0.2.1
        }
        domain www.gtm.test {
            route default v4
        }
    }
}
`, "www.gtm.test")
			for _, q := range []struct {
				name  string
				qtype uint16
			}{
				{"www.gtm.test.", dns.TypeA}, {"www.gtm.test.", dns.TypeAAAA}, {"nope.gtm.test.", dns.TypeA},
				{"gtm.test.", dns.TypeSOA}, {"gtm.test.", dns.TypeNS}, {"gtm.test.", dns.TypeDNSKEY},
				{"ns1.gtm.test.", dns.TypeA},
			} {
				m := new(dns.Msg)
				m.SetQuestion(q.name, q.qtype)
				m.SetEdns0(4096, true)
				r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, s.udp)
				if err != nil {
					t.Fatal(err)
				}
				sigs := 0
				for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
					for _, rr := range sec {
						sig, ok := rr.(*dns.RRSIG)
						if !ok {
							continue
						}
						sigs++
						for _, covered := range sec {
							h := covered.Header()
							if h.Rrtype == sig.TypeCovered && h.Name == sig.Hdr.Name && sig.OrigTtl != h.Ttl {
								t.Errorf("%s %s: RRSIG over %s %s has original TTL %d, the RRset's TTL is %d", q.name,
									dns.TypeToString[q.qtype], h.Name, dns.TypeToString[h.Rrtype], sig.OrigTtl, h.Ttl)
							}
						}
					}
				}
				if sigs == 0 {
					t.Errorf("%s %s: no RRSIG:\n%s", q.name, dns.TypeToString[q.qtype], r)
				}
			}
		})
	}
}

// `fallback servfail` is not authoritative; the apex NS answer carries glue for in-zone
// name servers.
func TestServFailAndGlue(t *testing.T) {
	s := runGTM(t, t.TempDir(), `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        ns ns1.gtm.test 127.0.0.1 ::1
        ns ns2.elsewhere.example.
        pool dead {
            address 192.0.2.9 disabled
        }
        domain closed.gtm.test {
            fallback servfail
            route default dead
        }
    }
}
`, "gtm.test")
	if m := s.ask(query{name: "closed.gtm.test", qtype: dns.TypeA}); m.Rcode != dns.RcodeServerFailure || m.Authoritative {
		t.Errorf("fallback servfail: rcode %s AA %v, want SERVFAIL without AA", dns.RcodeToString[m.Rcode], m.Authoritative)
	}
	m := s.ask(query{name: "gtm.test", qtype: dns.TypeNS})
	var glue []string
	for _, rr := range m.Extra {
		switch x := rr.(type) {
		case *dns.A:
			glue = append(glue, x.Hdr.Name+" "+x.A.String())
		case *dns.AAAA:
			glue = append(glue, x.Hdr.Name+" "+x.AAAA.String())
		}
	}
	if len(m.Answer) != 2 || join(glue) != "ns1.gtm.test. 127.0.0.1 ns1.gtm.test. ::1" {
		t.Errorf("apex NS: %d NS, glue %q (want ns1's two addresses):\n%s", len(m.Answer), glue, m)
	}
}

// serialOf is the apex SOA's serial.
func serialOf(t *testing.T, s *server) uint32 {
	t.Helper()
	m := s.ask(query{name: "gtm.test", qtype: dns.TypeSOA})
	if len(m.Answer) != 1 {
		t.Fatalf("apex SOA: %v", m)
	}
	return m.Answer[0].(*dns.SOA).Serial
}

// Without cluster, the SOA serial is derived from the configuration: two servers started at
// different times with the same configuration answer the same serial, another configuration
// another serial.
func TestSerialFromConfiguration(t *testing.T) {
	conf := func(addr string) string {
		return `gtm.test:%[1]d {
    bind 127.0.0.1
    gtm {
        pool v4 {
            address ` + addr + `
        }
        domain www.gtm.test {
            route default v4
        }
    }
}
`
	}
	a := runGTM(t, t.TempDir(), conf("192.0.2.1"), "www.gtm.test")
	time.Sleep(1100 * time.Millisecond) // a serial from the clock would differ by now
	b := runGTM(t, t.TempDir(), conf("192.0.2.1"), "www.gtm.test")
	c := runGTM(t, t.TempDir(), conf("192.0.2.2"), "www.gtm.test")
	sa, sb, sc := serialOf(t, a.server), serialOf(t, b.server), serialOf(t, c.server)
	if sa != sb || sa == sc {
		t.Errorf("serials: same config %d and %d (want equal), other config %d (want different)", sa, sb, sc)
	}
}

// With cluster, the SOA serial is the state revision in force: every node of the fleet that
// applied the same state answers the same serial, and a write changes it.
func TestClusterSerialIsRevision(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us")
	a, b := f.node("a"), f.node("b")
	serial := func(n *fleetNode) uint32 {
		m, err := n.q.exchange(query{name: "gtm.example.net", qtype: dns.TypeSOA})
		if err != nil || len(m.Answer) != 1 {
			t.Fatalf("node %s: apex SOA: %v %v", n.name, m, err)
		}
		return m.Answer[0].(*dns.SOA).Serial
	}
	agree := func() string {
		ra, rb := a.mustCluster().Revision, b.mustCluster().Revision
		sa, sb := serial(a), serial(b)
		if ra != rb || sa != sb || int64(sa) != ra {
			return fmt.Sprintf("revisions a %d b %d, serials a %d b %d", ra, rb, sa, sb)
		}
		return ""
	}
	// Right after start the nodes may report different revisions for the same state (each
	// read it at its own etcd revision); the first write brings both to one revision.
	before := serial(a)
	a.must(201, "PUT", "/api/v1/config/pools/web", webPool)
	eventually(t, 10*time.Second, func() string {
		if s := serial(b); s == before {
			return fmt.Sprintf("serial on b still %d after a write", s)
		}
		return agree()
	})
}
