package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/testtool"

	"github.com/miekg/dns"
)

const signedZoneName = "gtm.example.net."

// signedServer is the built binary serving a signed gtm zone with two keys (a rollover in
// progress: both published, both signing).
type signedServer struct {
	*server
	keys []*dns.DNSKEY
	port int
	dir  string
}

// makeKey creates a key pair for zone in dir with dnssec-keygen when bind9's tools are
// there, else with miekg/dns in the same BIND format, and returns the base name and key.
func makeKey(t *testing.T, dir, zone string, ksk bool) (string, *dns.DNSKEY) {
	t.Helper()
	var base string
	if kg, err := exec.LookPath("dnssec-keygen"); err == nil {
		args := []string{"-q", "-K", dir, "-a", "ECDSAP256SHA256"}
		if ksk {
			args = append(args, "-f", "KSK")
		}
		out, err := exec.Command(kg, append(args, zone)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dnssec-keygen: %v\n%s", err, out)
		}
		base = filepath.Join(dir, strings.TrimSpace(string(out)))
	} else {
		flags := uint16(256)
		if ksk {
			flags = 257
		}
		k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
		priv, err := k.Generate(256)
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", zone, k.Algorithm, k.KeyTag()))
		writeFile(t, base+".key", k.String()+"\n")
		writeFile(t, base+".private", k.PrivateKeyString(priv))
	}
	f, err := os.Open(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rr, err := dns.ReadRR(f, base+".key")
	if err != nil {
		t.Fatal(err)
	}
	return base, rr.(*dns.DNSKEY)
}

// startSigned runs the binary on 127.0.0.1 with a signed gtm zone.
func startSigned(t *testing.T) *signedServer {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	b1, k1 := makeKey(t, dir, signedZoneName, true)
	b2, k2 := makeKey(t, dir, signedZoneName, true)
	port := freePort(t)
	conf := writeFile(t, filepath.Join(dir, "Corefile"), fmt.Sprintf(`gtm.example.net:%d {
  bind 127.0.0.1
  gtm {
    ns ns1.gtm.example.net 127.0.0.1
    dnssec {
      key file %s.key %s.private
    }
    pool web {
      lb all
      address 192.0.2.1
      address 192.0.2.2
      address 2001:db8::1
    }
    pool to-web {
      address web.gtm.example.net
    }
    pool to-missing {
      address missing.gtm.example.net
    }
    domain web.gtm.example.net {
      route default web
    }
    domain www.gtm.example.net {
      route default to-web
    }
    domain gone.gtm.example.net {
      route default to-missing
    }
  }
}
`, port, b1, b2))
	var out syncBuffer
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &server{t: t, udp: addr, tcp: addr}
	eventually(t, 20*time.Second, func() string {
		if _, err := s.exchange(query{name: "web.gtm.example.net", qtype: dns.TypeA}); err != nil {
			return "not answering: " + err.Error() + "\n" + out.String()
		}
		return ""
	})
	return &signedServer{server: s, keys: []*dns.DNSKEY{k1, k2}, port: port, dir: dir}
}

// askDO sends a query with the DO bit (and ECS when subnet is set) over UDP.
func (s *signedServer) askDO(name string, qtype uint16, subnet string) *dns.Msg {
	s.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	if subnet != "" {
		_, n, _ := net.ParseCIDR(subnet)
		bits, _ := n.Mask.Size()
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(bits), Address: n.IP})
	}
	r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, s.udp)
	if err != nil {
		s.t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// checkSigned verifies every RRset of the answer and authority sections with every key:
// an RRSIG for it that verifies and is in its validity period.
func checkSigned(t *testing.T, m *dns.Msg, keys []*dns.DNSKEY) {
	t.Helper()
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		sets := map[string][]dns.RR{}
		var sigs []*dns.RRSIG
		for _, rr := range sec {
			if s, ok := rr.(*dns.RRSIG); ok {
				sigs = append(sigs, s)
				continue
			}
			k := strings.ToLower(rr.Header().Name) + " " + dns.TypeToString[rr.Header().Rrtype]
			sets[k] = append(sets[k], rr)
		}
		if len(sets) > 0 && len(sigs) == 0 {
			t.Errorf("no RRSIG at all:\n%s", m)
		}
		for k, set := range sets {
			for _, key := range keys {
				i := slices.IndexFunc(sigs, func(s *dns.RRSIG) bool {
					return s.KeyTag == key.KeyTag() && strings.ToLower(s.Hdr.Name)+" "+dns.TypeToString[s.TypeCovered] == k
				})
				if i < 0 {
					t.Errorf("%s: no RRSIG by key %d:\n%s", k, key.KeyTag(), m)
					continue
				}
				if sigs[i].SignerName != signedZoneName {
					t.Errorf("%s: signer %s", k, sigs[i].SignerName)
				}
				if err := sigs[i].Verify(key, set); err != nil {
					t.Errorf("%s: RRSIG by key %d does not verify: %v", k, key.KeyTag(), err)
				}
				if !sigs[i].ValidityPeriod(time.Now()) {
					t.Errorf("%s: RRSIG not valid now: %s", k, sigs[i])
				}
			}
		}
	}
}

