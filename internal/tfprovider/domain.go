package tfprovider

import (
	"context"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// domainModel is gtm_domain: the JSON form of a managed domain (DomainInput).
type domainModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	ETag        types.String `tfsdk:"etag"`
	TTL         types.Int64  `tfsdk:"ttl"`
	TTLDegraded types.Int64  `tfsdk:"ttl_degraded"`
	Fallback    types.String `tfsdk:"fallback"`
	Failback    types.String `tfsdk:"failback"`
	Routes      []routeModel `tfsdk:"routes"`
	HTTPS       *httpsModel  `tfsdk:"https"`
	SRV         []srvModel   `tfsdk:"srv"`
}

type httpsModel struct {
	Priority types.Int64    `tfsdk:"priority"`
	ALPN     []types.String `tfsdk:"alpn"`
	Port     types.Int64    `tfsdk:"port"`
	Hints    types.Bool     `tfsdk:"hints"`
}

type srvModel struct {
	Service  types.String `tfsdk:"service"`
	Port     types.Int64  `tfsdk:"port"`
	Priority types.Int64  `tfsdk:"priority"`
}

type routeModel struct {
	Selector types.String   `tfsdk:"selector"`
	Pools    []types.String `tfsdk:"pools"`
	Select   types.String   `tfsdk:"select"`
}

func newDomainResource() resource.Resource {
	return &configResource[domainModel, client.Domain]{k: domainKind}
}

// int64Ptr is a known number as a pointer, nil for null or unknown.
func int64Ptr(v types.Int64) *int64 {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	n := v.ValueInt64()
	return &n
}

var domainKind = kind[domainModel, client.Domain]{
	api:      client.KindDomain,
	typeName: "domain",
	schema:   domainSchema,
	meta: func(m *domainModel) (*types.String, *types.String, *types.String) {
		return &m.Name, &m.ID, &m.ETag
	},
	source: func(a *client.Domain) string { return a.Source },
	toAPI: func(_ context.Context, m *domainModel) (client.Domain, diag.Diagnostics) {
		d := client.Domain{TTL: int64Ptr(m.TTL), TTLDegraded: int64Ptr(m.TTLDegraded),
			Fallback: strOf(m.Fallback), Failback: strOf(m.Failback), Routes: []client.Route{}}
		for _, r := range m.Routes {
			rt := client.Route{Selector: strOf(r.Selector), Select: strOf(r.Select), Pools: []string{}}
			for _, p := range r.Pools {
				rt.Pools = append(rt.Pools, strOf(p))
			}
			d.Routes = append(d.Routes, rt)
		}
		// An absent block is nil; `https {}` is HTTPS with the defaults.
		if h := m.HTTPS; h != nil {
			d.HTTPS = &client.HTTPS{Priority: int(intOf(h.Priority)), Port: int(intOf(h.Port))}
			for _, a := range h.ALPN {
				d.HTTPS.ALPN = append(d.HTTPS.ALPN, strOf(a))
			}
			if !h.Hints.IsNull() && !h.Hints.IsUnknown() {
				v := h.Hints.ValueBool()
				d.HTTPS.Hints = &v
			}
		}
		for _, s := range m.SRV {
			d.SRV = append(d.SRV, client.SRV{Service: strOf(s.Service), Port: int(intOf(s.Port)), Priority: int(intOf(s.Priority))})
		}
		return d, nil
	},
	fromAPI: func(_ context.Context, pr *domainModel, a *client.Domain) (domainModel, diag.Diagnostics) {
		m := domainModel{
			TTL:      types.Int64Null(),
			Fallback: keepString(pr.Fallback, a.Fallback, "open", sameString),
			Failback: keepString(pr.Failback, a.Failback, "auto", sameDuration),
			Routes:   []routeModel{},
		}
		if a.TTL != nil {
			m.TTL = keepIntC(pr.TTL, *a.TTL)
		}
		m.TTLDegraded = types.Int64Null()
		if a.TTLDegraded != nil {
			m.TTLDegraded = keepIntC(pr.TTLDegraded, *a.TTLDegraded)
		}
		for i, r := range a.Routes {
			var p routeModel
			if i < len(pr.Routes) {
				p = pr.Routes[i]
			}
			rt := routeModel{Selector: keepStringC(p.Selector, r.Selector, sameString), Select: keepStringC(p.Select, r.Select, sameString)}
			prior := make([]string, len(p.Pools))
			for j, x := range p.Pools {
				prior[j] = strOf(x)
			}
			if slices.Equal(prior, r.Pools) && len(p.Pools) > 0 {
				rt.Pools = p.Pools
			} else {
				rt.Pools = []types.String{}
				for _, x := range r.Pools {
					rt.Pools = append(rt.Pools, types.StringValue(x))
				}
			}
			m.Routes = append(m.Routes, rt)
		}
		if h := a.HTTPS; h != nil {
			var p httpsModel
			if pr.HTTPS != nil {
				p = *pr.HTTPS
			}
			hm := &httpsModel{Priority: keepInt(p.Priority, int64(h.Priority), 0), Port: keepInt(p.Port, int64(h.Port), 0), Hints: types.BoolNull()}
			if h.Hints != nil {
				hm.Hints = keepBoolC(p.Hints, *h.Hints)
			}
			if len(h.ALPN) > 0 || p.ALPN != nil {
				hm.ALPN = strList(h.ALPN)
			}
			m.HTTPS = hm
		}
		m.SRV = []srvModel{}
		for i, s := range a.SRV {
			var p srvModel
			if i < len(pr.SRV) {
				p = pr.SRV[i]
			}
			m.SRV = append(m.SRV, srvModel{Service: keepStringC(p.Service, s.Service, sameString), Port: keepIntC(p.Port, int64(s.Port)),
				Priority: keepInt(p.Priority, int64(s.Priority), 0)})
		}
		return m, nil
	},
}

