package gtm

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/healthcheck"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// config is one gtm block as written, validated but not yet compiled.
type config struct {
	file    string
	root    string // the server block's `root`: relative FILE arguments are read below it
	zones   []string
	geoip   string
	asn     string
	dbLine  map[string]int // line of the geoip and asn directives, for errors found at setup
	ttl     uint32
	ecs     bool
	fall    fall.F
	api     *apiConfig
	checks  map[string]*healthcheck.Template
	pools   []*poolConfig
	domains []*domainConfig
}

type apiConfig struct {
	line       int
	stateLine  int
	addr       string
	token      string
	publicRead bool
	state      string
}

type poolConfig struct {
	name         string
	line         int
	addrs        []addrConfig
	lb           policy.LB
	answers      int
	minAvailable int
	weight       int
	hasLoc       bool
	lat, lon     float64
	check        string
	checkLine    int
	cname        bool
}

type addrConfig struct {
	text     string
	ip       netip.Addr
	target   string
	weight   int
	priority int
	disabled bool
}

type domainConfig struct {
	name   string
	line   int
	ttl    uint32
	hasTTL bool
	routes []routeConfig
}

type routeConfig struct {
	line     int
	selector policy.Selector
	pools    []string
	sel      policy.SelectMode
}

const (
	defaultTTL   = 30
	maxTTL       = 2147483647 // RFC 2181 section 8
	maxWeight    = 1_000_000
	maxAnswers   = 64
	defaultCheck = 10 * time.Second
)

// errAt formats an error for a line the dispenser has already left behind, the way
// caddy's Errf does for the current one.
func errAt(c *caddy.Controller, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", c.File(), line, fmt.Sprintf(format, args...))
}

// lineArgs returns the rest of the current line, and whether it ends in an opening brace.
func lineArgs(c *caddy.Controller) (args []string, block bool) {
	for c.NextArg() {
		if c.Val() == "{" {
			return args, true
		}
		args = append(args, c.Val())
	}
	return args, false
}

// eachLine walks a nested block whose opening brace lineArgs consumed, calling fn with each
// line's directive and arguments, until the closing brace.
func eachLine(c *caddy.Controller, what string, fn func(dir string, args []string) error) error {
	for c.Next() {
		if c.Val() == "}" {
			return nil
		}
		dir := c.Val()
		args, block := lineArgs(c)
		if block {
			return c.Errf("%s: unexpected block after %q", what, dir)
		}
		if err := fn(dir, args); err != nil {
			return err
		}
	}
	return c.Errf("%s: missing closing brace", what)
}

// parse reads one gtm block.
func parse(c *caddy.Controller) (*config, error) {
	cfg := &config{ttl: defaultTTL, ecs: true, checks: map[string]*healthcheck.Template{}, file: c.File(), root: dnsserver.GetConfig(c).Root}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for c.NextBlock() {
			if err := parseDirective(c, cfg); err != nil {
				return nil, err
			}
		}
	}
	if err := cfg.validate(c); err != nil {
		return nil, err
	}
	return cfg, nil
}

// path resolves a FILE argument as CoreDNS's file plugin does: relative to the server
// block's `root` when one is set, else to the working directory.
func (cfg *config) path(p string) string {
	if cfg.root != "" && !filepath.IsAbs(p) {
		return filepath.Join(cfg.root, p)
	}
	return p
}

