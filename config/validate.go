package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// Error is one thing wrong with a configuration: which resource, which field, and what was
// found and expected. The Corefile adapter prints it with file:line, the API as JSON.
type Error struct {
	Resource string `json:"resource,omitempty"` // "pool eu"; "" for the whole configuration
	Field    string `json:"field,omitempty"`    // "addresses[2].weight"
	Line     int    `json:"-"`                  // Corefile line, 0 for API resources
	Message  string `json:"message"`            // the whole sentence, Resource included
	Local    string `json:"-"`                  // the sentence without the resource
}

func (e *Error) Error() string { return e.Message }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Errors is every error Validate found, in the order of the configuration.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Message
	}
	return strings.Join(msgs, "; ")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Env is what validation needs to know beyond the resources: the block's zones and the
// databases it opened.
type Env struct {
	Zones []string // lower-case FQDNs
	GeoIP bool     // a geoip database is configured
	ASN   bool     // an asn database is configured
	// Cluster: the block has a `cluster` (a template's vantage needs one).
	Cluster bool
}

type checker struct {
	errs Errors
	// the configuration's templates and pools by name (the first of a duplicated name, as
	// Config.HealthCheck and Config.Pool find it): lookups of references are map reads,
	// not scans, so a configuration of thousands of domains validates in linear time.
	checks map[string]*HealthCheck
	pools  map[string]*Pool
	env    Env
}

func newChecker(c *Config) *checker {
	ch := &checker{checks: make(map[string]*HealthCheck, len(c.HealthChecks)), pools: make(map[string]*Pool, len(c.Pools))}
	for _, h := range c.HealthChecks {
		if _, dup := ch.checks[h.Name]; !dup {
			ch.checks[h.Name] = h
		}
	}
	for _, p := range c.Pools {
		if _, dup := ch.pools[p.Name]; !dup {
			ch.pools[p.Name] = p
		}
	}
	return ch
}

func (c *checker) add(r Resource, field string, line int, format string, args ...any) {
	label := ""
	if r != nil {
		label = Label(r)
	}
	local := fmt.Sprintf(format, args...)
	msg := local
	if label != "" {
		msg = label + ": " + local
	}
	c.errs = append(c.errs, &Error{Resource: label, Field: field, Line: line, Message: msg, Local: local})
}

// Validate checks a whole configuration: every resource on its own, then the references
// between them and what the routes need of the block. It returns every error it finds.
func Validate(c *Config, env Env) Errors {
	ch := newChecker(c)
	ch.env = env
	seen := map[string]bool{}
	for _, h := range c.HealthChecks {
		ch.name(h, seen)
		ch.healthCheck(h)
	}
	for _, p := range c.Pools {
		ch.name(p, seen)
		ch.pool(p, c)
	}
	for _, d := range c.Domains {
		ch.name(d, seen)
		ch.domain(d, c, env)
	}
	ch.cnameLoops(c)
	return ch.errs
}

// cnameLoops refuses a domain whose pools of names lead back to it, directly or through
// other managed domains: answering it would be a CNAME loop (the query path stops such a
// chain too, but it is a configuration error).
func (c *checker) cnameLoops(cfg *Config) {
	if len(cfg.Domains) == 0 {
		return
	}
	byName := make(map[string]*Domain, len(cfg.Domains))
	for _, d := range cfg.Domains {
		byName[d.Name] = d
	}
	targets := func(d *Domain) []string {
		var out []string
		for _, r := range d.Routes {
			for _, pn := range r.Pools {
				if p := c.pools[pn]; p != nil {
					for _, a := range p.Addresses {
						if _, t, err := ParseAddress(a.Address); err == nil && t != "" {
							out = append(out, t)
						}
					}
				}
			}
		}
		return out
	}
	for _, d := range cfg.Domains {
		// Breadth-first from d's targets over managed domains, bounded by their number.
		seen := map[string]bool{}
		queue := targets(d)
		for len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			if t == d.Name {
				c.add(d, "routes", d.Line, "its pools of names lead back to %s: a CNAME loop", d.Name)
				break
			}
			if seen[t] || byName[t] == nil {
				continue
			}
			seen[t] = true
			queue = append(queue, targets(byName[t])...)
		}
	}
}

// validName is the rule for template and pool names: they appear in API paths, state keys
// and metric labels.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (c *checker) name(r Resource, seen map[string]bool) {
	m := r.meta()
	key := string(r.Kind()) + "/" + m.Name
	if seen[key] {
		c.add(nil, "", m.Line, "%s: duplicate name %q", r.Kind().Singular(), m.Name)
		return
	}
	seen[key] = true
	if r.Kind() != KindDomain && !validName.MatchString(m.Name) {
		c.add(nil, "", m.Line, "%s: name %q: expected 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Kind().Singular(), m.Name)
	}
}