// checkDenied verifies the NSEC black lie for name and qtype: the NSEC owns name, covers
// only it (next \000.name) and has neither qtype nor CNAME in its bit map.
func checkDenied(t *testing.T, m *dns.Msg, name string, qtype uint16) {
	t.Helper()
	for _, rr := range m.Ns {
		n, ok := rr.(*dns.NSEC)
		if !ok || !strings.EqualFold(n.Hdr.Name, name) {
			continue
		}
		if n.NextDomain != `\000.`+name {
			t.Errorf("NSEC %s does not deny exactly %s", n, name)
		}
		if slices.Contains(n.TypeBitMap, qtype) || slices.Contains(n.TypeBitMap, dns.TypeCNAME) {
			t.Errorf("NSEC %s lists %s or CNAME", n, dns.TypeToString[qtype])
		}
		return
	}
	t.Errorf("no NSEC for %s:\n%s", name, m)
}

func TestDNSSECEndToEnd(t *testing.T) {
	s := startSigned(t)

	// The DNSKEY RRset at the apex: both keys, signed by both.
	m := s.askDO(signedZoneName, dns.TypeDNSKEY, "")
	var tags []uint16
	for _, rr := range m.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok {
			tags = append(tags, k.KeyTag())
		}
	}
	want := []uint16{s.keys[0].KeyTag(), s.keys[1].KeyTag()}
	slices.Sort(tags)
	slices.Sort(want)
	if !slices.Equal(tags, want) {
		t.Fatalf("DNSKEY tags %v, want %v:\n%s", tags, want, m)
	}
	checkSigned(t, m, s.keys)

	cases := []struct {
		name    string
		qtype   uint16
		answers []uint16
		denied  string
	}{
		{"web.gtm.example.net.", dns.TypeA, []uint16{dns.TypeA, dns.TypeA}, ""},
		{"web.gtm.example.net.", dns.TypeAAAA, []uint16{dns.TypeAAAA}, ""},
		{"www.gtm.example.net.", dns.TypeA, []uint16{dns.TypeCNAME, dns.TypeA, dns.TypeA}, ""},
		{"gone.gtm.example.net.", dns.TypeA, []uint16{dns.TypeCNAME}, "missing.gtm.example.net."},
		{"nope.gtm.example.net.", dns.TypeA, nil, "nope.gtm.example.net."},
		{"web.gtm.example.net.", dns.TypeTXT, nil, "web.gtm.example.net."},
		{"gtm.example.net.", dns.TypeMX, nil, "gtm.example.net."},
		{"gtm.example.net.", dns.TypeSOA, []uint16{dns.TypeSOA}, ""},
		{"ns1.gtm.example.net.", dns.TypeA, []uint16{dns.TypeA}, ""},
	}
	for _, tc := range cases {
		for _, subnet := range []string{"", "198.51.100.0/24"} {
			t.Run(tc.name+dns.TypeToString[tc.qtype]+"/ecs="+subnet, func(t *testing.T) {
				m := s.askDO(tc.name, tc.qtype, subnet)
				if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
					t.Errorf("rcode %s aa %v, want NOERROR aa", dns.RcodeToString[m.Rcode], m.Authoritative)
				}
				var types []uint16
				for _, rr := range m.Answer {
					if rr.Header().Rrtype != dns.TypeRRSIG {
						types = append(types, rr.Header().Rrtype)
					}
				}
				if !slices.Equal(types, tc.answers) {
					t.Errorf("answer types %v, want %v:\n%s", types, tc.answers, m)
				}
				checkSigned(t, m, s.keys)
				if tc.denied != "" {
					checkDenied(t, m, tc.denied, tc.qtype)
				}
				o := m.IsEdns0()
				if o == nil || !o.Do() {
					t.Errorf("no DO in the reply's OPT")
				}
				if subnet != "" && scope(m) < 0 {
					t.Errorf("the signed answer lost the ECS option:\n%s", m)
				}
			})
		}
	}

	// Without DO nothing is signed and NXDOMAIN stays NXDOMAIN.
	for _, q := range []query{{name: "web.gtm.example.net", qtype: dns.TypeA, edns: true}, {name: "nope.gtm.example.net", qtype: dns.TypeA}} {
		m := s.ask(q)
		for _, rr := range append(m.Answer, m.Ns...) {
			if typ := rr.Header().Rrtype; typ == dns.TypeRRSIG || typ == dns.TypeNSEC {
				t.Errorf("%s without DO: %s", q.name, rr)
			}
		}
		if q.name == "nope.gtm.example.net" && m.Rcode != dns.RcodeNameError {
			t.Errorf("nope without DO: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
		}
	}
	// The keys are published without DO too (dig DNSKEY | dnssec-dsfromkey -f - works).
	if m := s.ask(query{name: signedZoneName, qtype: dns.TypeDNSKEY}); len(m.Answer) != 2 {
		t.Errorf("DNSKEY without DO:\n%s", m)
	}
}

