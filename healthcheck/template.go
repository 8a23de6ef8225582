// Package healthcheck probes servers (HTTP, HTTPS, TCP, ICMP, DNS) and keeps their health state.
//
// One prober runs per distinct (address, template), shared by every pool that uses it and
// kept across configuration reloads through reference counting. A prober made for a changed
// template starts in the verdict of the address's previous one, so a reload never makes a
// dead server healthy. The query path reads the state through atomics only.
package healthcheck

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Protocol is how an address is probed.
type Protocol string

// Probe protocols.
const (
	HTTP  Protocol = "http"
	HTTPS Protocol = "https"
	TCP   Protocol = "tcp"
	ICMP  Protocol = "icmp"
	DNS   Protocol = "dns"
	// Prometheus judges an address by an instant query's value (prometheus.go).
	Prometheus Protocol = "prometheus"
	// Push takes the verdicts an outside system pushes through the API (push.go).
	Push Protocol = "push"
)

// CodeRange is an inclusive range of HTTP status codes.
type CodeRange struct{ Lo, Hi int }

// ParseExpect parses "200", "200-399", "200,204" or combinations such as "200-299,304".
func ParseExpect(s string) ([]CodeRange, error) {
	var out []CodeRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
			return nil, fmt.Errorf("bad status codes %q: expected codes from 100 to 599 such as 200, 200-399 or 200,204", part)
		}
		out = append(out, CodeRange{l, h})
	}
	return out, nil
}

// DefaultExpect is what a template without `expect` accepts.
var DefaultExpect = []CodeRange{{200, 399}}

// Template is a reusable health-check definition.
type Template struct {
	Name        string
	Protocol    Protocol
	Port        int            // 0: 80 for http, 443 for https
	Path        string         // default "/"
	Host        string         // Host header, and without its port TLS SNI; default: the address
	Expect      []CodeRange    // default 200-399
	Body        *regexp.Regexp // nil: no body check; matched against the first 64 KiB
	TLSInsecure bool
	Source      netip.Addr     // the local address probes leave from; invalid (zero): the system's choice
	Method      string         // http(s): GET (default), HEAD or POST
	Headers     []Header       // http(s): extra request headers, in order; Host sets the request's Host
	Query       string         // dns: the question's name, an FQDN
	QType       uint16         // dns: the question's type; 0: A
	Rcodes      []int          // dns: the accepted rcodes; default NOERROR
	Answer      *regexp.Regexp // dns: nil, or some answer record's text must match
	Count       int            // icmp: echo requests per probe; 0: 1
	Loss        int            // icmp: the most loss in percent that still counts as up
	Interval    time.Duration
	Timeout     time.Duration
	Fall, Rise  int

	URL     string        // prometheus: the server's base URL (the API is below it)
	PromQL  string        // prometheus: the instant query; {{address}} is the probed address
	Cmp     Comparison    // prometheus: `expect OP VALUE`
	MaxRTT  time.Duration // any protocol: 0, or a slower probe fails (ResultSlow)
	Vantage []string      // the regions whose nodes probe and vote; none: every node
	// Follow: this node is outside Vantage; it does not probe and takes the voters' verdict.
	Follow bool
}

// Fingerprint is the template's identity across reloads: every field that changes how a
// probe runs or is judged, but not the name.
func (t *Template) Fingerprint() string {
	body := ""
	if t.Body != nil {
		body = t.Body.String()
	}
	return fmt.Sprintf("%s|%d|%s|%s|%v|%q|%v|%s|%s|%s|%d|%d", t.Protocol, t.port(), t.path(), t.Host,
		t.expect(), body, t.TLSInsecure, t.source(), t.Interval, t.Timeout, t.Fall, t.Rise) + t.extra()
}

// checkKey identifies what a probe sends and how its answer is judged, without the timing
// and thresholds: two templates with one checkKey get the same result from a server. The
// source is part of it: a server may answer one local address and not another.
func (t *Template) checkKey() string {
	body := ""
	if t.Body != nil {
		body = t.Body.String()
	}
	return fmt.Sprintf("%s|%d|%s|%s|%v|%q|%v|%s", t.Protocol, t.port(), t.path(), t.Host, t.expect(), body, t.TLSInsecure, t.source()) + t.extra()
}

// extra is the identity of the settings added after the first release (method, headers,
// dns and icmp settings), empty when they are all at their defaults: a template that does
// not use them keeps the fingerprint it always had, so nodes of a fleet that run different
// versions during an upgrade still vote on the same key.
func (t *Template) extra() string {
	var b strings.Builder
	if m := t.method(); m != "GET" {
		fmt.Fprintf(&b, "|method=%s", m)
	}
	for _, h := range t.Headers {
		fmt.Fprintf(&b, "|header=%q:%q", h.Name, h.Value)
	}
	if t.Protocol == DNS {
		fmt.Fprintf(&b, "|query=%s/%d|rcodes=%v", t.Query, t.qtype(), t.rcodes())
		if t.Answer != nil {
			fmt.Fprintf(&b, "|answer=%q", t.Answer.String())
		}
	}
	if t.Protocol == ICMP && (t.count() != 1 || t.Loss != 0) {
		fmt.Fprintf(&b, "|count=%d|loss=%d", t.count(), t.Loss)
	}
	b.WriteString(t.outside())
	return b.String()
}

// Header is one extra request header of an http(s) check.
type Header struct{ Name, Value string }

// Methods are the request methods an http(s) check may use.
var Methods = []string{"GET", "HEAD", "POST"}

func (t *Template) method() string {
	if t.Method == "" {
		return "GET"
	}
	return t.Method
}

func (t *Template) count() int { return max(t.Count, 1) }

func (t *Template) port() int {
	switch {
	case t.Port != 0:
		return t.Port
	case t.Protocol == HTTP:
		return 80
	case t.Protocol == HTTPS:
		return 443
	case t.Protocol == DNS:
		return 53
	}
	return 0
}

// source is the source address's text, "" when there is none.
func (t *Template) source() string {
	if !t.Source.IsValid() {
		return ""
	}
	return t.Source.String()
}

func (t *Template) path() string {
	if t.Path == "" {
		return "/"
	}
	return t.Path
}

func (t *Template) expect() []CodeRange {
	if len(t.Expect) == 0 {
		return DefaultExpect
	}
	return t.Expect
}

func (t *Template) accepts(code int) bool {
	for _, r := range t.expect() {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// fall and rise: a pushed verdict applies at once.
func (t *Template) fall() int {
	if t.Protocol == Push {
		return 1
	}
	return max(t.Fall, 1)
}

func (t *Template) rise() int {
	if t.Protocol == Push {
		return 1
	}
	return max(t.Rise, 1)
}
