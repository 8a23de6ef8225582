package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/miekg/dns"
)

// Member is one `members` directive of a pool: a registry whose addresses join the pool's
// static ones. Exactly one of DNS, SRV, Kubernetes and Ingress is set; the other fields are
// the directive's sub-directives (JSON takes their Corefile names).
type Member struct {
	DNS        []string `json:"dns,omitzero"`        // members dns NAME...
	SRV        string   `json:"srv,omitzero"`        // members srv _SERVICE._PROTO.NAME
	Kubernetes string   `json:"kubernetes,omitzero"` // members kubernetes NAMESPACE/SERVICE
	Ingress    string   `json:"ingress,omitzero"`    // members kubernetes ingress NAMESPACE/NAME

	Resolver   string     `json:"resolver,omitzero"`   // dns, srv: ADDRESS[:PORT]; "": resolv.conf
	Refresh    []Duration `json:"refresh,omitzero"`    // dns, srv: [MIN, MAX]
	Kubeconfig string     `json:"kubeconfig,omitzero"` // kubernetes: FILE; "": in-cluster, else $KUBECONFIG
	Addresses  string     `json:"addresses,omitzero"`  // kubernetes: endpoints (default) or loadbalancer
	Line       int        `json:"-"`
}

// Flatten is a pool of names' `flatten`: answer the chosen name's A/AAAA instead of a CNAME.
type Flatten struct {
	Resolver string     `json:"resolver,omitzero"`
	Refresh  []Duration `json:"refresh,omitzero"`
	Line     int        `json:"-"`
}

// Defaults of the re-resolution bounds of `members dns|srv` and `flatten`.
const (
	DefaultRefreshMin = 5 * time.Second
	DefaultRefreshMax = 300 * time.Second
)

// Kubernetes address kinds of `members kubernetes NS/SVC { addresses ... }`.
const (
	AddressesEndpoints    = "endpoints"
	AddressesLoadBalancer = "loadbalancer"
)

// Kind names the registry of m: "dns", "srv", "kubernetes" or "ingress" ("" when none or
// more than one is set, which Validate reports).
func (m *Member) Kind() string {
	kind, n := "", 0
	if len(m.DNS) > 0 {
		kind, n = "dns", n+1
	}
	if m.SRV != "" {
		kind, n = "srv", n+1
	}
	if m.Kubernetes != "" {
		kind, n = "kubernetes", n+1
	}
	if m.Ingress != "" {
		kind, n = "ingress", n+1
	}
	if n != 1 {
		return ""
	}
	return kind
}

// Sources are the source labels of m's addresses, as status and metrics name them:
// "dns:NAME" for each name, "srv:NAME", "kubernetes:NS/SVC", "kubernetes:ingress/NS/NAME".
func (m *Member) Sources() []string {
	switch m.Kind() {
	case "dns":
		out := make([]string, len(m.DNS))
		for i, n := range m.DNS {
			out[i] = "dns:" + strings.TrimSuffix(strings.ToLower(n), ".")
		}
		return out
	case "srv":
		return []string{"srv:" + strings.TrimSuffix(strings.ToLower(m.SRV), ".")}
	case "kubernetes":
		return []string{"kubernetes:" + m.Kubernetes}
	case "ingress":
		return []string{"kubernetes:ingress/" + m.Ingress}
	}
	return nil
}

// RefreshBounds is [MIN, MAX] with the defaults for what is not set.
func RefreshBounds(r []Duration) (lo, hi time.Duration) {
	lo, hi = DefaultRefreshMin, DefaultRefreshMax
	if len(r) > 0 {
		lo = time.Duration(r[0])
	}
	if len(r) > 1 {
		hi = time.Duration(r[1])
	}
	return lo, hi
}

// defaultRefresh is what a member or flatten without `refresh` means, spelled out so the JSON
// form of a pool read back shows the bounds in force.
func defaultRefresh() []Duration {
	return []Duration{Duration(DefaultRefreshMin), Duration(DefaultRefreshMax)}
}

