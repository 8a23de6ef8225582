package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Kind is a resource kind as API paths spell it.
type Kind string

// The resource kinds of /api/v1/config.
const (
	KindHealthCheck Kind = "healthchecks"
	KindPool        Kind = "pools"
	KindDomain      Kind = "domains"
)

// Kinds lists the kinds in the order references point (domains use pools use templates).
var Kinds = []Kind{KindHealthCheck, KindPool, KindDomain}

// Singular is the word the API's messages use for one resource of the kind.
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

// Resource sources (the "source" member of a resource read from the API).
const (
	SourceCorefile = "corefile"
	SourceAPI      = "api"
)

// HealthCheck is a health-check template (schemas HealthCheckInput and HealthCheck).
type HealthCheck struct {
	Protocol      string   `json:"protocol"`
	Port          int      `json:"port,omitempty"`
	Path          string   `json:"path,omitempty"`
	Host          string   `json:"host,omitempty"`
	Expect        string   `json:"expect,omitempty"`
	Body          string   `json:"body,omitempty"`
	TLSInsecure   bool     `json:"tls_insecure,omitempty"`
	Interval      string   `json:"interval,omitempty"`
	Timeout       string   `json:"timeout,omitempty"`
	Fall          int      `json:"fall,omitempty"`
	Rise          int      `json:"rise,omitempty"`
	Method        string   `json:"method,omitempty"`
	Header        []Header `json:"header,omitempty"`
	Query         string   `json:"query,omitempty"`
	Answer        string   `json:"answer,omitempty"`
	Count         int      `json:"count,omitempty"`
	Loss          int      `json:"loss,omitempty"`
	SourceAddress string   `json:"source_address,omitempty"`
	// URL is a prometheus check's server.
	URL string `json:"url,omitempty"`
	// MaxRTT: a probe slower than this Go duration counts as failed.
	MaxRTT string `json:"max_rtt,omitempty"`
	// Vantage are the regions whose nodes probe and vote (with cluster).
	Vantage []string `json:"vantage,omitempty"`
	// Source is where the resource is defined (answers only; never sent).
	Source string `json:"source,omitempty"`
}

// Header is one extra request header of an http(s) check.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Pool is a pool (schemas PoolInput and PoolConfig).
type Pool struct {
	Addresses    []PoolAddress `json:"addresses"`
	Location     *Location     `json:"location,omitempty"`
	LB           string        `json:"lb,omitempty"`
	Answers      int           `json:"answers,omitempty"`
	HealthCheck  Names         `json:"healthcheck,omitempty"`
	Require      Scalar        `json:"require,omitempty"`
	MinAvailable Scalar        `json:"min_available,omitempty"`
	Weight       int           `json:"weight,omitempty"`
	SlowStart    string        `json:"slow_start,omitempty"`
	// Members are registries whose addresses join the static ones.
	Members []Member `json:"members,omitempty"`
	// Flatten: a pool of names answers its chosen name's A/AAAA instead of a CNAME.
	Flatten *Flatten `json:"flatten,omitempty"`
	Source  string   `json:"source,omitempty"`
}

// Member is one `members` directive of a pool (schema PoolMember): exactly one of DNS, SRV,
// Kubernetes and Ingress, with the Corefile sub-directives as fields.
type Member struct {
	DNS        []string `json:"dns,omitempty"`
	SRV        string   `json:"srv,omitempty"`
	Kubernetes string   `json:"kubernetes,omitempty"`
	Ingress    string   `json:"ingress,omitempty"`
	Resolver   string   `json:"resolver,omitempty"`
	Refresh    []string `json:"refresh,omitempty"` // [MIN, MAX], Go durations
	Kubeconfig string   `json:"kubeconfig,omitempty"`
	Addresses  string   `json:"addresses,omitempty"` // endpoints or loadbalancer
}

// Flatten is a pool's `flatten { resolver; refresh }` (schema PoolFlatten, object form).
type Flatten struct {
	Resolver string   `json:"resolver,omitempty"`
	Refresh  []string `json:"refresh,omitempty"`
}

// PoolAddress is one server of a pool.
type PoolAddress struct {
	Address  string `json:"address"`
	Weight   int    `json:"weight,omitempty"`
	Priority int    `json:"priority"`
	Disabled bool   `json:"disabled"`
	// CheckAddress is where probes go instead of Address (NAT, anycast, a VIP).
	CheckAddress string `json:"check_address,omitempty"`
}

// Location is a pool's datacenter in degrees.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Domain is a managed domain (schemas DomainInput and DomainConfig).
type Domain struct {
	TTL         *int64  `json:"ttl,omitempty"`
	TTLDegraded *int64  `json:"ttl_degraded,omitempty"`
	Fallback    string  `json:"fallback,omitempty"`
	Failback    string  `json:"failback,omitempty"`
	Routes      []Route `json:"routes"`
	// HTTPS answers HTTPS (type 65) queries at the domain; nil: NODATA.
	HTTPS *HTTPS `json:"https,omitempty"`
	// SRV are SRV records at _SERVICE._PROTO under the domain.
	SRV    []SRV  `json:"srv,omitempty"`
	Source string `json:"source,omitempty"`
}