func (c *checker) healthCheck(h *HealthCheck) {
	at := h.lineOf
	switch h.Protocol {
	case "http", "https", "tcp", "icmp", "dns", "prometheus", "push":
	case "":
		c.add(h, "protocol", h.Line, "missing protocol (http, https, tcp, icmp, dns, prometheus or push)")
		return
	default:
		c.add(h, "protocol", at("protocol"), "protocol %q: expected http, https, tcp, icmp, dns, prometheus or push", h.Protocol)
		return
	}
	httpish := h.Protocol == "http" || h.Protocol == "https"
	if h.Port < 0 || h.Port > 65535 {
		c.add(h, "port", at("port"), "port %q: expected 1-65535", itoa(h.Port))
	}
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		c.add(h, "path", at("path"), "path %q: expected an absolute path starting with /", h.Path)
	}
	if h.Expect != "" && h.Protocol != "dns" && h.Protocol != "prometheus" { // rcodes, OP VALUE: checkSettings, checkOutside
		if _, err := healthcheck.ParseExpect(h.Expect); err != nil {
			c.add(h, "expect", at("expect"), "expect %q: %v", h.Expect, err)
		}
	}
	if h.Body != "" {
		if _, err := regexp.Compile(h.Body); err != nil {
			c.add(h, "body", at("body"), "body %q: %v", h.Body, err)
		}
	}
	if h.Host != "" && strings.ContainsAny(h.Host, " \t/") {
		c.add(h, "host", at("host"), "host %q: expected a host name", h.Host)
	}
	if a, err := netip.ParseAddr(h.SourceAddress); h.SourceAddress != "" && (err != nil || a.Zone() != "") {
		c.add(h, "source_address", at("source"), "source %q: expected a local IP address such as 127.0.0.2", h.SourceAddress)
	}
	switch {
	case h.Protocol == "tcp" && h.Port == 0:
		c.add(h, "port", h.Line, "protocol tcp needs a port")
	case !httpish && h.Protocol != "dns" && h.Protocol != "prometheus" && (h.Expect != "" || h.Body != "" || h.Path != "" || h.Host != ""):
		c.add(h, "protocol", h.Line, "path, host, expect and body apply only to http and https")
	case h.Protocol != "https" && h.Protocol != "prometheus" && h.TLSInsecure:
		c.add(h, "tls_insecure", h.Line, "tls_insecure applies only to https")
	case h.Protocol == "icmp" && h.Port != 0:
		c.add(h, "port", h.Line, "icmp takes no port")
	}
	c.checkSettings(h)
	c.checkOutside(h)
	timing := max(at("interval"), at("timeout"))
	switch {
	case h.Interval <= 0:
		c.add(h, "interval", at("interval"), "interval %s: expected a positive duration such as 5s", durText(h.Interval))
	case h.Timeout <= 0:
		c.add(h, "timeout", at("timeout"), "timeout %s: expected a positive duration such as 2s", durText(h.Timeout))
	case h.Timeout >= h.Interval:
		c.add(h, "timeout", timing, "timeout %s must be less than interval %s", durText(h.Timeout), durText(h.Interval))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"fall", h.Fall}, {"rise", h.Rise}} {
		if f.v < 1 || f.v > MaxCount {
			c.add(h, f.name, at(f.name), "%s %q: expected a count from 1 to %d", f.name, itoa(f.v), MaxCount)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func durText(d Duration) string { b, _ := d.MarshalText(); return string(b) }

// ParseAddress reads a pool address: an IP address (IPv4-mapped IPv6 unmapped) or a fully
// qualified domain name, returned lower case with the final dot.
func ParseAddress(s string) (ip netip.Addr, target string, err error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return netip.Addr{}, "", fmt.Errorf("address %q: zoned IPv6 addresses cannot be answered", s)
		}
		return ip.Unmap(), "", nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(s, ".")); err == nil && strings.HasSuffix(s, ".") {
		// Read as a name it would be a CNAME target nobody can resolve.
		return netip.Addr{}, "", fmt.Errorf("address %q: an IP address takes no final dot (write %s)", s, ip)
	}
	name := strings.ToLower(dns.Fqdn(s))
	if _, ok := dns.IsDomainName(name); !ok || looksNumeric(strings.TrimSuffix(s, ".")) || s == "" {
		return netip.Addr{}, "", fmt.Errorf("address %q: not an IP address or domain name (expected an IPv4 or IPv6 address or a domain name)", s)
	}
	if strings.Count(name, ".") < 2 {
		// A single label is far more often a typo than a CNAME target worth answering.
		return netip.Addr{}, "", fmt.Errorf("address %q: expected an IPv4 or IPv6 address or a fully qualified domain name (at least two labels)", s)
	}
	return netip.Addr{}, name, nil
}