// Normalize fills in the defaults a member leaves out.
func (m *Member) Normalize() {
	switch m.Kind() {
	case "dns", "srv":
		if len(m.Refresh) == 0 {
			m.Refresh = defaultRefresh()
		}
	case "kubernetes":
		if m.Addresses == "" {
			m.Addresses = AddressesEndpoints
		}
	}
}

// Normalize fills in the defaults a flatten leaves out.
func (f *Flatten) Normalize() {
	if len(f.Refresh) == 0 {
		f.Refresh = defaultRefresh()
	}
}

// UnmarshalJSONFrom gives a member the defaults of what it omits.
func (m *Member) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain Member
	var p plain
	if err := json.UnmarshalDecode(dec, &p); err != nil {
		return err
	}
	*m = Member(p)
	m.Normalize()
	return nil
}

// UnmarshalJSONFrom reads `"flatten":true` (the defaults), false or null (off), or an object
// of the sub-directives.
func (f *Flatten) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 't', 'f':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if !tok.Bool() {
			// false: encoded as an empty object would still flatten; the pool sets
			// Flatten nil for false in Pool.UnmarshalJSONFrom's caller (see flattenOff).
			*f = Flatten{Line: -1}
			return nil
		}
		*f = Flatten{}
		f.Normalize()
		return nil
	}
	type plain Flatten
	var p plain
	if err := json.UnmarshalDecode(dec, &p); err != nil {
		return err
	}
	*f = Flatten(p)
	f.Normalize()
	return nil
}

// flattenOff clears a `"flatten":false` read by Flatten.UnmarshalJSONFrom.
func (p *Pool) flattenOff() {
	if p.Flatten != nil && p.Flatten.Line == -1 {
		p.Flatten = nil
	}
}

// KubeconfigCheck, when set (by package discovery), tells whether a kubeconfig file ("" for
// in-cluster or $KUBECONFIG) can be loaded; validation names the member whose cannot.
var KubeconfigCheck func(file string) error

// kubeObject is a Kubernetes namespace or object name (DNS-1123: lower-case letters, digits
// and '-', at most 63 for namespaces and 253 for names with '.').
var (
	kubeNamespace = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	kubeName      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// ParseKubeObject splits NAMESPACE/NAME and checks both parts.
func ParseKubeObject(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || !kubeNamespace.MatchString(ns) || !kubeName.MatchString(name) {
		return "", "", fmt.Errorf("%q: expected NAMESPACE/NAME (lower-case letters, digits and '-')", s)
	}
	return ns, name, nil
}

// ParseResolver reads ADDRESS[:PORT] (IPv6 as [ADDR]:PORT or bare) and returns host:port
// with port 53 when none is given.
func ParseResolver(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		ip, perr := netip.ParseAddr(host)
		n, nerr := strconv.Atoi(port)
		if perr == nil && ip.Zone() == "" && nerr == nil && n > 0 && n < 65536 {
			return net.JoinHostPort(ip.String(), port), nil
		}
	}
	return "", fmt.Errorf("resolver %q: expected an IP address with an optional port, such as 10.0.0.53 or 127.0.0.1:5353", s)
}

// memberName checks a name to resolve: a fully qualified domain name of at least two labels.
func memberName(s string) error {
	name := dns.Fqdn(s)
	if _, ok := dns.IsDomainName(name); !ok || s == "" || looksNumeric(strings.TrimSuffix(s, ".")) || strings.Count(name, ".") < 2 || strings.ContainsAny(s, " \t/\\@") {
		return fmt.Errorf("%q: expected a fully qualified domain name", s)
	}
	return nil
}