// HTTPS is a domain's `https [PRIORITY] { alpn; port; hints }`.
type HTTPS struct {
	Priority int      `json:"priority,omitempty"`
	ALPN     []string `json:"alpn,omitempty"`
	Port     int      `json:"port,omitempty"`
	Hints    *bool    `json:"hints,omitempty"`
}

// SRV is one of a domain's `srv _SERVICE._PROTO PORT [PRIORITY]`.
type SRV struct {
	Service  string `json:"service"`
	Port     int    `json:"port"`
	Priority int    `json:"priority,omitempty"`
}

// Route maps clients (a selector) to an ordered list of pools.
type Route struct {
	Selector string   `json:"selector"`
	Pools    []string `json:"pools"`
	Select   string   `json:"select,omitempty"`
}

// Names is a pool's healthcheck: JSON takes one name as a string or several as a list.
type Names []string

// MarshalJSON writes one name as a string, several as a list (as the server does).
func (n Names) MarshalJSON() ([]byte, error) {
	if len(n) == 1 {
		return json.Marshal(n[0])
	}
	return json.Marshal([]string(n))
}

// UnmarshalJSON reads a name or a list of names.
func (n *Names) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = nil
		if s != "" {
			*n = Names{s}
		}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("healthcheck: expected a name or a list of names")
	}
	*n = l
	return nil
}

// Scalar is a JSON member that is a number or a string (a pool's require and
// min_available: 2, "any", "50%"), kept as its text. A text that is an integer is written
// as a JSON number.
type Scalar string

// MarshalJSON writes an integer text as a number, anything else as a string.
func (s Scalar) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		return json.Marshal(n)
	}
	return json.Marshal(string(s))
}

// UnmarshalJSON reads a number or a string.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Scalar(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("expected a number or a string")
	}
	*s = Scalar(n.String())
	return nil
}

// ConfigDocument is GET /api/v1/config with each resource kept as the server wrote it.
type ConfigDocument struct {
	Revision     int64                      `json:"revision"`
	HealthChecks map[string]json.RawMessage `json:"healthchecks"`
	Pools        map[string]json.RawMessage `json:"pools"`
	Domains      map[string]json.RawMessage `json:"domains"`
}

// Of returns the resources of kind k by name.
func (d *ConfigDocument) Of(k Kind) map[string]json.RawMessage {
	switch k {
	case KindHealthCheck:
		return d.HealthChecks
	case KindPool:
		return d.Pools
	case KindDomain:
		return d.Domains
	}
	return nil
}

// Config reads every resource in force, Corefile and API, with the state revision.
func (c *Client) Config(ctx context.Context) (*ConfigDocument, error) {
	var d ConfigDocument
	if err := c.getJSON(ctx, "/api/v1/config", &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ResourcePath is the API path of one resource.
func ResourcePath(k Kind, name string) string { return "/api/v1/config/" + string(k) + "/" + esc(name) }

// Precondition is what a configuration write requires of the stored version.
type Precondition struct {
	// IfMatch: write only if the resource is at this version (an ETag of a read or write).
	IfMatch string
	// Create: write only if the resource does not exist (If-None-Match: *).
	Create bool
}

func (p Precondition) header() http.Header {
	h := http.Header{}
	if p.IfMatch != "" {
		h.Set("If-Match", p.IfMatch)
	}
	if p.Create {
		h.Set("If-None-Match", "*")
	}
	return h
}

// GetRaw reads one resource as the server writes it (its settings plus "source") and its ETag.
func (c *Client) GetRaw(ctx context.Context, k Kind, name string) (json.RawMessage, string, error) {
	resp, err := c.Do(ctx, http.MethodGet, ResourcePath(k, name), nil, nil)
	if err != nil {
		return nil, "", err
	}
	return resp.Body, resp.Header.Get("ETag"), nil
}

// PutRaw creates or replaces one resource with body (its JSON form) under precondition p.
// It returns the stored resource, its new ETag and whether it was created.
func (c *Client) PutRaw(ctx context.Context, k Kind, name string, body []byte, p Precondition) (json.RawMessage, string, bool, error) {
	resp, err := c.Do(ctx, http.MethodPut, ResourcePath(k, name), body, p.header())
	if err != nil {
		return nil, "", false, err
	}
	return resp.Body, resp.Header.Get("ETag"), resp.Status == http.StatusCreated, nil
}

// Delete deletes one resource; ifMatch, when not empty, requires that version.
func (c *Client) Delete(ctx context.Context, k Kind, name, ifMatch string) error {
	_, err := c.Do(ctx, http.MethodDelete, ResourcePath(k, name), nil, Precondition{IfMatch: ifMatch}.header())
	return err
}

// Get reads one resource into v (a *HealthCheck, *Pool or *Domain) and returns its ETag.
func (c *Client) Get(ctx context.Context, k Kind, name string, v any) (string, error) {
	b, tag, err := c.GetRaw(ctx, k, name)
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return "", err
	}
	return tag, nil
}

// Put writes v (a HealthCheck, Pool or Domain) under precondition p and reads the stored
// resource back into out (when not nil). It returns the new ETag.
func (c *Client) Put(ctx context.Context, k Kind, name string, v, out any, p Precondition) (string, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	b, tag, _, err := c.PutRaw(ctx, k, name, body, p)
	if err != nil {
		return "", err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return "", err
		}
	}
	return tag, nil
}
