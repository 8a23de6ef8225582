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
		},
	}
}
