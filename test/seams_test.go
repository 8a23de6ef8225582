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
		{"www.gtm.test", dns.TypeAAAA, "1.0.16.0/24", -2}, // JP: jp4 has no IPv6
		{"fenced.gtm.test", dns.TypeA, "81.2.69.0/24", -2}, // GB: fenced
		{"fb.gtm.test", dns.TypeA, "1.0.16.0/24", -2},      // JP: fallback nodata
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
