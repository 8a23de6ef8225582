package test

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawExchange sends m as it is (any opcode, any option) and returns the response.
func (s *server) rawExchange(m *dns.Msg, tcp bool) *dns.Msg {
	s.t.Helper()
	c := &dns.Client{Timeout: 3 * time.Second}
	addr := s.udp
	if tcp {
		c.Net, addr = "tcp", s.tcp
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		s.t.Fatalf("%s %s opcode %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], dns.OpcodeToString[m.Opcode], err)
	}
	return r
}

// gtm last in its server block, as an authoritative server is set up.
const lastCorefile = `.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool p {
            address 192.0.2.1
        }
        domain www.gtm.example.net {
            route default p
        }
    }
}`

// Zone transfers and NOTIFY are refused, as the file plugin refuses them without transfer;
// they used to get NOERROR with the SOA and an authoritative A answer.
func TestTransferAndNotifyRefused(t *testing.T) {
	s := start(t, lastCorefile)
	for _, tc := range []struct {
		name   string
		qtype  uint16
		opcode int
		tcp    bool
	}{
		{"gtm.example.net.", dns.TypeAXFR, dns.OpcodeQuery, true},
		{"gtm.example.net.", dns.TypeIXFR, dns.OpcodeQuery, true},
		{"gtm.example.net.", dns.TypeIXFR, dns.OpcodeQuery, false},
		{"gtm.example.net.", dns.TypeSOA, dns.OpcodeNotify, false},
		{"www.gtm.example.net.", dns.TypeA, dns.OpcodeNotify, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, tc.qtype)
		m.Opcode = tc.opcode
		r := s.rawExchange(m, tc.tcp)
		if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 || r.Authoritative {
			t.Errorf("%s %s opcode %s: want REFUSED with no answer, got\n%v", tc.name, dns.TypeToString[tc.qtype], dns.OpcodeToString[tc.opcode], r)
		}
	}
	// Ordinary queries are still answered.
	if m := s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}); join(answers(m)) != "192.0.2.1" {
		t.Fatalf("A after the refusals: %v", m)
	}
}

// A name outside gtm's zones with no plugin after gtm is REFUSED, as file answers it, not
// SERVFAIL.
func TestOutOfZoneLastPluginRefused(t *testing.T) {
	s := start(t, lastCorefile)
	for _, name := range []string{"example.org", "example.net", `foo\.gtm.example.net`} {
		m := s.ask(query{name: name, qtype: dns.TypeA})
		if m.Rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %s, want REFUSED", name, dns.RcodeToString[m.Rcode])
		}
	}
}
