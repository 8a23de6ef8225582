// Package config is the configuration model of coredns-gtm: health-check templates, pools and
// managed domains, as the Corefile and the admin API's JSON both write them.
//
// It is plain Go (no CoreDNS import). The Corefile adapter in plugin/ and the JSON decoder
// here produce the same types; one validator (Validate) checks them with the same rules and
// the same words, and the plugin compiles a valid Config into the snapshot the query path
// reads. JSON field names are the Corefile directive names, except a healthcheck's `source`,
// which is "source_address" in JSON.
package config

import (
	"net/netip"
	"time"
)

// Source says where a resource is defined.
type Source string

// Resource sources: the Corefile (read-only through the API) or the admin API.
const (
	SourceCorefile Source = "corefile"
	SourceAPI      Source = "api"
)

// Kind is one of the three resource kinds, spelled as in API paths.
type Kind string

// Resource kinds.
const (
	KindHealthCheck Kind = "healthchecks"
	KindPool        Kind = "pools"
	KindDomain      Kind = "domains"
)

// Kinds lists the kinds in the order references point (domains use pools use templates).
var Kinds = []Kind{KindHealthCheck, KindPool, KindDomain}

// Singular is the word errors use for one resource of the kind: "pool eu".
func (k Kind) Singular() string {
	switch k {
	case KindHealthCheck:
		return "healthcheck"
	case KindPool:
		return "pool"
	case KindDomain:
		return "domain"
	}
	return string(k)
}

// ParseKind parses the API path spelling of a kind.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// Lines records where a resource and its fields were written in a Corefile (field name ->
// line); it is empty for API resources. Errors use it to name file:line.
type Lines map[string]int

// Meta is what every resource carries besides its settings. It is not part of the JSON
// settings of a resource (the API reports source beside them).
type Meta struct {
	Name   string `json:"-"`
	Source Source `json:"-"`
	Line   int    `json:"-"` // the line of the resource's opening directive (Corefile only)
	Lines  Lines  `json:"-"` // lines of its directives by field name (Corefile only)
}

func (m *Meta) lineOf(field string) int {
	if l, ok := m.Lines[field]; ok {
		return l
	}
	return m.Line
}

// Echo accepts the "source" member that GET responses add beside a resource's settings, so
// a resource read from the API can be written back as it is. Only "api" may be written.
type Echo struct {
	Echoed Source `json:"source,omitzero"`
}

// Duration is a time.Duration written as a Go duration string ("10s") in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return errorf("%q is not a duration such as 10s", string(b))
	}
	*d = Duration(v)
	return nil
}

// HealthCheck is a reusable health-check template (`healthcheck NAME { ... }`).
type HealthCheck struct {
	Meta `json:"-"`
	Echo
	Protocol    string   `json:"protocol"`
	Port        int      `json:"port,omitzero"` // 0: the protocol's default (80, 443)
	Path        string   `json:"path,omitzero"`
	Host        string   `json:"host,omitzero"`
	Expect      string   `json:"expect,omitzero"`
	Body        string   `json:"body,omitzero"`
	TLSInsecure bool     `json:"tls_insecure"`
	Interval    Duration `json:"interval"`
	Timeout     Duration `json:"timeout"` // 0: 2s, or half of a shorter interval
	Fall        int      `json:"fall"`
	Rise        int      `json:"rise"`

	// `source` in the Corefile; not "source" in JSON, where API answers already carry "source":"corefile|api".
	SourceAddress string `json:"source_address,omitzero"`

	Method string   `json:"method,omitzero"` // http(s): GET (default), HEAD or POST
	Header []Header `json:"header,omitzero"` // http(s): extra request headers, in order
	Query  string   `json:"query,omitzero"`  // dns: "NAME [TYPE]", as in the Corefile
	Answer string   `json:"answer,omitzero"` // dns: a regexp some answer record's text must match
	Count  int      `json:"count,omitzero"`  // icmp: echo requests per probe; 0: 1
	Loss   int      `json:"loss,omitzero"`   // icmp: the most loss in percent that still counts as up

	URL     string   `json:"url,omitzero"`     // prometheus: the server (query and expect: the PromQL and "OP VALUE")
	MaxRTT  Duration `json:"max_rtt,omitzero"` // any protocol but push: a slower probe fails
	Vantage []string `json:"vantage,omitzero"` // with cluster: the regions whose nodes probe and vote
}

