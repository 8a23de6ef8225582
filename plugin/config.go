package gtm

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	mwtls "github.com/coredns/coredns/plugin/pkg/tls"

	"github.com/gtm-dns/coredns-gtm/config"
)

// block is one gtm block as written: the settings of the block itself, and its resources in
// the public configuration model (validated by config.Validate, as the API's are).
type block struct {
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
	cluster *clusterConfig
	ns      []nsHost       // `ns`: the apex NS set (none: ns1.ZONE)
	soa     *soaConfig     // `soa`: the apex SOA's names and negative TTL
	dnssec  *signer        // `dnssec`: the zones' keys (nil: answers are not signed)
	res     *config.Config // the Corefile's healthchecks, pools and domains
	brake   *brakeConfig   // `brake PERCENT DURATION`, in the block or its cluster block
}

// nsHost is one `ns NAME [ADDRESS...]` line.
type nsHost struct {
	name  string
	addrs []netip.Addr
	line  int
}

// soaConfig is the `soa MNAME RNAME [MINIMUM]` line.
type soaConfig struct {
	mname, rname string
	minimum      uint32
	hasMinimum   bool
}

// clusterConfig is the `cluster` block: the fleet's etcd.
type clusterConfig struct {
	line      int
	endpoints []string
	path      string
	node      string
	region    string
	username  string
	password  string
	tls       *tls.Config
	quorum    int
	cache     string
	// auditRetention bounds the fleet's audit records (audit_retention; 0: the default).
	auditRetention time.Duration
}

type apiConfig struct {
	line       int
	stateLine  int
	addr       string
	token      string
	publicRead bool
	state      string
	webhooks   []webhookConfig
	access     accessConfig // token, tls, audit (parse_api.go)
}

// env is what validating a resource of this block needs to know.
func (b *block) env() config.Env {
	return config.Env{Zones: b.zones, GeoIP: b.geoip != "", ASN: b.asn != "", Cluster: b.cluster != nil}
}

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

// parse reads one gtm block. The adapter checks the Corefile's syntax (directives, argument
// counts, numbers); config.Validate checks what the values mean, with the same rules and
// words for the Corefile and the API.
func parse(c *caddy.Controller) (*block, error) {
	b := &block{ttl: config.DefaultTTL, ecs: true, res: &config.Config{}, file: c.File(), root: dnsserver.GetConfig(c).Root}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		b.zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for c.NextBlock() {
			if err := parseDirective(c, b); err != nil {
				return nil, err
			}
		}
	}
	// Domains written before `ttl` still default to the block's TTL.
	for _, d := range b.res.Domains {
		if _, set := d.Lines["ttl"]; !set {
			d.TTL = b.ttl
		}
	}
	if err := firstError(c, config.Validate(b.res, b.env())); err != nil {
		return nil, err
	}
	if err := checkAccess(c, b); err != nil {
		return nil, err
	}
	if b.cluster != nil && b.api != nil && b.api.state != "" {
		return nil, errAt(c, b.api.stateLine, "api: state: with cluster the fleet's etcd holds the state; remove state, and use cluster { cache FILE } for a local copy")
	}
	return b, nil
}