// AddressKey is the canonical text of an address: how the API, metrics and overrides name it.
func AddressKey(s string) string {
	ip, target, err := ParseAddress(s)
	switch {
	case err != nil:
		return s
	case ip.IsValid():
		return ip.String()
	}
	return strings.TrimSuffix(target, ".")
}

// looksNumeric catches malformed IP addresses such as 10.0.0.256, 1.2.3 or 127.0.50.1.
// that would otherwise pass as domain names.
func looksNumeric(s string) bool {
	return strings.Trim(s, "0123456789.") == "" || strings.Contains(s, ":")
}

func (c *checker) pool(p *Pool, cfg *Config) {
	at := p.lineOf
	if len(p.Addresses) == 0 && len(p.Members) == 0 {
		c.add(p, "addresses", p.Line, "no address (and no members)")
	}
	var hasIP, hasName bool
	seenIP := make(map[netip.Addr]bool, len(p.Addresses)) // by AddressKey: the canonical IP,
	seenName := map[string]bool{}                         // or the name without its dot
	for i, a := range p.Addresses {
		field := func(sub string) string { return "addresses[" + itoa(i) + "]" + sub } // only for errors
		line := a.Line
		if line == 0 {
			line = p.Line
		}
		ip, target, err := ParseAddress(a.Address)
		if err != nil {
			c.add(p, field(".address"), line, "%v", err)
			continue
		}
		if ip.IsValid() && seenIP[ip] || !ip.IsValid() && seenName[target] {
			c.add(p, field(".address"), line, "duplicate address %q", a.Address)
		}
		if ip.IsValid() {
			seenIP[ip] = true
		} else {
			seenName[target] = true
		}
		if ip.IsValid() {
			hasIP = true
		} else {
			hasName = true
		}
		if hasIP && hasName {
			c.add(p, field(".address"), line, "address %q: a pool holds either IP addresses or domain names, not both", a.Address)
			hasIP, hasName = ip.IsValid(), !ip.IsValid() // report each switch once
		}
		c.checkAddress(p, a, field(".check_address"), line)
		if a.Weight < 1 || a.Weight > MaxWeight {
			c.add(p, field(".weight"), line, "address %s: weight %q: expected a number from 1 to %d", a.Address, itoa(a.Weight), MaxWeight)
		}
		if a.Priority < 0 || a.Priority > MaxWeight {
			c.add(p, field(".priority"), line, "address %s: priority %q: expected a number from 0 to %d", a.Address, itoa(a.Priority), MaxWeight)
		}
	}
	if l := p.Location; l != nil && (l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180 || l.Lat != l.Lat || l.Lon != l.Lon) {
		c.add(p, "location", at("location"), "location %v %v: expected latitude -90..90 and longitude -180..180", l.Lat, l.Lon)
	}
	if _, ok := policy.ParseLB(p.LB); !ok {
		c.add(p, "lb", at("lb"), "lb %q: expected all, weighted, priority, random, fastest or hashed", p.LB)
	}
	if p.Answers < 0 || p.Answers > MaxAnswers {
		c.add(p, "answers", at("answers"), "answers %q: expected a number from 1 to %d", itoa(p.Answers), MaxAnswers)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"min_available", p.MinAvailable}, {"weight", p.Weight}} {
		if f.name == "min_available" && p.MinAvailablePercent != nil {
			c.poolFailover(p)
			continue
		}
		if f.v < 1 || f.v > MaxWeight {
			c.add(p, f.name, at(f.name), "%s %q: expected a number from 1 to %d", f.name, itoa(f.v), MaxWeight)
		}
	}
	if p.MinAvailablePercent == nil {
		c.poolFailover(p)
	}
	if len(p.Addresses) > 0 && len(p.Members) == 0 && p.MinAvailablePercent == nil && p.MinAvailable > len(p.Addresses) {
		c.add(p, "min_available", p.Line, "min_available %d exceeds its %d addresses", p.MinAvailable, len(p.Addresses))
	}
	if hasName && !hasIP && p.Answers > 1 {
		c.add(p, "answers", p.Line, "a pool of domain names answers one CNAME; answers must be 1")
	}
	c.poolChecks(p, cfg)
	c.members(p)
}

// IsCNAME reports whether the pool holds domain names (it answers CNAME).
func (p *Pool) IsCNAME() bool {
	for _, a := range p.Addresses {
		if ip, _, err := ParseAddress(a.Address); err == nil {
			return !ip.IsValid()
		}
	}
	return false
}

