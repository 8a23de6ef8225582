package config

import (
	"net/netip"
	"net/url"
	"regexp"
	"time"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

// Health from outside (PRODUCT.md Part 3): prometheus and push checks, max_rtt, vantage,
// and an address's check_address.

// validRegion is the rule for a vantage region: it is compared with a node's `region`.
var validRegion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// checkOutside validates url, the prometheus form of query and expect, max_rtt, vantage and
// what a push check does not take.
func (c *checker) checkOutside(h *HealthCheck) {
	at := h.lineOf
	switch h.Protocol {
	case "prometheus":
		u, err := url.Parse(h.URL)
		switch {
		case h.URL == "":
			c.add(h, "url", h.Line, "protocol prometheus needs a url (the Prometheus server, such as http://127.0.0.1:9090)")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			c.add(h, "url", at("url"), "url %q: expected an http:// or https:// URL such as http://127.0.0.1:9090", h.URL)
		case u.Scheme != "https" && h.TLSInsecure:
			c.add(h, "tls_insecure", at("tls_insecure"), "tls_insecure applies only to an https url")
		}
		if h.Query == "" {
			c.add(h, "query", h.Line, "protocol prometheus needs a query (PromQL; {{address}} is the address)")
		}
		if h.Expect == "" {
			c.add(h, "expect", h.Line, "protocol prometheus needs expect OP VALUE (such as < 0.05)")
		} else if _, err := healthcheck.ParseComparison(h.Expect); err != nil {
			c.add(h, "expect", at("expect"), "%v", err)
		}
		if h.Port != 0 {
			c.add(h, "port", at("port"), "port does not apply to prometheus: the port is part of url")
		}
	case "push":
		if h.Port != 0 {
			c.add(h, "port", at("port"), "port does not apply to push: verdicts are pushed, nothing is probed")
		}
		if h.SourceAddress != "" {
			c.add(h, "source_address", at("source"), "source does not apply to push: verdicts are pushed, nothing is probed")
		}
		if h.MaxRTT != 0 {
			c.add(h, "max_rtt", at("max_rtt"), "max_rtt does not apply to push: verdicts are pushed, nothing is probed")
		}
		if len(h.Vantage) > 0 {
			c.add(h, "vantage", at("vantage"), "vantage does not apply to push: every node sees the pushed verdict")
		}
	}
	if h.URL != "" && h.Protocol != "prometheus" {
		c.add(h, "url", at("url"), "url applies only to prometheus")
	}
	switch {
	case h.MaxRTT < 0:
		c.add(h, "max_rtt", at("max_rtt"), "max_rtt %s: expected a positive duration such as 200ms", durText(h.MaxRTT))
	case h.MaxRTT > 0 && h.Timeout > 0 && h.MaxRTT >= h.Timeout:
		c.add(h, "max_rtt", at("max_rtt"), "max_rtt %s must be less than timeout %s (a probe never takes longer than its timeout)", durText(h.MaxRTT), durText(h.Timeout))
	}
	if len(h.Vantage) > 0 && !c.env.Cluster {
		c.add(h, "vantage", at("vantage"), "vantage needs cluster: it names the regions of the fleet's nodes that probe and vote (cluster { region NAME })")
	}
	for i, r := range h.Vantage {
		switch {
		case !validRegion.MatchString(r):
			c.add(h, "vantage["+itoa(i)+"]", at("vantage"), "vantage %q: expected a region name (letters, digits, '.', '_' or '-')", r)
		case i > 0 && contains(h.Vantage[:i], r):
			c.add(h, "vantage["+itoa(i)+"]", at("vantage"), "vantage %q listed twice", r)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkAddress validates an address's check_address: an IP address, in a pool of IP
// addresses (a pool of names answers a CNAME, which the resolver follows to its own
// addresses: there is no address of ours to answer in place of the probed one).
func (c *checker) checkAddress(p *Pool, a Address, field string, line int) {
	if a.CheckAddress == "" {
		return
	}
	ip, _, _ := ParseAddress(a.Address)
	if !ip.IsValid() {
		c.add(p, field, line, "address %s: check_address applies only to IP addresses, not to a pool of domain names", a.Address)
		return
	}
	ca, err := netip.ParseAddr(a.CheckAddress)
	if err != nil || ca.Zone() != "" {
		c.add(p, field, line, "address %s: check_address %q: expected an IPv4 or IPv6 address", a.Address, a.CheckAddress)
	}
}

// CheckAddr is the canonical text of an address's check_address, "" when it has none or it
// is the address itself.
func (a *Address) CheckAddr() string {
	ca, err := netip.ParseAddr(a.CheckAddress)
	if err != nil {
		return ""
	}
	s := ca.Unmap().String()
	if s == AddressKey(a.Address) {
		return ""
	}
	return s
}

// MaxRTTOf is the template's max_rtt as a time.Duration.
func (h *HealthCheck) MaxRTTOf() time.Duration { return time.Duration(h.MaxRTT) }