func parseCluster(c *caddy.Controller, b *block, args []string, isBlock bool) error {
	if b.cluster != nil {
		return c.Errf("cluster: only one cluster per gtm block")
	}
	if len(args) != 0 {
		return c.Errf("cluster: unexpected %q; the settings go in a block: cluster { endpoint URL... }", args[0])
	}
	host, _ := os.Hostname()
	cl := &clusterConfig{line: c.Line(), path: "/gtm", node: host, quorum: 50}
	b.cluster = cl
	if !isBlock {
		return c.Errf("cluster: expected a block with at least an endpoint")
	}
	err := eachLine(c, "cluster", func(dir string, args []string) error {
		switch dir {
		case "endpoint":
			if len(args) == 0 {
				return c.Errf("cluster: endpoint: expected URL... such as http://127.0.0.1:2379")
			}
			for _, e := range args {
				u, err := url.Parse(e)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return c.Errf("cluster: endpoint %q: expected an http:// or https:// URL such as http://127.0.0.1:2379", e)
				}
			}
			cl.endpoints = append(cl.endpoints, args...)
		case "path":
			if len(args) != 1 || !strings.HasPrefix(args[0], "/") || len(args[0]) < 2 {
				return c.Errf("cluster: path: expected a key prefix such as /gtm")
			}
			cl.path = strings.TrimSuffix(args[0], "/")
		case "node", "region":
			if len(args) != 1 {
				return c.Errf("cluster: %s: expected NAME", dir)
			}
			if dir == "node" {
				if !validNodeName(args[0]) {
					return c.Errf("cluster: node %q: expected letters, digits, '.', '_' or '-'", args[0])
				}
				cl.node = args[0]
			} else {
				cl.region = args[0]
			}
		case "credentials":
			if len(args) != 2 {
				return c.Errf("cluster: credentials: expected USER PASSWORD")
			}
			cl.username, cl.password = args[0], args[1]
		case "tls":
			if len(args) > 3 {
				return c.Errf("cluster: tls: expected [CERT KEY [CACERT]]")
			}
			for i := range args {
				args[i] = b.path(args[i])
			}
			t, err := mwtls.NewTLSConfigFromArgs(args...)
			if err != nil {
				return c.Errf("cluster: tls: %v", err)
			}
			cl.tls = t
		case "quorum":
			if len(args) != 1 {
				return c.Errf("cluster: quorum: expected PERCENT")
			}
			n, err := strconv.Atoi(strings.TrimSuffix(args[0], "%"))
			if err != nil || n < 1 || n > 100 {
				return c.Errf("cluster: quorum %q: expected a percentage from 1 to 100", args[0])
			}
			cl.quorum = n
		case "cache":
			if len(args) != 1 {
				return c.Errf("cluster: cache: expected FILE")
			}
			cl.cache = b.path(args[0])
		case "brake":
			return parseBrake(c, b, args, true)
		default:
			if ok, err := parseClusterAccess(c, cl, dir, args); ok {
				return err
			}
			return c.Errf("cluster: unknown directive %q; expected endpoint, path, node, region, credentials, tls, quorum, cache, audit_retention or brake", dir)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(cl.endpoints) == 0 {
		return errAt(c, cl.line, "cluster: no endpoint: expected endpoint URL... such as http://127.0.0.1:2379")
	}
	if cl.node == "" {
		return errAt(c, cl.line, "cluster: no node name and the host name is unknown: set node NAME")
	}
	return nil
}

func validNodeName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// firstError reports the earliest of the validator's errors with its Corefile line. A route
// line sits inside its domain's block, so its errors read without the domain, as they always
// did in the Corefile ("route: unknown pool ...").
func firstError(c *caddy.Controller, errs config.Errors) error {
	if len(errs) == 0 {
		return nil
	}
	first := slices.MinFunc(errs, func(a, b *config.Error) int { return a.Line - b.Line })
	msg := first.Message
	if strings.HasPrefix(first.Field, "routes[") {
		msg = first.Local
	}
	return errAt(c, first.Line, "%s", msg)
}

// path resolves a FILE argument as CoreDNS's file plugin does: relative to the server
// block's `root` when one is set, else to the working directory.
func (b *block) path(p string) string {
	if b.root != "" && !filepath.IsAbs(p) {
		return filepath.Join(b.root, p)
	}
	return p
}

func parseDirective(c *caddy.Controller, b *block) error {
	dir := c.Val()
	args, isBlock := lineArgs(c)
	if isBlock && dir != "api" && dir != "healthcheck" && dir != "pool" && dir != "domain" && dir != "cluster" && dir != "dnssec" {
		return c.Errf("%q does not take a block", dir)
	}
	switch dir {
	case "geoip", "asn":
		if len(args) != 1 {
			return c.Errf("%s: expected one FILE argument, got %d", dir, len(args))
		}
		if b.dbLine == nil {
			b.dbLine = map[string]int{}
		}
		b.dbLine[dir] = c.Line()
		if dir == "geoip" {
			b.geoip = b.path(args[0])
		} else {
			b.asn = b.path(args[0])
		}
	case "ttl":
		if len(args) != 1 {
			return c.Errf("ttl: expected SECONDS")
		}
		t, err := parseTTL(args[0])
		if err != nil {
			return c.Errf("ttl: %v", err)
		}
		b.ttl = t
	case "ecs":
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return c.Errf("ecs: expected on or off, got %q", strings.Join(args, " "))
		}
		b.ecs = args[0] == "on"
	case "fallthrough":
		b.fall.SetZonesFromArgs(args)
	case "ns":
		return parseNS(c, b, args)
	case "soa":
		return parseSOA(c, b, args)
	case "api":
		return parseAPI(c, b, args, isBlock)
	case "cluster":
		return parseCluster(c, b, args, isBlock)
	case "dnssec":
		return parseDNSSEC(c, b, args, isBlock)
	case "brake":
		return parseBrake(c, b, args, false)
	case "healthcheck":
		return parseCheck(c, b, args, isBlock)
	case "pool":
		return parsePool(c, b, args, isBlock)
	case "domain":
		return parseDomain(c, b, args, isBlock)
	default:
		return c.Errf("unknown directive %q; expected geoip, asn, ttl, ecs, ns, soa, api, cluster, dnssec, fallthrough, healthcheck, pool, domain or brake", dir)
	}
	return nil
}

func parseNS(c *caddy.Controller, b *block, args []string) error {
	if len(args) == 0 {
		return c.Errf("ns: expected NAME [ADDRESS...]")
	}
	name, ok := config.DomainName(args[0])
	if !ok || strings.Count(name, ".") < 2 {
		return c.Errf("ns %q: expected a fully qualified host name such as ns1.example.net", args[0])
	}
	for _, h := range b.ns {
		if h.name == name {
			return c.Errf("ns %q: listed twice (first on line %d)", args[0], h.line)
		}
	}
	h := nsHost{name: name, line: c.Line()}
	for _, a := range args[1:] {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return c.Errf("ns %s: address %q: expected an IPv4 or IPv6 address", args[0], a)
		}
		h.addrs = append(h.addrs, ip.Unmap())
	}
	if len(h.addrs) == 0 && config.InZones(b.zones, name) != "" {
		return c.Errf("ns %s: a name inside the zone needs its addresses (ns %s ADDRESS...), or the delegation is lame", args[0], args[0])
	}
	b.ns = append(b.ns, h)
	return nil
}

