package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Explainer is a Control that can say what a client gets and why (GET /api/v1/explain).
type Explainer interface {
	// Explain answers q with the query path's own decision code.
	Explain(q ExplainQuery) (ExplainDoc, error)
}

// ErrNotManaged is wrapped by Explain's error for a name gtm does not manage (404).
var ErrNotManaged = errors.New("not a managed domain")

// ExplainQuery is who asks what: Subnet (an ECS client subnet) or Client (a source address).
type ExplainQuery struct {
	Domain string // lower-case FQDN
	Type   uint16 // dns.TypeA, TypeAAAA, TypeCNAME, TypeHTTPS or TypeSRV
	Subnet *netip.Prefix
	Client netip.Addr
}

// ExplainDoc is the body of GET /api/v1/explain.
type ExplainDoc struct {
	Domain string `json:"domain"`
	Type   string `json:"type"`
	Client string `json:"client"` // the address (or subnet) routed on
	// ECS reports whether the answer carries an ECS option: only for subnet= (a query with
	// ECS); Scope is its SCOPE PREFIX-LENGTH.
	ECS    bool     `json:"ecs"`
	Scope  int      `json:"scope"`
	TTL    uint32   `json:"ttl"`
	Geo    GeoFacts `json:"geo"`
	Steps  []HopDoc `json:"steps"`  // one per name of the answer (CNAMEs to our own names are followed)
	Answer []string `json:"answer"` // the records' data, as a query gets them
	Rcode  string   `json:"rcode"`
}

// GeoFacts are what the databases say of the client.
type GeoFacts struct {
	Known      bool        `json:"known"` // false for ECS source prefix 0: location unknown
	Found      bool        `json:"found"`
	Continent  string      `json:"continent,omitempty"`
	Country    string      `json:"country,omitempty"`
	Region     string      `json:"region,omitempty"`
	Location   *[2]float64 `json:"location,omitempty"`
	Network    string      `json:"network,omitempty"` // the geo database network holding the client
	ASNFound   bool        `json:"asn_found"`
	ASN        uint32      `json:"asn,omitempty"`
	ASNNetwork string      `json:"asn_network,omitempty"`
}

// HopDoc is the decision for one managed name.
type HopDoc struct {
	Name        string            `json:"name"`
	Domain      string            `json:"domain"` // the managed domain answering it (a wildcard's own name)
	TTL         uint32            `json:"ttl"`
	Pinned      string            `json:"pinned,omitempty"`       // the pin in force
	DanglingPin string            `json:"dangling_pin,omitempty"` // a pin to a pool that is gone: ignored
	Routes      []ExplainRouteDoc `json:"routes"`
	Route       *string           `json:"route"`      // the selector of the route chosen; null when pinned or none matched
	GeoFenced   bool              `json:"geo_fenced"` // no route matches: no answer
	Pools       []ExplainPoolDoc  `json:"pools"`      // the pools considered, in order
	Pool        string            `json:"pool"`       // the pool answered from
	FailOpen    bool              `json:"fail_open"`
	Candidates  []string          `json:"candidates"` // the addresses the answer was drawn from
	Chosen      []string          `json:"chosen"`     // the addresses (or CNAME target) chosen
	Overrides   []string          `json:"overrides"`  // address modes and disabled addresses that applied
	Scope       int               `json:"scope"`
	// Failover in depth: the fallback that answered when no pool was available (nodata,
	// servfail, pool), the pool a failback hold kept the route on, the client network lb
	// hashed hashed, and whether the answer is degraded (its TTL then the degraded one).
	Fallback     string `json:"fallback,omitempty"`
	Held         string `json:"held,omitempty"`
	HashedPrefix string `json:"hashed_prefix,omitempty"`
	Degraded     bool   `json:"degraded"`
	// Brake: the mass-failure brake is engaged and holds some considered address's verdict
	// (Overrides names each).
	Brake bool `json:"brake,omitempty"`
}

// ExplainRouteDoc is one route of the domain and whether it matched.
type ExplainRouteDoc struct {
	Selector  string   `json:"selector"`
	Select    string   `json:"select"`
	Pools     []string `json:"pools"`
	MatchedBy string   `json:"matched_by"` // the term kind that matched, "" for none
	Chosen    bool     `json:"chosen"`
}

// ExplainPoolDoc is a pool considered and its availability.
type ExplainPoolDoc struct {
	Name         string `json:"name"`
	LB           string `json:"lb"`
	Available    bool   `json:"available"` // for the query's family
	Up           int    `json:"up"`
	MinAvailable int    `json:"min_available"`
}

func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	ex, ok := h.cfg.Control.(Explainer)
	if !ok {
		writeError(w, http.StatusNotFound, "explain is not available")
		return
	}
	qs := r.URL.Query()
	name := qs.Get("domain")
	if name == "" {
		writeError(w, http.StatusBadRequest, "missing domain")
		return
	}
	if _, ok := dns.IsDomainName(name); !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("domain %q is not a domain name", name))
		return
	}
	q := ExplainQuery{Domain: strings.ToLower(dns.Fqdn(name)), Type: dns.TypeA}
	if t := qs.Get("type"); t != "" {
		tt, ok := dns.StringToType[strings.ToUpper(t)]
		if !ok || (tt != dns.TypeA && tt != dns.TypeAAAA && tt != dns.TypeCNAME && tt != dns.TypeHTTPS && tt != dns.TypeSRV) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("type %q: expected A, AAAA, CNAME, HTTPS or SRV", t))
			return
		}
		q.Type = tt
	}
	sub, cl := qs.Get("subnet"), qs.Get("client")
	switch {
	case sub != "" && cl != "":
		writeError(w, http.StatusBadRequest, "give subnet or client, not both")
		return
	case sub != "":
		p, err := netip.ParsePrefix(sub)
		if err != nil {
			if a, err2 := netip.ParseAddr(sub); err2 == nil {
				p, err = netip.PrefixFrom(a, a.BitLen()), nil
			}
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("subnet %q: expected a CIDR such as 203.0.113.0/24", sub))
			return
		}
		p = p.Masked()
		q.Subnet = &p
	case cl != "":
		a, err := netip.ParseAddr(cl)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client %q: expected an IP address", cl))
			return
		}
		q.Client = a.Unmap()
	default:
		writeError(w, http.StatusBadRequest, "missing subnet or client: who asks?")
		return
	}
	doc, err := ex.Explain(q)
	switch {
	case errors.Is(err, ErrNotManaged):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, doc)
	}
}