// srvName checks _SERVICE._PROTO.NAME.
func srvName(s string) error {
	labels := dns.SplitDomainName(dns.Fqdn(s))
	if err := memberName(s); err != nil || len(labels) < 3 || !strings.HasPrefix(labels[0], "_") || !strings.HasPrefix(labels[1], "_") || len(labels[0]) < 2 || len(labels[1]) < 2 {
		return fmt.Errorf("%q: expected _SERVICE._PROTO.NAME such as _http._tcp.example.com", s)
	}
	return nil
}

// members checks a pool's `members` and `flatten`.
func (c *checker) members(p *Pool) {
	cname := p.IsCNAME()
	if len(p.Members) > 0 && cname {
		c.add(p, "members", p.lineOf("members"), "members: a pool of domain names cannot take members; discovered members are IP addresses (use a pool of IP addresses)")
	}
	for i, m := range p.Members {
		field := "members[" + itoa(i) + "]"
		line := m.Line
		if line == 0 {
			line = p.lineOf("members")
		}
		kind := m.Kind()
		if kind == "" {
			c.add(p, field, line, "members: expected exactly one of dns, srv, kubernetes or ingress")
			continue
		}
		switch kind {
		case "dns":
			for j, n := range m.DNS {
				if err := memberName(n); err != nil {
					c.add(p, field+".dns["+itoa(j)+"]", line, "members dns %v", err)
				}
			}
		case "srv":
			if err := srvName(m.SRV); err != nil {
				c.add(p, field+".srv", line, "members srv %v", err)
			}
		case "kubernetes", "ingress":
			if _, _, err := ParseKubeObject(m.Kubernetes + m.Ingress); err != nil {
				c.add(p, field+"."+kind, line, "members kubernetes %v", err)
			}
			if KubeconfigCheck != nil {
				if err := KubeconfigCheck(m.Kubeconfig); err != nil {
					c.add(p, field+".kubeconfig", line, "members kubernetes: %v", err)
				}
			}
		}
		k8s := kind == "kubernetes" || kind == "ingress"
		switch {
		case k8s && (m.Resolver != "" || len(m.Refresh) > 0):
			c.add(p, field, line, "members kubernetes: resolver and refresh apply only to members dns and srv")
		case !k8s && (m.Kubeconfig != "" || m.Addresses != ""):
			c.add(p, field, line, "members %s: kubeconfig and addresses apply only to members kubernetes", kind)
		case kind == "ingress" && m.Addresses != "":
			c.add(p, field+".addresses", line, "members kubernetes ingress: addresses applies only to a Service (an Ingress has its status addresses)")
		}
		if kind == "kubernetes" && m.Addresses != "" && m.Addresses != AddressesEndpoints && m.Addresses != AddressesLoadBalancer {
			c.add(p, field+".addresses", line, "members kubernetes: addresses %q: expected endpoints or loadbalancer", m.Addresses)
		}
		c.resolution(p, field, line, m.Resolver, m.Refresh)
	}
	if f := p.Flatten; f != nil {
		line := f.Line
		if line <= 0 {
			line = p.lineOf("flatten")
		}
		if !cname {
			c.add(p, "flatten", line, "flatten applies only to a pool of domain names (a pool of IP addresses answers A/AAAA already)")
		}
		c.resolution(p, "flatten", line, f.Resolver, f.Refresh)
	}
}

// resolution checks resolver and refresh of a member or flatten.
func (c *checker) resolution(p *Pool, field string, line int, resolver string, refresh []Duration) {
	if resolver != "" {
		if _, err := ParseResolver(resolver); err != nil {
			c.add(p, field+".resolver", line, "%v", err)
		}
	}
	if len(refresh) == 0 {
		return
	}
	lo, hi := RefreshBounds(refresh)
	switch {
	case len(refresh) != 2:
		c.add(p, field+".refresh", line, "refresh: expected MIN MAX, two durations such as 5s 300s")
	case lo < time.Second || hi < lo:
		c.add(p, field+".refresh", line, "refresh %s %s: expected 1s <= MIN <= MAX", lo, hi)
	}
}