// Header is one `header NAME VALUE` of an http(s) check; JSON {"name":"X-A","value":"1"}.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Location is a pool's datacenter in degrees.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Address is one server of a pool: an IP address or a domain name (CNAME target).
type Address struct {
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Priority int    `json:"priority"`
	Disabled bool   `json:"disabled"`
	// CheckAddress is where probes go when not to Address (NAT, anycast, a VIP behind a
	// load balancer): `address IP check_address IP`.
	CheckAddress string `json:"check_address,omitzero"`
	Line         int    `json:"-"`
}

// Pool is a set of equivalent servers (`pool NAME { ... }`).
type Pool struct {
	Meta `json:"-"`
	Echo
	Addresses    []Address `json:"addresses"`
	Location     *Location `json:"location,omitzero"`
	LB           string    `json:"lb"`
	Answers      int       `json:"answers,omitzero"` // 0: all for lb all, else 1
	HealthCheck  Checks    `json:"healthcheck,omitzero"`
	Require      Require   `json:"require,omitzero"`
	MinAvailable int       `json:"min_available"`
	Weight       int       `json:"weight"`

	// MinAvailablePercent, when set, replaces MinAvailable: `min_available P%`, a share of
	// the enabled addresses, rounded up. JSON writes it as the string "P%" in min_available.
	MinAvailablePercent *int     `json:"-"`
	SlowStart           Duration `json:"slow_start,omitzero"` // weighted lb: ramp-up of a recovered address
}

// Route maps clients (a selector) to an ordered list of pools.
type Route struct {
	Selector string   `json:"selector"`
	Pools    []string `json:"pools"`
	Select   string   `json:"select"`
	Line     int      `json:"-"`
}

// Domain is a managed name (`domain NAME { ... }`).
type Domain struct {
	Meta `json:"-"`
	Echo
	TTL    uint32  `json:"ttl"`
	Routes []Route `json:"routes"`

	// TTLDegraded is the TTL while the answer is not the route's first choice or comes from
	// fail-open or fallback (`ttl SECONDS DEGRADED`); nil: TTL always.
	TTLDegraded *uint32 `json:"ttl_degraded,omitzero"`
	Fallback    string  `json:"fallback,omitzero"` // open (""), nodata, servfail or a pool name
	Failback    string  `json:"failback,omitzero"` // auto (""), manual or a duration

	HTTPS *HTTPS `json:"https,omitzero"` // answer HTTPS queries (https.go); nil: NODATA
	SRV   []SRV  `json:"srv,omitzero"`   // SRV records under the domain (https.go)
}

// Defaults of the Corefile that the JSON forms share.
const (
	DefaultTTL      = 30
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 2 * time.Second
	DefaultFall     = 3
	DefaultRise     = 2
	MaxTTL          = 2147483647 // RFC 2181 section 8
	MaxWeight       = 1_000_000
	MaxAnswers      = 64
	MaxCount        = 100 // rise and fall
)

// NewHealthCheck returns a template with the Corefile defaults.
func NewHealthCheck(name string) *HealthCheck {
	return &HealthCheck{Meta: Meta{Name: name}, Interval: Duration(DefaultInterval), Fall: DefaultFall, Rise: DefaultRise}
}

// NewPool returns a pool with the Corefile defaults.
func NewPool(name string) *Pool {
	return &Pool{Meta: Meta{Name: name}, LB: "weighted", MinAvailable: 1, Weight: 1}
}

// NewAddress returns an address with the Corefile defaults.
func NewAddress(text string) Address { return Address{Address: text, Weight: 1} }

// NewDomain returns a domain whose TTL is the block's default.
func NewDomain(name string, ttl uint32) *Domain {
	return &Domain{Meta: Meta{Name: name}, TTL: ttl}
}

// NewRoute returns a route with the default select mode.
func NewRoute(selector string, pools ...string) Route {
	return Route{Selector: selector, Pools: pools, Select: "failover"}
}