func domainSchema() schema.Schema {
	return schema.Schema{
		Description: "A managed domain (`domain NAME { ... }` in the Corefile; PUT /api/v1/config/domains/{domain}): " +
			"its routes map clients to ordered lists of pools. Attributes are the JSON form's members.",
		Attributes: metaAttributes("domain", "The domain, a name inside the gtm block's zones (with or without the final dot, any case).", map[string]schema.Attribute{
			"ttl": schema.Int64Attribute{Optional: true, Computed: true,
				Description: "The answers' TTL in seconds (default: the gtm block's ttl)."},
			"ttl_degraded": schema.Int64Attribute{Optional: true,
				Description: "The TTL while the answer is not the route's first choice or comes from fail-open or a fallback."},
			"fallback": schema.StringAttribute{Optional: true,
				Description: "What a route answers when none of its pools is available: open (default), nodata, servfail, or a pool name."},
			"failback": schema.StringAttribute{Optional: true,
				Description: "When a failed-over route goes back to a better pool: auto (default), manual, or a Go duration."},
		}),
		Blocks: map[string]schema.Block{
			"routes": schema.ListNestedBlock{
				Description: "A route (repeatable, at least one, in order): clients matching selector are answered from pools.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"selector": schema.StringAttribute{Required: true,
						Description: "default, or terms such as continent:EU,country:GB, region:US-CA, asn:64500, net:CIDR."},
					"pools": schema.ListAttribute{Required: true, ElementType: types.StringType,
						Description: "The pools, in order."},
					"select": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("failover"),
						Description: "How the pools are used: failover (default: the first available), weighted, nearest, fastest or all."},
				}},
			},
			"https": schema.SingleNestedBlock{
				Description: "Answer HTTPS (type 65) queries at the domain in ServiceMode, target \".\", derived from the same decision as A/AAAA (without it: NODATA).",
				Attributes: map[string]schema.Attribute{
					"priority": schema.Int64Attribute{Optional: true, Description: "SvcPriority, 1 to 65535 (default 1)."},
					"alpn":     schema.ListAttribute{Optional: true, ElementType: types.StringType, Description: "ALPN ids, e.g. [\"h3\", \"h2\"]."},
					"port":     schema.Int64Attribute{Optional: true, Description: "The port key (default: none, the scheme's port)."},
					"hints":    schema.BoolAttribute{Optional: true, Description: "ipv4hint/ipv6hint = the addresses this client gets (default on for pools of addresses)."},
				},
			},
			"srv": schema.ListNestedBlock{
				Description: "SRV records at _SERVICE._PROTO under the domain (repeatable): one record per answered address.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"service":  schema.StringAttribute{Required: true, Description: "_SERVICE._PROTO, e.g. _sip._udp."},
					"port":     schema.Int64Attribute{Required: true, Description: "The records' port."},
					"priority": schema.Int64Attribute{Optional: true, Description: "The records' priority (default 0)."},
				}},
			},
		},
	}
}
