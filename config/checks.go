package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

// Checks are the health-check templates of a pool (`healthcheck NAME [NAME...]`), in order.
// JSON takes a name or a list of names; one name is written as a string (as before pools
// had several checks), several as a list.
type Checks []string

// IsZero reports whether there is no check (omitzero).
func (c Checks) IsZero() bool { return len(c) == 0 }

// Has reports whether name is one of the checks.
func (c Checks) Has(name string) bool { return slices.Contains(c, name) }

// MarshalJSON implements json.Marshaler.
func (c Checks) MarshalJSON() ([]byte, error) {
	if len(c) == 1 {
		return json.Marshal(c[0])
	}
	return json.Marshal([]string(c))
}

var errChecks = errors.New("expected a healthcheck name or a list of names")

// UnmarshalJSON implements json.Unmarshaler.
func (c *Checks) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errChecks
		}
		*c = nil
		if s != "" {
			*c = Checks{s}
		}
	default:
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			return errChecks
		}
		*c = Checks(l)
	}
	return nil
}

// ICMP limits.
const (
	MaxEchoCount = 100 // echo requests per probe
	MaxLoss      = 99  // percent: at 100 an icmp check could never fail
)

// checkSettings validates the settings of a template that only some protocols take:
// method and header (http, https), query and answer (dns), count and loss (icmp), and the
// rcodes of a dns check's expect.
func (c *checker) checkSettings(h *HealthCheck) {
	at := h.lineOf
	httpish := h.Protocol == "http" || h.Protocol == "https"
	if h.Method != "" {
		switch {
		case !httpish:
			c.add(h, "method", at("method"), "method applies only to http and https")
		case !slices.Contains(healthcheck.Methods, strings.ToUpper(h.Method)):
			c.add(h, "method", at("method"), "method %q: expected GET, HEAD or POST", h.Method)
		case strings.ToUpper(h.Method) == "HEAD" && h.Body != "":
			c.add(h, "body", at("body"), "body does not apply to method HEAD: a HEAD response has no body")
		}
	}
	for i, hd := range h.Header {
		field := "header[" + itoa(i) + "]"
		switch {
		case !httpish:
			c.add(h, field, at("header"), "header applies only to http and https")
			return
		case !httpguts.ValidHeaderFieldName(hd.Name):
			c.add(h, field+".name", at("header"), "header %q: not a valid header name", hd.Name)
		case !httpguts.ValidHeaderFieldValue(hd.Value):
			c.add(h, field+".value", at("header"), "header %s: value %q: not a valid header value", hd.Name, hd.Value)
		case strings.EqualFold(hd.Name, "Host") && h.Host != "":
			c.add(h, field+".name", at("header"), "header Host and host both set the Host header: use one")
		}
	}
	if h.Protocol == "dns" {
		if h.Query == "" {
			c.add(h, "query", h.Line, "protocol dns needs a query")
		} else if _, _, err := healthcheck.ParseQuery(h.Query); err != nil {
			c.add(h, "query", at("query"), "%v", err)
		}
		if h.Expect != "" {
			if _, err := healthcheck.ParseRcodes(h.Expect); err != nil {
				c.add(h, "expect", at("expect"), "expect %q: %v", h.Expect, err)
			}
		}
		if h.Answer != "" {
			if _, err := regexp.Compile(h.Answer); err != nil {
				c.add(h, "answer", at("answer"), "answer %q: %v", h.Answer, err)
			}
		}
		if h.Path != "" || h.Host != "" || h.Body != "" {
			c.add(h, "protocol", h.Line, "path, host and body apply only to http and https")
		}
	} else if h.Protocol == "prometheus" {
		if h.Answer != "" {
			c.add(h, "answer", at("answer"), "answer applies only to dns")
		}
	} else if h.Query != "" || h.Answer != "" {
		c.add(h, "protocol", h.Line, "query and answer apply only to dns")
	}
	if h.Protocol != "icmp" && (h.Count != 0 || h.Loss != 0) {
		c.add(h, "protocol", h.Line, "count and loss apply only to icmp")
		return
	}
	if h.Count < 0 || h.Count > MaxEchoCount {
		c.add(h, "count", at("count"), "count %q: expected a number from 1 to %d", itoa(h.Count), MaxEchoCount)
	}
	if h.Loss < 0 || h.Loss > MaxLoss {
		c.add(h, "loss", at("loss"), "loss %q: expected a percentage from 0 to %d", itoa(h.Loss), MaxLoss)
	}
}

// poolChecks validates a pool's health checks and its require rule.
func (c *checker) poolChecks(p *Pool, cfg *Config) {
	line := p.lineOf("healthcheck")
	for i, name := range p.HealthCheck {
		field := "healthcheck"
		if len(p.HealthCheck) > 1 {
			field += "[" + itoa(i) + "]"
		}
		switch {
		case slices.Contains(p.HealthCheck[:i], name):
			c.add(p, field, line, "healthcheck %q listed twice", name)
		case c.checks[name] == nil:
			c.add(p, field, line, "unknown healthcheck %q (healthchecks: %s)", name, listOrNone(names(cfg.HealthChecks)))
		}
	}
	if p.Require == "" {
		return
	}
	if len(p.HealthCheck) == 0 {
		c.add(p, "require", line, "require %q needs healthcheck NAME...", p.Require)
		return
	}
	if _, err := healthcheck.ParseRequire(string(p.Require), len(p.HealthCheck)); err != nil {
		c.add(p, "require", line, "%v", err)
	}
}

// RequireOf is the parsed require rule of a validated pool.
func (p *Pool) RequireOf() healthcheck.Require {
	r, _ := healthcheck.ParseRequire(string(p.Require), len(p.HealthCheck))
	return r
}

// QueryOf is the parsed query of a validated dns template (zero values otherwise).
func (h *HealthCheck) QueryOf() (string, uint16) {
	name, qtype, _ := healthcheck.ParseQuery(h.Query)
	return name, qtype
}

// Require is a pool's `require all|any|N` as written; "" is all. JSON takes "all", "any",
// "2" or 2, and writes a number as a number.
type Require string

// MarshalJSON implements json.Marshaler.
func (r Require) MarshalJSON() ([]byte, error) {
	if n, err := strconv.Atoi(string(r)); err == nil {
		return json.Marshal(n)
	}
	return json.Marshal(string(r))
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Require) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*r = Require(s)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("expected all, any or a number")
	}
	*r = Require(itoa(n))
	return nil
}