// Normalize fills in the values that default from others: a timeout left unset is 2s, or
// half of an interval that is not longer than that (rather than make the operator spell out
// a timeout for a short interval).
func (h *HealthCheck) Normalize() {
	if h.Timeout == 0 {
		h.Timeout = Duration(DefaultTimeout)
		if h.Interval > 0 && h.Timeout >= h.Interval {
			h.Timeout = h.Interval / 2
		}
	}
}

// SourceAddr is the parsed SourceAddress, the zero Addr when it is empty or invalid.
func (h *HealthCheck) SourceAddr() netip.Addr {
	a, err := netip.ParseAddr(h.SourceAddress)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Config is one gtm block's resources, in the order they were written.
type Config struct {
	HealthChecks []*HealthCheck
	Pools        []*Pool
	Domains      []*Domain
}

// HealthCheck returns the template called name, or nil.
func (c *Config) HealthCheck(name string) *HealthCheck {
	for _, h := range c.HealthChecks {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Pool returns the pool called name, or nil.
func (c *Config) Pool(name string) *Pool {
	for _, p := range c.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Domain returns the domain called name (a lower-case FQDN), or nil.
func (c *Config) Domain(name string) *Domain {
	for _, d := range c.Domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Get returns the resource of kind called name, or nil.
func (c *Config) Get(k Kind, name string) Resource {
	switch k {
	case KindHealthCheck:
		if h := c.HealthCheck(name); h != nil {
			return h
		}
	case KindPool:
		if p := c.Pool(name); p != nil {
			return p
		}
	case KindDomain:
		if d := c.Domain(name); d != nil {
			return d
		}
	}
	return nil
}

// Resource is a *HealthCheck, *Pool or *Domain.
type Resource interface {
	Kind() Kind
	meta() *Meta
}

// Kind implements Resource.
func (*HealthCheck) Kind() Kind { return KindHealthCheck }

// Kind implements Resource.
func (*Pool) Kind() Kind { return KindPool }

// Kind implements Resource.
func (*Domain) Kind() Kind { return KindDomain }

func (h *HealthCheck) meta() *Meta { return &h.Meta }
func (p *Pool) meta() *Meta        { return &p.Meta }
func (d *Domain) meta() *Meta      { return &d.Meta }

// MetaOf returns a resource's name, source and lines.
func MetaOf(r Resource) *Meta { return r.meta() }

// Label names a resource the way errors do: "pool eu".
func Label(r Resource) string { return r.Kind().Singular() + " " + r.meta().Name }

// Put adds r, or replaces the resource of its kind and name, keeping the order.
func (c *Config) Put(r Resource) {
	name := r.meta().Name
	switch v := r.(type) {
	case *HealthCheck:
		c.HealthChecks = put(c.HealthChecks, v, name)
	case *Pool:
		c.Pools = put(c.Pools, v, name)
	case *Domain:
		c.Domains = put(c.Domains, v, name)
	}
}

func put[R Resource](list []R, r R, name string) []R {
	for i, o := range list {
		if o.meta().Name == name {
			out := append([]R(nil), list...)
			out[i] = r
			return out
		}
	}
	return append(list[:len(list):len(list)], r)
}

// Delete removes the resource of kind called name.
func (c *Config) Delete(k Kind, name string) {
	del := func(n string) bool { return n == name }
	switch k {
	case KindHealthCheck:
		c.HealthChecks = without(c.HealthChecks, del)
	case KindPool:
		c.Pools = without(c.Pools, del)
	case KindDomain:
		c.Domains = without(c.Domains, del)
	}
}

func without[R Resource](list []R, match func(string) bool) []R {
	out := make([]R, 0, len(list))
	for _, r := range list {
		if !match(r.meta().Name) {
			out = append(out, r)
		}
	}
	return out
}

// Clone returns a copy of c whose lists can be changed without touching c (the resources
// themselves are shared: they are never changed after decoding).
func (c *Config) Clone() *Config {
	return &Config{
		HealthChecks: append([]*HealthCheck(nil), c.HealthChecks...),
		Pools:        append([]*Pool(nil), c.Pools...),
		Domains:      append([]*Domain(nil), c.Domains...),
	}
}

// Len counts the resources.
func (c *Config) Len() int { return len(c.HealthChecks) + len(c.Pools) + len(c.Domains) }
