package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Status is GET /api/v1/status (schema Status).
type Status struct {
	Time      string          `json:"time"`
	Zones     []string        `json:"zones"`
	LastEvent uint64          `json:"last_event"`
	Epoch     uint64          `json:"epoch,omitempty"`
	Dangling  []string        `json:"dangling,omitempty"`
	Domains   []StatusDomain  `json:"domains"`
	Pools     []StatusPool    `json:"pools"`
	Webhooks  json.RawMessage `json:"webhooks,omitempty"`
}

// StatusDomain is a domain in the status: its routes and the pool each selects now.
type StatusDomain struct {
	Name        string        `json:"name"`
	TTL         int64         `json:"ttl"`
	Pinned      string        `json:"pinned"`
	DanglingPin string        `json:"dangling_pin,omitempty"`
	Fallback    string        `json:"fallback,omitempty"`
	Failback    string        `json:"failback,omitempty"`
	Routes      []StatusRoute `json:"routes"`
	From        string        `json:"from,omitempty"`
	Until       string        `json:"until,omitempty"`
	Scheduled   *Scheduled    `json:"scheduled,omitempty"`
}

// StatusRoute is a route of a domain in the status.
type StatusRoute struct {
	Selector string   `json:"selector"`
	Select   string   `json:"select"`
	Pools    []string `json:"pools"`
	Current  string   `json:"current"`
	FailOpen bool     `json:"fail_open"`
	Held     string   `json:"held,omitempty"`
	Fallback string   `json:"fallback,omitempty"`
}

// StatusPool is a pool in the status.
type StatusPool struct {
	Name         string          `json:"name"`
	Available    bool            `json:"available"`
	Up           int             `json:"up"`
	MinAvailable int             `json:"min_available"`
	LB           string          `json:"lb"`
	Weight       int             `json:"weight"`
	HealthCheck  string          `json:"healthcheck"`
	Addresses    []StatusAddress `json:"addresses"`
	Mode         string          `json:"mode,omitempty"`
	From         string          `json:"from,omitempty"`
	Until        string          `json:"until,omitempty"`
	Scheduled    *Scheduled      `json:"scheduled,omitempty"`
	// MembersStale: a registry of the pool's members cannot be reached or errs (MembersError
	// says why); its last members stay.
	MembersStale bool   `json:"members_stale,omitempty"`
	MembersError string `json:"members_error,omitempty"`
}

// StatusAddress is an address of a pool in the status.
type StatusAddress struct {
	Address    string     `json:"address"`
	Up         bool       `json:"up"`
	Healthy    bool       `json:"healthy"`
	Checked    bool       `json:"checked"`
	Mode       string     `json:"mode"`
	ModeSource string     `json:"mode_source,omitempty"`
	Disabled   bool       `json:"disabled"`
	Weight     int        `json:"weight"`
	Priority   int        `json:"priority"`
	LastResult string     `json:"last_result"`
	LastError  string     `json:"last_error"`
	RTTMs      float64    `json:"rtt_ms"`
	From       string     `json:"from,omitempty"`
	Until      string     `json:"until,omitempty"`
	Scheduled  *Scheduled `json:"scheduled,omitempty"`
	// Source is where the address comes from: static, dns:NAME, srv:NAME, kubernetes:NS/SVC.
	Source string `json:"source,omitempty"`
	// CheckAddress is where its probes go, when not to Address.
	CheckAddress string `json:"check_address,omitempty"`
}

// Scheduled is an override stored whose window starts later.
type Scheduled struct {
	Mode  string `json:"mode,omitempty"`
	Pool  string `json:"pool,omitempty"`
	From  string `json:"from"`
	Until string `json:"until,omitempty"`
}

// Status reads the status; raw is the answer as the server wrote it.
func (c *Client) Status(ctx context.Context) (st *Status, raw json.RawMessage, err error) {
	resp, err := c.Do(ctx, http.MethodGet, "/api/v1/status", nil, nil)
	if err != nil {
		return nil, nil, err
	}
	st = &Status{}
	if err := decode(resp, st); err != nil {
		return nil, nil, err
	}
	return st, resp.Body, nil
}

// Pool returns the pool called name in the status, or nil.
func (s *Status) Pool(name string) *StatusPool {
	for i := range s.Pools {
		if s.Pools[i].Name == name {
			return &s.Pools[i]
		}
	}
	return nil
}

// Domain returns the domain called fqdn (lower-case, with the final dot) in the status, or nil.
func (s *Status) Domain(fqdn string) *StatusDomain {
	for i := range s.Domains {
		if s.Domains[i].Name == fqdn {
			return &s.Domains[i]
		}
	}
	return nil
}

// ModeRequest sets an override: mode auto, up or down, optionally timed (RFC 3339).
type ModeRequest struct {
	Mode  string `json:"mode"`
	From  string `json:"from,omitempty"`
	Until string `json:"until,omitempty"`
}

// ModeResult is the answer to an address mode write.
type ModeResult struct {
	Pool      string `json:"pool"`
	Address   string `json:"address"`
	Mode      string `json:"mode"`
	Up        bool   `json:"up"`
	From      string `json:"from,omitempty"`
	Until     string `json:"until,omitempty"`
	Scheduled bool   `json:"scheduled"`
}

