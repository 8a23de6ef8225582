package healthcheck

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultRcodes is what a dns check without `expect` accepts.
var DefaultRcodes = []int{dns.RcodeSuccess}

// ParseRcodes parses a dns check's `expect`: rcode names as miekg/dns spells them
// (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...; any case) or numbers, separated by commas.
func ParseRcodes(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		name := strings.ToUpper(strings.TrimSpace(part))
		code, ok := dns.StringToRcode[name]
		if !ok {
			n, err := strconv.Atoi(name)
			if err != nil || n < 0 || n > 4095 {
				return nil, fmt.Errorf("unknown rcode %q: expected rcode names such as NOERROR, NXDOMAIN or SERVFAIL, separated by commas", strings.TrimSpace(part))
			}
			code = n
		}
		if !slices.Contains(out, code) {
			out = append(out, code)
		}
	}
	return out, nil
}

// ParseQuery parses a dns check's `query NAME [TYPE]`: a domain name and a record type as
// miekg/dns spells it (A when it is left out). The name is returned fully qualified.
func ParseQuery(s string) (string, uint16, error) {
	f := strings.Fields(s)
	if len(f) < 1 || len(f) > 2 {
		return "", 0, fmt.Errorf("query %q: expected NAME [TYPE]", s)
	}
	name := dns.Fqdn(f[0])
	if _, ok := dns.IsDomainName(name); !ok {
		return "", 0, fmt.Errorf("query %q: %q is not a domain name", s, f[0])
	}
	qtype := dns.TypeA
	if len(f) == 2 {
		t, ok := dns.StringToType[strings.ToUpper(f[1])]
		if !ok || t == dns.TypeNone {
			return "", 0, fmt.Errorf("query %q: unknown type %q: expected a record type such as A, AAAA, TXT or SOA", s, f[1])
		}
		qtype = t
	}
	return name, qtype, nil
}

func (t *Template) qtype() uint16 {
	if t.QType == 0 {
		return dns.TypeA
	}
	return t.QType
}

func (t *Template) rcodes() []int {
	if len(t.Rcodes) == 0 {
		return DefaultRcodes
	}
	return t.Rcodes
}

// rcodeText names an rcode as miekg/dns does, or by number.
func rcodeText(code int) string {
	if s, ok := dns.RcodeToString[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}

// probeDNS asks the address the template's question over UDP (recursion desired, as a stub
// resolver asks) and judges the rcode and, with `answer`, the answer section.
func probeDNS(ctx context.Context, addr string, t *Template) (Result, error) {
	m := new(dns.Msg)
	m.SetQuestion(t.Query, t.qtype())
	m.RecursionDesired = true
	c := &dns.Client{Net: networkOf("udp", t.Source), UDPSize: dns.DefaultMsgSize}
	if src := t.Source; src.IsValid() {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: src.AsSlice()}}
	}
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
	}
	r, _, err := c.ExchangeContext(ctx, m, net.JoinHostPort(addr, strconv.Itoa(t.port())))
	if err != nil {
		err = sourceError(t.Source, addr, err)
		return classify(ctx, err), err
	}
	if !slices.Contains(t.rcodes(), r.Rcode) {
		return ResultStatus, fmt.Errorf("rcode %s", rcodeText(r.Rcode))
	}
	if t.Answer == nil || answerMatches(t.Answer.MatchString, r.Answer) {
		return ResultOK, nil
	}
	return ResultBody, fmt.Errorf("no answer record matches %q (%d in the answer section)", t.Answer.String(), len(r.Answer))
}

// answerMatches reports whether some record matches, as its whole text (rr.String(): "name
// TTL class type rdata", tab-separated) or as its rdata text alone, so both `^192\.0\.2\.1$`
// and `IN\s+A\s+192\.0\.2\.1` do what they say.
func answerMatches(match func(string) bool, rrs []dns.RR) bool {
	for _, rr := range rrs {
		text := rr.String()
		if match(text) || match(strings.TrimPrefix(text, rr.Header().String())) {
			return true
		}
	}
	return false
}
