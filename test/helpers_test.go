// Package test holds end-to-end tests: real CoreDNS servers started from Corefiles, real
// health targets on loopback addresses, real mmdb files.
package test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	cdtest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"

	gtm "github.com/gtm-dns/coredns-gtm/plugin"
)

func init() { gtm.EnsureDirective() }

// server is a CoreDNS instance started in-process from a Corefile.
type server struct {
	t        *testing.T
	inst     *caddy.Instance
	udp, tcp string
}

// start runs a Corefile (use 127.0.0.1:0 as the server address) and stops it at cleanup.
func start(t *testing.T, corefile string) *server {
	t.Helper()
	inst, udp, tcp, err := cdtest.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v\n%s", err, corefile)
	}
	s := &server{t: t, inst: inst, udp: udp, tcp: tcp}
	// Stop alone leaves OnShutdown callbacks unrun (caddy runs them on signals and reloads):
	// run them, as the binary does on SIGTERM, so probers and listeners stop with the test.
	t.Cleanup(func() {
		s.inst.ShutdownCallbacks()
		s.inst.Stop()
	})
	return s
}

// reload restarts the instance with a new Corefile, as the reload plugin or SIGUSR1 do.
func (s *server) reload(corefile string) error {
	inst, err := s.inst.Restart(cdtest.NewInput(corefile))
	if err != nil {
		return err
	}
	s.inst = inst
	return nil
}

type query struct {
	name   string
	qtype  uint16
	tcp    bool
	subnet string // "203.0.113.0/24": add an ECS option
	edns   bool
}

func (s *server) ask(q query) *dns.Msg {
	s.t.Helper()
	m, err := s.exchange(q)
	if err != nil {
		s.t.Fatalf("query %s %s: %v", q.name, dns.TypeToString[q.qtype], err)
	}
	return m
}

func (s *server) exchange(q query) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(q.name), q.qtype)
	if q.edns || q.subnet != "" {
		m.SetEdns0(1232, false)
	}
	if q.subnet != "" {
		_, n, err := net.ParseCIDR(q.subnet)
		if err != nil {
			s.t.Fatal(err)
		}
		bits, _ := n.Mask.Size()
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, SourceNetmask: uint8(bits), Address: n.IP}
		e.Family = 1
		if n.IP.To4() == nil {
			e.Family = 2
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, e)
	}
	c := &dns.Client{Timeout: 3 * time.Second}
	addr := s.udp
	if q.tcp {
		c.Net, addr = "tcp", s.tcp
	}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// answers returns the A/AAAA/CNAME data of a response, in order.
func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch x := rr.(type) {
		case *dns.A:
			out = append(out, x.A.String())
		case *dns.AAAA:
			out = append(out, x.AAAA.String())
		case *dns.CNAME:
			out = append(out, x.Target)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

// scope returns the SCOPE PREFIX-LENGTH of the response's ECS option, or -1 without one.
func scope(m *dns.Msg) int {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
				return int(e.SourceScope)
			}
		}
	}
	return -1
}

// eventually polls f until it returns "" or the deadline passes; it returns how long it took.
func eventually(t *testing.T, within time.Duration, f func() string) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		if last = f(); last == "" {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not within %s: %s", within, last)
	return 0
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func join(s []string) string { return strings.Join(s, " ") }