func parseSOA(c *caddy.Controller, b *block, args []string) error {
	if b.soa != nil {
		return c.Errf("soa: only one soa per gtm block")
	}
	if len(args) < 2 || len(args) > 3 {
		return c.Errf("soa: expected MNAME RNAME [MINIMUM], such as soa ns1.example.net. hostmaster.example.net. 30")
	}
	so := &soaConfig{}
	for i, dst := range []*string{&so.mname, &so.rname} {
		name, ok := config.DomainName(args[i])
		if !ok || strings.Count(name, ".") < 2 {
			return c.Errf("soa: %q: expected a fully qualified name", args[i])
		}
		*dst = name
	}
	if len(args) == 3 {
		t, err := parseTTL(args[2])
		if err != nil {
			return c.Errf("soa: minimum: %v", err)
		}
		so.minimum, so.hasMinimum = t, true
	}
	b.soa = so
	return nil
}

func parseTTL(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > config.MaxTTL {
		return 0, fmt.Errorf("bad TTL %q: expected seconds from 0 to %d", s, config.MaxTTL)
	}
	return uint32(n), nil
}

func parseAPI(c *caddy.Controller, b *block, args []string, isBlock bool) error {
	if b.api != nil {
		return c.Errf("api: only one api listener per gtm block")
	}
	if len(args) != 1 {
		return c.Errf("api: expected ADDRESS such as 127.0.0.1:8080")
	}
	if !validListenAddr(args[0]) {
		return c.Errf("api: bad address %q: expected HOST:PORT such as 127.0.0.1:8080", args[0])
	}
	a := &apiConfig{addr: args[0], line: c.Line()}
	b.api = a
	if !isBlock {
		return finishAPIAccess(c, a)
	}
	err := eachEntry(c, "api", "webhook", func(dir string, args []string, isBlock bool) error {
		switch dir {
		case "webhook":
			return parseWebhook(c, b, a, args, isBlock)
		case "token_file":
			if len(args) != 1 {
				return c.Errf("api: token_file: expected FILE")
			}
			raw, err := os.ReadFile(b.path(args[0]))
			if err != nil {
				return c.Errf("api: token_file: %v", err)
			}
			a.token = strings.TrimSpace(string(raw))
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
			a.state, a.stateLine = b.path(args[0]), c.Line()
		default:
			if ok, err := parseAPIAccess(c, b, a, dir, args); ok {
				return err
			}
			return c.Errf("api: unknown directive %q; expected token_file, token, tls, audit, public_read, state or webhook", dir)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return finishAPIAccess(c, a)
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

// number reads an integer argument; the validator judges its range.
func number(c *caddy.Controller, what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, c.Errf("%s %q: expected a number", what, s)
	}
	return n, nil
}

func parseCheck(c *caddy.Controller, b *block, args []string, isBlock bool) error {
	if len(args) != 1 {
		return c.Errf("healthcheck: expected NAME")
	}
	name := args[0]
	if prev := b.res.HealthCheck(name); prev != nil {
		return c.Errf("healthcheck: duplicate name %q (first defined on line %d)", name, prev.Line)
	}
	h := config.NewHealthCheck(name)
	h.Source, h.Line, h.Lines = config.SourceCorefile, c.Line(), config.Lines{}
	b.res.HealthChecks = append(b.res.HealthChecks, h)
	if isBlock {
		err := eachLine(c, "healthcheck "+name, func(dir string, args []string) error {
			what := "healthcheck " + name + ": " + dir
			one := func() (string, error) {
				if len(args) != 1 {
					return "", c.Errf("%s: expected one argument, got %d", what, len(args))
				}
				return args[0], nil
			}
			h.Lines[dir] = c.Line()
			var err error
			var v string
			switch dir {
			case "protocol", "path", "host", "source", "method":
				if v, err = one(); err != nil {
					return err
				}
				switch dir {
				case "protocol":
					h.Protocol = v
				case "source":
					h.SourceAddress = v
				case "path":
					h.Path = v
				case "host":
					h.Host = v
				default:
					h.Method = v
				}
			case "port", "fall", "rise":
				if v, err = one(); err != nil {
					return err
				}
				n, err := number(c, what, v)
				if err != nil {
					return err
				}
				switch dir {
				case "port":
					if n < 1 || n > 65535 {
						return c.Errf("%s %q: expected 1-65535", what, v)
					}
					h.Port = n
				case "fall":
					h.Fall = n
				default:
					h.Rise = n
				}
			case "body":
				if len(args) == 0 {
					return c.Errf("%s: expected REGEXP", what)
				}
				h.Body = strings.Join(args, " ")
			case "expect", "header", "query", "answer", "count", "loss", "url", "max_rtt", "vantage":
				return parseCheckSetting(c, h, what, dir, args)
			case "tls_insecure":
				if len(args) != 0 {
					return c.Errf("%s takes no arguments", what)
				}
				h.TLSInsecure = true
			case "interval", "timeout":
				if v, err = one(); err != nil {
					return err
				}
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return c.Errf("%s %q: expected a positive duration such as 5s", what, v)
				}
				if dir == "interval" {
					h.Interval = config.Duration(d)
				} else {
					h.Timeout = config.Duration(d)
				}
			default:
				return c.Errf("healthcheck %s: unknown directive %q; expected protocol, port, path, host, expect, body, tls_insecure, method, header, query, answer, count, loss, source, interval, timeout, fall, rise, url, max_rtt or vantage", name, dir)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	h.Normalize()
	return nil
}

func parsePool(c *caddy.Controller, b *block, args []string, isBlock bool) error {
	if len(args) != 1 {
		return c.Errf("pool: expected NAME")
	}
	name := args[0]
	if prev := b.res.Pool(name); prev != nil {
		return c.Errf("pool: duplicate name %q (first defined on line %d)", name, prev.Line)
	}
	p := config.NewPool(name)
	p.Source, p.Line, p.Lines = config.SourceCorefile, c.Line(), config.Lines{}
	b.res.Pools = append(b.res.Pools, p)
	if !isBlock {
		return c.Errf("pool %s: expected a block with at least one address", name)
	}
	return eachLine(c, "pool "+name, func(dir string, args []string) error {
		what := "pool " + name + ": " + dir
		p.Lines[dir] = c.Line()
		switch dir {
		case "address":
			a, err := parseAddress(c, name, args)
			if err != nil {
				return err
			}
			p.Addresses = append(p.Addresses, a)
		case "location":
			if len(args) != 2 {
				return c.Errf("%s: expected LAT LON in degrees", what)
			}
			lat, err1 := strconv.ParseFloat(args[0], 64)
			lon, err2 := strconv.ParseFloat(args[1], 64)
			if err1 != nil || err2 != nil {
				return c.Errf("%s %q %q: expected latitude -90..90 and longitude -180..180", what, args[0], args[1])
			}
			p.Location = &config.Location{Lat: lat, Lon: lon}
		case "lb":
			if len(args) != 1 {
				return c.Errf("%s: expected all, weighted, priority, random, fastest or hashed", what)
			}
			p.LB = args[0]
		case "min_available", "slow_start":
			return parsePoolFailover(c, p, dir, args)
		case "answers", "weight":
			if len(args) != 1 {
				return c.Errf("%s: expected a positive number", what)
			}
			n, err := number(c, what, args[0])
			if err != nil {
				return err
			}
			switch dir {
			case "answers":
				if n < 1 {
					return c.Errf("%s %q: expected a number from 1 to %d", what, args[0], config.MaxAnswers)
				}
				p.Answers = n
			default:
				p.Weight = n
			}
		case "healthcheck":
			return parsePoolChecks(c, p, what, args)
		default:
			return c.Errf("pool %s: unknown directive %q; expected address, location, lb, answers, healthcheck, min_available, slow_start or weight", name, dir)
		}
		return nil
	})
}

func parseAddress(c *caddy.Controller, pool string, args []string) (config.Address, error) {
	if len(args) == 0 {
		return config.Address{}, c.Errf("pool %s: address: expected ADDR [weight W] [priority P] [check_address IP] [disabled]", pool)
	}
	a := config.NewAddress(args[0])
	a.Line = c.Line()
	rest := args[1:]
	for len(rest) > 0 {
		switch rest[0] {
		case "weight", "priority":
			if len(rest) < 2 {
				return a, c.Errf("pool %s: address %s: %s: expected a number", pool, args[0], rest[0])
			}
			n, err := number(c, "pool "+pool+": address "+args[0]+": "+rest[0], rest[1])
			if err != nil {
				return a, err
			}
			if rest[0] == "weight" {
				a.Weight = n
			} else {
				a.Priority = n
			}
			rest = rest[2:]
		case "disabled":
			a.Disabled = true
			rest = rest[1:]
		case "check_address":
			if len(rest) < 2 {
				return a, c.Errf("pool %s: address %s: check_address: expected an IP address", pool, args[0])
			}
			a.CheckAddress = rest[1]
			rest = rest[2:]
		default:
			return a, c.Errf("pool %s: address %s: unexpected %q; expected weight W, priority P, check_address IP or disabled", pool, args[0], rest[0])
		}
	}
	return a, nil
}

func parseDomain(c *caddy.Controller, b *block, args []string, isBlock bool) error {
	if len(args) != 1 {
		return c.Errf("domain: expected NAME")
	}
	name, ok := config.DomainName(args[0])
	if !ok {
		return c.Errf("domain: %q is not a domain name", args[0])
	}
	if prev := b.res.Domain(name); prev != nil {
		return c.Errf("domain: duplicate name %q (first defined on line %d)", args[0], prev.Line)
	}
	d := config.NewDomain(name, b.ttl)
	d.Source, d.Line, d.Lines = config.SourceCorefile, c.Line(), config.Lines{}
	b.res.Domains = append(b.res.Domains, d)
	if !isBlock {
		return c.Errf("domain %s: expected a block with at least one route", args[0])
	}
	return eachEntry(c, "domain "+args[0], "https", func(dir string, args []string, block bool) error {
		switch dir {
		case "route":
			r, err := parseRoute(c, args)
			if err != nil {
				return err
			}
			d.Routes = append(d.Routes, r)
		case "ttl":
			if len(args) != 1 && len(args) != 2 {
				return c.Errf("domain %s: ttl: expected SECONDS [DEGRADED]", name)
			}
			t, err := parseTTL(args[0])
			if err != nil {
				return c.Errf("domain %s: ttl: %v", name, err)
			}
			if len(args) == 2 {
				dt, err := parseTTL(args[1])
				if err != nil {
					return c.Errf("domain %s: ttl %s: DEGRADED: %v", name, args[0], err)
				}
				d.TTLDegraded = &dt
			}
			d.TTL, d.Lines["ttl"] = t, c.Line()
		case "fallback", "failback":
			return parseDomainFailover(c, d, dir, args)
		case "https", "srv":
			return parseService(c, d, dir, args, block)
		default:
			return c.Errf("domain %s: unknown directive %q; expected route, ttl, fallback, failback, https or srv", name, dir)
		}
		return nil
	})
}

func parseRoute(c *caddy.Controller, args []string) (config.Route, error) {
	if len(args) < 2 {
		return config.Route{}, c.Errf("route: expected SELECTOR POOL [POOL...] [select MODE]")
	}
	r := config.NewRoute(args[0])
	r.Line = c.Line()
	rest := args[1:]
	if i := slices.Index(rest, "select"); i >= 0 {
		if i != len(rest)-2 {
			return r, c.Errf("route: select: expected select failover|weighted|nearest|fastest|all at the end of the route")
		}
		r.Select = rest[i+1]
		rest = rest[:i]
	}
	if len(rest) == 0 {
		return r, c.Errf("route %s: expected at least one POOL", args[0])
	}
	r.Pools = rest
	return r, nil
}