// InZones returns the longest zone holding name (lower-case FQDNs), or "".
func InZones(zones []string, name string) string {
	best := ""
	for _, z := range zones {
		if len(z) <= len(best) || len(z) > len(name) {
			continue
		}
		if policy.InZone(name, z) { // whole labels: `a\.gtm.test.` is not in gtm.test.
			best = z
		}
	}
	return best
}

// DomainName canonicalises a domain name as written (any case, final dot optional).
func DomainName(s string) (string, bool) {
	name := strings.ToLower(dns.Fqdn(s))
	if _, ok := dns.IsDomainName(name); !ok || s == "" {
		return name, false
	}
	return name, true
}

func (c *checker) domain(d *Domain, cfg *Config, env Env) {
	at := d.lineOf
	if _, ok := DomainName(d.Name); !ok {
		c.add(nil, "", d.Line, "domain: %q is not a domain name", d.Name)
		return
	}
	if InZones(env.Zones, d.Name) == "" {
		c.add(nil, "", d.Line, "domain %q is outside the zones %s", d.Name, strings.Join(env.Zones, ", "))
	}
	if d.TTL > MaxTTL {
		c.add(d, "ttl", at("ttl"), "ttl %d: expected seconds from 0 to %d", d.TTL, MaxTTL)
	}
	if len(d.Routes) == 0 {
		c.add(d, "routes", d.Line, "no route")
	}
	c.domainFailover(d, cfg)
	c.domainServices(d, cfg)
	for i, r := range d.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		line := r.Line
		if line == 0 {
			line = d.Line
		}
		s, err := policy.ParseSelector(r.Selector)
		if err != nil {
			c.add(d, field+".selector", line, "route: %v", err)
			continue
		}
		mode, ok := policy.ParseSelect(r.Select)
		if !ok {
			c.add(d, field+".select", line, "route %s: select %q: expected failover, weighted, nearest, fastest or all", r.Selector, r.Select)
		}
		if len(r.Pools) == 0 {
			c.add(d, field+".pools", line, "route %s: expected at least one POOL", r.Selector)
		}
		var pools []*Pool
		for j, pn := range r.Pools {
			if slices.Contains(r.Pools[:j], pn) {
				c.add(d, fmt.Sprintf("%s.pools[%d]", field, j), line, "route %s: pool %q listed twice", r.Selector, pn)
				continue
			}
			p := c.pools[pn]
			if p == nil {
				c.add(d, fmt.Sprintf("%s.pools[%d]", field, j), line, "route: unknown pool %q (pools: %s)", pn, listOrNone(names(cfg.Pools)))
				continue
			}
			pools = append(pools, p)
		}
		if ok && mode == policy.SelectAll {
			// The union of an address pool and a name pool is no valid answer: a CNAME
			// cannot sit beside A/AAAA records of the same name (RFC 1034 3.6.2).
			var ips, cnames []string
			for _, p := range pools {
				if p.IsCNAME() {
					cnames = append(cnames, p.Name)
				} else {
					ips = append(ips, p.Name)
				}
			}
			if len(ips) > 0 && len(cnames) > 0 {
				c.add(d, field+".select", line, "route %s: select all cannot mix pools of addresses (%s) with pools of domain names (%s)", r.Selector, strings.Join(ips, ", "), strings.Join(cnames, ", "))
			}
		}
		if !env.GeoIP && len(s.Continents)+len(s.Countries)+len(s.Regions) > 0 {
			c.add(d, field+".selector", line, "route %s: continent, country and region selectors need a geoip database", r.Selector)
		}
		if !env.ASN && len(s.ASNs) > 0 {
			c.add(d, field+".selector", line, "route %s: asn selectors need an asn database", r.Selector)
		}
		if ok && mode == policy.SelectNearest {
			if !env.GeoIP {
				c.add(d, field+".select", line, "route %s: select nearest needs a geoip database with locations", r.Selector)
			} else if !slices.ContainsFunc(pools, func(p *Pool) bool { return p.Location != nil }) {
				c.add(d, field+".select", line, "route %s: select nearest needs pools with a location", r.Selector)
			}
		}
	}
}

// References lists the resources that refer to the resource of kind called name, as labels
// ("domain www.gtm.example.net."), for the 409 of a delete.
func References(c *Config, k Kind, name string) []string {
	var out []string
	switch k {
	case KindHealthCheck:
		for _, p := range c.Pools {
			if p.HealthCheck.Has(name) {
				out = append(out, Label(p))
			}
		}
	case KindPool:
		for _, d := range c.Domains {
			for _, r := range d.Routes {
				if slices.Contains(r.Pools, name) {
					out = append(out, Label(d))
					break
				}
			}
		}
	}
	return out
}

func names[R Resource](list []R) []string {
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, r.meta().Name)
	}
	slices.Sort(out)
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none defined"
	}
	return strings.Join(names, ", ")
}