// SetAddressMode overrides an address's health in a pool (PUT .../addresses/{address}/mode).
func (c *Client) SetAddressMode(ctx context.Context, pool, address string, req ModeRequest) (*ModeResult, error) {
	var out ModeResult
	path := "/api/v1/pools/" + esc(pool) + "/addresses/" + esc(address) + "/mode"
	if err := c.sendJSON(ctx, http.MethodPut, path, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PoolMode is a pool's mode (schema PoolMode).
type PoolMode struct {
	Pool      string `json:"pool"`
	Mode      string `json:"mode"`
	From      string `json:"from,omitempty"`
	Until     string `json:"until,omitempty"`
	Scheduled bool   `json:"scheduled"`
	InForce   string `json:"in_force"`
}

// PoolMode reads a pool's mode.
func (c *Client) PoolMode(ctx context.Context, pool string) (*PoolMode, error) {
	var out PoolMode
	if err := c.getJSON(ctx, "/api/v1/pools/"+esc(pool)+"/mode", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPoolMode sets every address of a pool whose own mode is auto at once.
func (c *Client) SetPoolMode(ctx context.Context, pool string, req ModeRequest) (*PoolMode, error) {
	var out PoolMode
	if err := c.sendJSON(ctx, http.MethodPut, "/api/v1/pools/"+esc(pool)+"/mode", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ClearPoolMode clears a pool's mode (the same as mode auto).
func (c *Client) ClearPoolMode(ctx context.Context, pool string) error {
	return c.sendJSON(ctx, http.MethodDelete, "/api/v1/pools/"+esc(pool)+"/mode", nil, nil)
}

// PinRequest pins a domain to a pool (or unpins it with an empty pool), optionally timed.
type PinRequest struct {
	Pool  string `json:"pool"`
	From  string `json:"from,omitempty"`
	Until string `json:"until,omitempty"`
}

// PinResult is the answer to a pin write.
type PinResult struct {
	Domain    string `json:"domain"`
	Pinned    string `json:"pinned"`
	From      string `json:"from,omitempty"`
	Until     string `json:"until,omitempty"`
	Scheduled bool   `json:"scheduled"`
}

// SetPin pins (or with an empty pool unpins) a domain.
func (c *Client) SetPin(ctx context.Context, domain string, req PinRequest) (*PinResult, error) {
	var out PinResult
	if err := c.sendJSON(ctx, http.MethodPut, "/api/v1/domains/"+esc(domain)+"/pin", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FailbackResult is the answer to a failback release.
type FailbackResult struct {
	Domain   string        `json:"domain"`
	Released []string      `json:"released"`
	Routes   []StatusRoute `json:"routes"`
}

// Failback releases a domain's failback holds.
func (c *Client) Failback(ctx context.Context, domain string) (*FailbackResult, error) {
	var out FailbackResult
	if err := c.sendJSON(ctx, http.MethodPost, "/api/v1/domains/"+esc(domain)+"/failback", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExplainQuery asks what one client gets for a managed name.
type ExplainQuery struct {
	Domain string
	Type   string // A (default), AAAA or CNAME
	Subnet string // an ECS client subnet, e.g. 203.0.113.0/24
	Client string // a source address (no ECS)
}

// Explain is the decision GET /api/v1/explain reports (the members the provider and
// gtmctl show; the raw answer carries the rest).
type Explain struct {
	Domain string        `json:"domain"`
	Type   string        `json:"type"`
	Client string        `json:"client"`
	ECS    bool          `json:"ecs"`
	Scope  int           `json:"scope"`
	TTL    int64         `json:"ttl"`
	Rcode  string        `json:"rcode"`
	Answer []string      `json:"answer"`
	Steps  []ExplainStep `json:"steps"`
}

// ExplainStep is one name of the chain explained.
type ExplainStep struct {
	Name     string   `json:"name"`
	Domain   string   `json:"domain"`
	Pinned   string   `json:"pinned,omitempty"`
	Route    *string  `json:"route"`
	Pool     string   `json:"pool"`
	FailOpen bool     `json:"fail_open"`
	Fallback string   `json:"fallback,omitempty"`
	Chosen   []string `json:"chosen"`
}

// Explain asks what q's client gets; raw is the answer as the server wrote it.
func (c *Client) Explain(ctx context.Context, q ExplainQuery) (*Explain, json.RawMessage, error) {
	v := url.Values{"domain": {q.Domain}}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.Subnet != "" {
		v.Set("subnet", q.Subnet)
	}
	if q.Client != "" {
		v.Set("client", q.Client)
	}
	resp, err := c.Do(ctx, http.MethodGet, "/api/v1/explain?"+v.Encode(), nil, nil)
	if err != nil {
		return nil, nil, err
	}
	var out Explain
	if err := decode(resp, &out); err != nil {
		return nil, nil, err
	}
	return &out, resp.Body, nil
}

// Event is one entry of the event ring; the members beyond these vary by kind.
type Event map[string]any

// Events is GET /api/v1/events.
type Events struct {
	Events []Event `json:"events"`
	Last   uint64  `json:"last"`
	Epoch  uint64  `json:"epoch,omitempty"`
}

// Events lists the events after id since, oldest first.
func (c *Client) Events(ctx context.Context, since uint64) (*Events, error) {
	var out Events
	if err := c.getJSON(ctx, fmt.Sprintf("/api/v1/events?since=%d", since), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