func parseDirective(c *caddy.Controller, cfg *config) error {
	dir := c.Val()
	args, block := lineArgs(c)
	if block && dir != "api" && dir != "healthcheck" && dir != "pool" && dir != "domain" {
		return c.Errf("%q does not take a block", dir)
	}
	switch dir {
	case "geoip", "asn":
		if len(args) != 1 {
			return c.Errf("%s: expected one FILE argument, got %d", dir, len(args))
		}
		if cfg.dbLine == nil {
			cfg.dbLine = map[string]int{}
		}
		cfg.dbLine[dir] = c.Line()
		if dir == "geoip" {
			cfg.geoip = cfg.path(args[0])
		} else {
			cfg.asn = cfg.path(args[0])
		}
	case "ttl":
		if len(args) != 1 {
			return c.Errf("ttl: expected SECONDS")
		}
		t, err := parseTTL(args[0])
		if err != nil {
			return c.Errf("ttl: %v", err)
		}
		cfg.ttl = t
	case "ecs":
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return c.Errf("ecs: expected on or off, got %q", strings.Join(args, " "))
		}
		cfg.ecs = args[0] == "on"
	case "fallthrough":
		cfg.fall.SetZonesFromArgs(args)
	case "api":
		return parseAPI(c, cfg, args, block)
	case "healthcheck":
		return parseCheck(c, cfg, args, block)
	case "pool":
		return parsePool(c, cfg, args, block)
	case "domain":
		return parseDomain(c, cfg, args, block)
	default:
		return c.Errf("unknown directive %q; expected geoip, asn, ttl, ecs, api, fallthrough, healthcheck, pool or domain", dir)
	}
	return nil
}

func parseTTL(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxTTL {
		return 0, fmt.Errorf("bad TTL %q: expected seconds from 0 to %d", s, maxTTL)
	}
	return uint32(n), nil
}

func parseAPI(c *caddy.Controller, cfg *config, args []string, block bool) error {
	if cfg.api != nil {
		return c.Errf("api: only one api listener per gtm block")
	}
	if len(args) != 1 {
		return c.Errf("api: expected ADDRESS such as 127.0.0.1:8080")
	}
	if !validListenAddr(args[0]) {
		return c.Errf("api: bad address %q: expected HOST:PORT such as 127.0.0.1:8080", args[0])
	}
	a := &apiConfig{addr: args[0], line: c.Line()}
	cfg.api = a
	if !block {
		return nil
	}
	return eachLine(c, "api", func(dir string, args []string) error {
		switch dir {
		case "token_file":
			if len(args) != 1 {
				return c.Errf("api: token_file: expected FILE")
			}
			b, err := os.ReadFile(cfg.path(args[0]))
			if err != nil {
				return c.Errf("api: token_file: %v", err)
			}
			a.token = strings.TrimSpace(string(b))
			if a.token == "" {
				return c.Errf("api: token_file %q is empty", args[0])
			}
		case "public_read":
			if len(args) != 0 {
				return c.Errf("api: public_read takes no arguments")
			}
			a.publicRead = true
		case "state":
			if len(args) != 1 {
				return c.Errf("api: state: expected FILE")
			}
			a.state, a.stateLine = cfg.path(args[0]), c.Line()
		default:
			return c.Errf("api: unknown directive %q; expected token_file, public_read or state", dir)
		}
		return nil
	})
}

// validListenAddr accepts what net.Listen("tcp", s) accepts with an explicit port: HOST:PORT,
// [IPv6]:PORT or :PORT.
func validListenAddr(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p >= 0 && p <= 65535
}