// validatedCase is a query through the validating resolver and how many records (RRSIGs
// aside) its answer holds.
type validatedCase struct {
	name  string
	qtype uint16
	n     int
}

// expectValidated asks resolve each case: NOERROR, AD, and the records wanted.
func expectValidated(t *testing.T, resolve func(string, uint16) (*dns.Msg, error), cases []validatedCase) {
	t.Helper()
	for _, tc := range cases {
		r, err := resolve(tc.name, tc.qtype)
		if err != nil {
			t.Errorf("%s %s: %v", tc.name, dns.TypeToString[tc.qtype], err)
			continue
		}
		n := 0
		for _, rr := range r.Answer {
			if rr.Header().Rrtype != dns.TypeRRSIG {
				n++
			}
		}
		if r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData || n != tc.n {
			t.Errorf("%s %s through unbound: rcode %s, AD %v, %d records (want NOERROR, AD, %d):\n%s", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], r.AuthenticatedData, n, tc.n, r)
		}
	}
}

// requireTool finds a validator's binary. In CI (CI=true) a missing one fails the test:
// scripts/test-deps.sh installs it; elsewhere the test is skipped with what to install.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	testtool.Missing(t, fmt.Sprintf("%s is missing (Debian package %s): apt-get install %s or run bash scripts/test-deps.sh", name, pkg, pkg))
	return ""
}

// A real validating resolver, unbound, trusting the zone's DS and forwarding the zone to
// gtm as a stub, validates gtm's answers: AD on positive answers, on a CNAME chain, and on
// the NSEC denials.
func TestDNSSECValidatingResolver(t *testing.T) {
	ub := requireTool(t, "unbound", "unbound")
	s := startSigned(t)
	// The trust anchor is the DS of one of the keys, as the parent zone would publish it.
	resolve := startUnbound(t, ub, "127.0.53.1", s.keys[0].ToDS(dns.SHA256).String(), s.port)
	expectValidated(t, resolve, []validatedCase{
		{"web.gtm.example.net.", dns.TypeA, 2},
		{"web.gtm.example.net.", dns.TypeAAAA, 1},
		{"www.gtm.example.net.", dns.TypeA, 3},
		{"gone.gtm.example.net.", dns.TypeA, 1},
		{"nope.gtm.example.net.", dns.TypeA, 0},
		{"web.gtm.example.net.", dns.TypeTXT, 0},
		{"gtm.example.net.", dns.TypeDNSKEY, 2},
	})

	// The same resolver trusting a key gtm does not hold finds the answers bogus: SERVFAIL.
	_, wrong := makeKey(t, t.TempDir(), signedZoneName, true)
	resolve = startUnbound(t, ub, "127.0.53.2", wrong.ToDS(dns.SHA256).String(), s.port)
	if r, err := resolve("web.gtm.example.net.", dns.TypeA); err != nil || r.Rcode != dns.RcodeServerFailure || r.AuthenticatedData {
		t.Errorf("with a wrong trust anchor: %v %v, want SERVFAIL (bogus)", r, err)
	}
}

// startUnbound runs unbound as a validating resolver on ip (an unprivileged port) with the
// DS ds as trust anchor and gtm.example.net as a stub zone on gtm's port, and returns a
// function that resolves through it with DO.
func startUnbound(t *testing.T, ub, ip, ds string, gtmPort int) func(string, uint16) (*dns.Msg, error) {
	t.Helper()
	ln, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	dir := t.TempDir()
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
  val-log-level: 2
  num-threads: 1
  do-ip6: no
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor: "%s"
  val-permissive-mode: no
  harden-dnssec-stripped: yes
  qname-minimisation: no
remote-control:
  control-enable: no
stub-zone:
  name: "gtm.example.net."
  stub-addr: 127.0.0.1@%d
`, ip, port, dir, ds, gtmPort))
	var out syncBuffer
	cmd := exec.Command(ub, "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
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
	resolve := func(name string, qtype uint16) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, true)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, fmt.Sprintf("%s:%d", ip, port))
		if err == nil && r.Truncated { // as a stub resolver does: again over TCP
			r, _, err = (&dns.Client{Net: "tcp", Timeout: 3 * time.Second}).Exchange(m, fmt.Sprintf("%s:%d", ip, port))
		}
		return r, err
	}
	eventually(t, 15*time.Second, func() string {
		if _, err := resolve("gtm.example.net.", dns.TypeSOA); err != nil {
			return "unbound not answering: " + err.Error() + "\n" + out.String()
		}
		return ""
	})
	return resolve
}