func parseCheck(c *caddy.Controller, cfg *config, args []string, block bool) error {
	if len(args) != 1 {
		return c.Errf("healthcheck: expected NAME")
	}
	name := args[0]
	if _, dup := cfg.checks[name]; dup {
		return c.Errf("healthcheck: duplicate name %q", name)
	}
	t := &healthcheck.Template{Name: name, Interval: defaultCheck, Timeout: 2 * time.Second, Fall: 3, Rise: 2}
	cfg.checks[name] = t
	line := c.Line()
	var hasExpect, hasBody, hasPath, hasHost, hasInsecure, hasTimeout bool
	timingLine := line // the later of the interval and timeout lines, for the error
	if block {
		err := eachLine(c, "healthcheck "+name, func(dir string, args []string) error {
			one := func() (string, error) {
				if len(args) != 1 {
					return "", c.Errf("healthcheck %s: %s: expected one argument, got %d", name, dir, len(args))
				}
				return args[0], nil
			}
			switch dir {
			case "protocol":
				v, err := one()
				if err != nil {
					return err
				}
				switch v {
				case "http", "https", "tcp", "icmp":
					t.Protocol = healthcheck.Protocol(v)
				default:
					return c.Errf("healthcheck %s: protocol %q: expected http, https, tcp or icmp", name, v)
				}
			case "port":
				v, err := one()
				if err != nil {
					return err
				}
				p, err := strconv.Atoi(v)
				if err != nil || p < 1 || p > 65535 {
					return c.Errf("healthcheck %s: port %q: expected 1-65535", name, v)
				}
				t.Port = p
			case "path":
				v, err := one()
				if err != nil {
					return err
				}
				if !strings.HasPrefix(v, "/") {
					return c.Errf("healthcheck %s: path %q: expected an absolute path starting with /", name, v)
				}
				t.Path, hasPath = v, true
			case "host":
				v, err := one()
				if err != nil {
					return err
				}
				t.Host, hasHost = v, true
			case "expect":
				v, err := one()
				if err != nil {
					return err
				}
				codes, err := healthcheck.ParseExpect(v)
				if err != nil {
					return c.Errf("healthcheck %s: expect %q: %v", name, v, err)
				}
				t.Expect, hasExpect = codes, true
			case "body":
				if len(args) == 0 {
					return c.Errf("healthcheck %s: body: expected REGEXP", name)
				}
				expr := strings.Join(args, " ")
				re, err := regexp.Compile(expr)
				if err != nil {
					return c.Errf("healthcheck %s: body %q: %v", name, expr, err)
				}
				t.Body, hasBody = re, true
			case "tls_insecure":
				if len(args) != 0 {
					return c.Errf("healthcheck %s: tls_insecure takes no arguments", name)
				}
				t.TLSInsecure, hasInsecure = true, true
			case "interval", "timeout":
				v, err := one()
				if err != nil {
					return err
				}
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return c.Errf("healthcheck %s: %s %q: expected a positive duration such as 5s", name, dir, v)
				}
				if dir == "interval" {
					t.Interval = d
				} else {
					t.Timeout, hasTimeout = d, true
				}
				timingLine = c.Line()
			case "fall", "rise":
				v, err := one()
				if err != nil {
					return err
				}
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 100 {
					return c.Errf("healthcheck %s: %s %q: expected a count from 1 to 100", name, dir, v)
				}
				if dir == "fall" {
					t.Fall = n
				} else {
					t.Rise = n
				}
			default:
				return c.Errf("healthcheck %s: unknown directive %q; expected protocol, port, path, host, expect, body, tls_insecure, interval, timeout, fall or rise", name, dir)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if t.Protocol == "" {
		return errAt(c, line, "healthcheck %s: missing protocol (http, https, tcp or icmp)", name)
	}
	httpish := t.Protocol == "http" || t.Protocol == "https"
	switch {
	case t.Protocol == "tcp" && t.Port == 0:
		return errAt(c, line, "healthcheck %s: protocol tcp needs a port", name)
	case !httpish && (hasExpect || hasBody || hasPath || hasHost):
		return errAt(c, line, "healthcheck %s: path, host, expect and body apply only to http and https", name)
	case t.Protocol != "https" && hasInsecure:
		return errAt(c, line, "healthcheck %s: tls_insecure applies only to https", name)
	case t.Protocol == "icmp" && t.Port != 0:
		return errAt(c, line, "healthcheck %s: icmp takes no port", name)
	case t.Timeout >= t.Interval && hasTimeout:
		return errAt(c, timingLine, "healthcheck %s: timeout %s must be less than interval %s", name, t.Timeout, t.Interval)
	case t.Timeout >= t.Interval:
		// Only the interval was given, and it is at most the default timeout: a probe may
		// take half of it rather than make the operator spell out a timeout.
		t.Timeout = t.Interval / 2
	}
	return nil
}

func parsePool(c *caddy.Controller, cfg *config, args []string, block bool) error {
	if len(args) != 1 {
		return c.Errf("pool: expected NAME")
	}
	name := args[0]
	for _, p := range cfg.pools {
		if p.name == name {
			return c.Errf("pool: duplicate name %q (first defined on line %d)", name, p.line)
		}
	}
	p := &poolConfig{name: name, line: c.Line(), lb: policy.LBWeighted, minAvailable: 1, weight: 1}
	cfg.pools = append(cfg.pools, p)
	if !block {
		return c.Errf("pool %s: expected a block with at least one address", name)
	}
	var hasIP, hasName bool
	err := eachLine(c, "pool "+name, func(dir string, args []string) error {
		switch dir {
		case "address":
			a, err := parseAddress(c, name, args)
			if err != nil {
				return err
			}
			for _, o := range p.addrs {
				if o.text == a.text {
					return c.Errf("pool %s: duplicate address %q", name, args[0])
				}
			}
			if a.ip.IsValid() {
				hasIP = true
			} else {
				hasName = true
			}
			if hasIP && hasName {
				return c.Errf("pool %s: address %q: a pool holds either IP addresses or domain names, not both", name, args[0])
			}
			p.addrs = append(p.addrs, a)
		case "location":
			if len(args) != 2 {
				return c.Errf("pool %s: location: expected LAT LON in degrees", name)
			}
			lat, err1 := strconv.ParseFloat(args[0], 64)
			lon, err2 := strconv.ParseFloat(args[1], 64)
			if err1 != nil || err2 != nil || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
				return c.Errf("pool %s: location %q %q: expected latitude -90..90 and longitude -180..180", name, args[0], args[1])
			}
			p.hasLoc, p.lat, p.lon = true, lat, lon
		case "lb":
			if len(args) != 1 {
				return c.Errf("pool %s: lb: expected all, weighted, priority, random or fastest", name)
			}
			lb, ok := policy.ParseLB(args[0])
			if !ok {
				return c.Errf("pool %s: lb %q: expected all, weighted, priority, random or fastest", name, args[0])
			}
			p.lb = lb
		case "answers", "min_available", "weight":
			if len(args) != 1 {
				return c.Errf("pool %s: %s: expected a positive number", name, dir)
			}
			limit := maxWeight
			if dir == "answers" {
				limit = maxAnswers
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > limit {
				return c.Errf("pool %s: %s %q: expected a number from 1 to %d", name, dir, args[0], limit)
			}
			switch dir {
			case "answers":
				p.answers = n
			case "min_available":
				p.minAvailable = n
			default:
				p.weight = n
			}
		case "healthcheck":
			if len(args) != 1 {
				return c.Errf("pool %s: healthcheck: expected NAME", name)
			}
			p.check, p.checkLine = args[0], c.Line()
		default:
			return c.Errf("pool %s: unknown directive %q; expected address, location, lb, answers, healthcheck, min_available or weight", name, dir)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.cname = hasName
	switch {
	case len(p.addrs) == 0:
		return errAt(c, p.line, "pool %s: no address", name)
	case p.minAvailable > len(p.addrs):
		return errAt(c, p.line, "pool %s: min_available %d exceeds its %d addresses", name, p.minAvailable, len(p.addrs))
	case p.cname && p.answers > 1:
		return errAt(c, p.line, "pool %s: a pool of domain names answers one CNAME; answers must be 1", name)
	}
	return nil
}

func parseAddress(c *caddy.Controller, pool string, args []string) (addrConfig, error) {
	if len(args) == 0 {
		return addrConfig{}, c.Errf("pool %s: address: expected ADDR [weight W] [priority P] [disabled]", pool)
	}
	a := addrConfig{weight: 1}
	if ip, err := netip.ParseAddr(args[0]); err == nil {
		if ip.Zone() != "" {
			return a, c.Errf("pool %s: address %q: zoned IPv6 addresses cannot be answered", pool, args[0])
		}
		a.ip = ip.Unmap()
		a.text = a.ip.String()
	} else {
		name := strings.ToLower(dns.Fqdn(args[0]))
		if _, ok := dns.IsDomainName(name); !ok || looksNumeric(args[0]) {
			return a, c.Errf("pool %s: address %q: expected an IPv4 or IPv6 address or a domain name", pool, args[0])
		}
		if strings.Count(name, ".") < 2 {
			// A single label is far more often a typo than a CNAME target worth answering.
			return a, c.Errf("pool %s: address %q: expected an IPv4 or IPv6 address or a fully qualified domain name (at least two labels)", pool, args[0])
		}
		a.target = name
		a.text = strings.TrimSuffix(name, ".")
	}
	rest := args[1:]
	for len(rest) > 0 {
		switch rest[0] {
		case "weight", "priority":
			if len(rest) < 2 {
				return a, c.Errf("pool %s: address %s: %s: expected a number", pool, args[0], rest[0])
			}
			n, err := strconv.Atoi(rest[1])
			if rest[0] == "weight" {
				if err != nil || n < 1 || n > maxWeight {
					return a, c.Errf("pool %s: address %s: weight %q: expected a number from 1 to %d", pool, args[0], rest[1], maxWeight)
				}
				a.weight = n
			} else {
				if err != nil || n < 0 || n > maxWeight {
					return a, c.Errf("pool %s: address %s: priority %q: expected a number from 0 to %d", pool, args[0], rest[1], maxWeight)
				}
				a.priority = n
			}
			rest = rest[2:]
		case "disabled":
			a.disabled = true
			rest = rest[1:]
		default:
			return a, c.Errf("pool %s: address %s: unexpected %q; expected weight W, priority P or disabled", pool, args[0], rest[0])
		}
	}
	return a, nil
}

// looksNumeric catches malformed IP addresses such as 10.0.0.256 or 1.2.3 that would
// otherwise pass as domain names.
func looksNumeric(s string) bool {
	return strings.Trim(s, "0123456789.") == "" || strings.Contains(s, ":")
}

func parseDomain(c *caddy.Controller, cfg *config, args []string, block bool) error {
	if len(args) != 1 {
		return c.Errf("domain: expected NAME")
	}
	name := strings.ToLower(dns.Fqdn(args[0]))
	if _, ok := dns.IsDomainName(name); !ok {
		return c.Errf("domain: %q is not a domain name", args[0])
	}
	if plugin.Zones(cfg.zones).Matches(name) == "" {
		return c.Errf("domain %q is outside the zones %s", args[0], strings.Join(cfg.zones, ", "))
	}
	for _, d := range cfg.domains {
		if d.name == name {
			return c.Errf("domain: duplicate name %q (first defined on line %d)", args[0], d.line)
		}
	}
	d := &domainConfig{name: name, line: c.Line(), ttl: cfg.ttl}
	cfg.domains = append(cfg.domains, d)
	if !block {
		return c.Errf("domain %s: expected a block with at least one route", args[0])
	}
	err := eachLine(c, "domain "+args[0], func(dir string, args []string) error {
		switch dir {
		case "route":
			r, err := parseRoute(c, args)
			if err != nil {
				return err
			}
			d.routes = append(d.routes, r)
		case "ttl":
			if len(args) != 1 {
				return c.Errf("domain %s: ttl: expected SECONDS", name)
			}
			t, err := parseTTL(args[0])
			if err != nil {
				return c.Errf("domain %s: ttl: %v", name, err)
			}
			d.ttl, d.hasTTL = t, true
		default:
			return c.Errf("domain %s: unknown directive %q; expected route or ttl", name, dir)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(d.routes) == 0 {
		return errAt(c, d.line, "domain %s: no route", name)
	}
	return nil
}

func parseRoute(c *caddy.Controller, args []string) (routeConfig, error) {
	r := routeConfig{line: c.Line(), sel: policy.SelectFailover}
	if len(args) < 2 {
		return r, c.Errf("route: expected SELECTOR POOL [POOL...] [select MODE]")
	}
	s, err := policy.ParseSelector(args[0])
	if err != nil {
		return r, c.Errf("route: %v", err)
	}
	r.selector = s
	rest := args[1:]
	if i := slices.Index(rest, "select"); i >= 0 {
		if i != len(rest)-2 {
			return r, c.Errf("route: select: expected select failover|weighted|nearest|fastest|all at the end of the route")
		}
		m, ok := policy.ParseSelect(rest[i+1])
		if !ok {
			return r, c.Errf("route: select %q: expected failover, weighted, nearest, fastest or all", rest[i+1])
		}
		r.sel = m
		rest = rest[:i]
	}
	if len(rest) == 0 {
		return r, c.Errf("route %s: expected at least one POOL", args[0])
	}
	for i, p := range rest {
		if slices.Contains(rest[:i], p) {
			return r, c.Errf("route %s: pool %q listed twice", args[0], p)
		}
	}
	r.pools = rest
	return r, nil
}

// validate checks what needs the whole block: references between pools, templates and
// routes, and the databases the selectors need.
func (cfg *config) validate(c *caddy.Controller) error {
	pools := map[string]*poolConfig{}
	names := make([]string, 0, len(cfg.pools))
	for _, p := range cfg.pools {
		pools[p.name] = p
		names = append(names, p.name)
	}
	for _, p := range cfg.pools {
		if p.check == "" {
			continue
		}
		if _, ok := cfg.checks[p.check]; !ok {
			known := make([]string, 0, len(cfg.checks))
			for n := range cfg.checks {
				known = append(known, n)
			}
			slices.Sort(known)
			return errAt(c, p.checkLine, "pool %s: unknown healthcheck %q (healthchecks: %s)", p.name, p.check, listOrNone(known))
		}
	}
	for _, d := range cfg.domains {
		for _, r := range d.routes {
			for _, pn := range r.pools {
				if _, ok := pools[pn]; !ok {
					return errAt(c, r.line, "route: unknown pool %q (pools: %s)", pn, listOrNone(names))
				}
			}
			s := r.selector
			if r.sel == policy.SelectAll {
				// The union of an address pool and a name pool is no valid answer: a CNAME
				// cannot sit beside A/AAAA records of the same name (RFC 1034 3.6.2).
				var ips, names []string
				for _, pn := range r.pools {
					if pools[pn].cname {
						names = append(names, pn)
					} else {
						ips = append(ips, pn)
					}
				}
				if len(ips) > 0 && len(names) > 0 {
					return errAt(c, r.line, "route %s: select all cannot mix pools of addresses (%s) with pools of domain names (%s)", s.Text, strings.Join(ips, ", "), strings.Join(names, ", "))
				}
			}
			if cfg.geoip == "" && (len(s.Continents)+len(s.Countries)+len(s.Regions) > 0) {
				return errAt(c, r.line, "route %s: continent, country and region selectors need a geoip database", s.Text)
			}
			if cfg.asn == "" && len(s.ASNs) > 0 {
				return errAt(c, r.line, "route %s: asn selectors need an asn database", s.Text)
			}
			if r.sel == policy.SelectNearest {
				if cfg.geoip == "" {
					return errAt(c, r.line, "route %s: select nearest needs a geoip database with locations", s.Text)
				}
				if !slices.ContainsFunc(r.pools, func(n string) bool { return pools[n].hasLoc }) {
					return errAt(c, r.line, "route %s: select nearest needs pools with a location", s.Text)
				}
			}
		}
	}
	return nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none defined"
	}
	return strings.Join(names, ", ")
}
