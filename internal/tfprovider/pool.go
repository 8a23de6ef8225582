package tfprovider

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/gtm-dns/coredns-gtm/client"
)

// poolModel is gtm_pool: the JSON form of a pool (PoolInput).
type poolModel struct {
	ID           types.String   `tfsdk:"id"`
	Name         types.String   `tfsdk:"name"`
	ETag         types.String   `tfsdk:"etag"`
	Addresses    []addressModel `tfsdk:"addresses"`
	Location     *locationModel `tfsdk:"location"`
	LB           types.String   `tfsdk:"lb"`
	Answers      types.Int64    `tfsdk:"answers"`
	HealthCheck  types.Dynamic  `tfsdk:"healthcheck"`
	Require      types.String   `tfsdk:"require"`
	MinAvailable types.String   `tfsdk:"min_available"`
	Weight       types.Int64    `tfsdk:"weight"`
	SlowStart    types.String   `tfsdk:"slow_start"`
	Members      []memberModel  `tfsdk:"members"`
	Flatten      *flattenModel  `tfsdk:"flatten"`
}

type addressModel struct {
	Address  types.String `tfsdk:"address"`
	Weight   types.Int64  `tfsdk:"weight"`
	Priority types.Int64  `tfsdk:"priority"`
	Disabled types.Bool   `tfsdk:"disabled"`
	// CheckAddress is where probes go instead of Address.
	CheckAddress types.String `tfsdk:"check_address"`
}

type locationModel struct {
	Lat types.Float64 `tfsdk:"lat"`
	Lon types.Float64 `tfsdk:"lon"`
}

func newPoolResource() resource.Resource {
	return &configResource[poolModel, client.Pool]{k: poolKind}
}

// namesOf reads a pool's healthcheck: a name, or a list (tuple) of names.
func namesOf(v types.Dynamic) ([]string, error) {
	if v.IsNull() || v.IsUnknown() || v.IsUnderlyingValueNull() {
		return nil, nil
	}
	if v.IsUnderlyingValueUnknown() {
		return nil, fmt.Errorf("unknown")
	}
	var elems []attr.Value
	switch u := v.UnderlyingValue().(type) {
	case basetypes.StringValue:
		if u.ValueString() == "" {
			return nil, nil
		}
		return []string{u.ValueString()}, nil
	case basetypes.TupleValue:
		elems = u.Elements()
	case basetypes.ListValue:
		elems = u.Elements()
	case basetypes.SetValue:
		elems = u.Elements()
	default:
		return nil, fmt.Errorf("expected a healthcheck name or a list of names, not %s", u.Type(context.Background()))
	}
	var out []string
	for _, e := range elems {
		s, ok := e.(basetypes.StringValue)
		if !ok || s.IsNull() || s.IsUnknown() {
			return nil, fmt.Errorf("expected a healthcheck name or a list of names")
		}
		out = append(out, s.ValueString())
	}
	return out, nil
}

// namesValue is the state value of the server's names: prior's when it names the same.
func namesValue(prior types.Dynamic, names []string) types.Dynamic {
	if p, err := namesOf(prior); err == nil && !prior.IsNull() && !prior.IsUnknown() && slices.Equal(p, names) {
		return prior
	}
	switch len(names) {
	case 0:
		return types.DynamicNull()
	case 1:
		return types.DynamicValue(types.StringValue(names[0]))
	}
	elems := make([]attr.Value, len(names))
	ts := make([]attr.Type, len(names))
	for i, n := range names {
		elems[i], ts[i] = types.StringValue(n), types.StringType
	}
	return types.DynamicValue(types.TupleValueMust(ts, elems))
}

// sameAddress compares pool addresses: IPs by value (IPv6 in any spelling), names by text
// without case or final dot.
func sameAddress(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 == nil && err2 == nil {
		return x == y
	}
	return sameFold(a, b)
}

var poolKind = kind[poolModel, client.Pool]{
	api:      client.KindPool,
	typeName: "pool",
	schema:   poolSchema,
	meta: func(m *poolModel) (*types.String, *types.String, *types.String) {
		return &m.Name, &m.ID, &m.ETag
	},
	source: func(a *client.Pool) string { return a.Source },
	toAPI: func(_ context.Context, m *poolModel) (client.Pool, diag.Diagnostics) {
		var diags diag.Diagnostics
		p := client.Pool{
			Addresses: []client.PoolAddress{}, LB: strOf(m.LB), Answers: int(intOf(m.Answers)),
			Require: client.Scalar(strOf(m.Require)), MinAvailable: client.Scalar(strOf(m.MinAvailable)),
			Weight: int(intOf(m.Weight)), SlowStart: strOf(m.SlowStart),
			Members: membersToAPI(m.Members), Flatten: flattenToAPI(m.Flatten),
		}
		for _, a := range m.Addresses {
			p.Addresses = append(p.Addresses, client.PoolAddress{Address: strOf(a.Address), Weight: int(intOf(a.Weight)),
				Priority: int(intOf(a.Priority)), Disabled: a.Disabled.ValueBool(), CheckAddress: strOf(a.CheckAddress)})
		}
		if m.Location != nil && !(m.Location.Lat.IsNull() && m.Location.Lon.IsNull()) {
			p.Location = &client.Location{Lat: m.Location.Lat.ValueFloat64(), Lon: m.Location.Lon.ValueFloat64()}
		}
		names, err := namesOf(m.HealthCheck)
		if err != nil {
			diags.AddAttributeError(path.Root("healthcheck"), "Invalid healthcheck", err.Error())
		}
		p.HealthCheck = names
		return p, diags
	},
	fromAPI: func(_ context.Context, pr *poolModel, a *client.Pool) (poolModel, diag.Diagnostics) {
		m := poolModel{
			LB:           keepStringC(pr.LB, a.LB, sameString),
			Answers:      keepInt(pr.Answers, int64(a.Answers), 0),
			HealthCheck:  namesValue(pr.HealthCheck, a.HealthCheck),
			Require:      keepString(pr.Require, string(a.Require), "all", sameString),
			MinAvailable: keepStringC(pr.MinAvailable, string(a.MinAvailable), sameString),
			Weight:       keepIntC(pr.Weight, int64(a.Weight)),
			SlowStart:    keepString(pr.SlowStart, a.SlowStart, "", sameDuration),
			Addresses:    []addressModel{},
			Members:      membersFromAPI(pr.Members, a.Members),
			Flatten:      flattenFromAPI(pr.Flatten, a.Flatten),
		}
		for i, ad := range a.Addresses {
			var p addressModel
			if i < len(pr.Addresses) {
				p = pr.Addresses[i]
			}
			m.Addresses = append(m.Addresses, addressModel{
				Address:      keepStringC(p.Address, ad.Address, sameAddress),
				Weight:       keepIntC(p.Weight, int64(ad.Weight)),
				Priority:     keepIntC(p.Priority, int64(ad.Priority)),
				Disabled:     keepBoolC(p.Disabled, ad.Disabled),
				CheckAddress: keepString(p.CheckAddress, ad.CheckAddress, "", sameAddress),
			})
		}
		if a.Location != nil {
			m.Location = &locationModel{Lat: types.Float64Value(a.Location.Lat), Lon: types.Float64Value(a.Location.Lon)}
		}
		return m, nil
	},
}

func poolSchema() schema.Schema {
	return schema.Schema{
		Description: "A pool of equivalent servers (`pool NAME { ... }` in the Corefile; PUT /api/v1/config/pools/{name}). " +
			"Attributes are the JSON form's members; omitted ones take the server's defaults.",
		Attributes: metaAttributes("pool", "The pool's name: 1 to 63 letters, digits, '.', '_' or '-'.", map[string]schema.Attribute{
			"lb": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("weighted"),
				Description: "How addresses are chosen: weighted (default), priority, random, all, fastest or hashed."},
			"answers": schema.Int64Attribute{Optional: true,
				Description: "Addresses per answer (default: all for lb all, else 1)."},
			"healthcheck": schema.DynamicAttribute{Optional: true,
				Description: "The template that checks every address, or a list of templates: \"web\" or [\"web\", \"tcp\"]."},
			"require": schema.StringAttribute{Optional: true,
				Description: "How many of the healthchecks must pass: all (default), any, or a number."},
			"min_available": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("1"),
				Description: "Healthy addresses the pool needs to be available: a count (2) or a share (\"50%\") of its enabled addresses, rounded up (default 1)."},
			"weight": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(1),
				Description: "The pool's weight in a route with select weighted (default 1)."},
			"slow_start": schema.StringAttribute{Optional: true,
				Description: "lb weighted or priority: a recovered or added address ramps up to its full weight over this Go duration."},
		}),
		Blocks: map[string]schema.Block{
			"addresses": schema.ListNestedBlock{
				Description: "A server of the pool (repeatable; a pool needs addresses, members or both): an IP address, or a domain name answered as a CNAME (or, with flatten, by its A/AAAA).",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"address": schema.StringAttribute{Required: true, Description: "An IP address or a domain name; a pool does not mix both."},
					"weight": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(1),
						Description: "Its share of answers under lb weighted (default 1)."},
					"priority": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(0),
						Description: "lb priority: the lowest available priority is answered (default 0)."},
					"disabled": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
						Description: "Kept in the pool but never answered (default false)."},
					"check_address": schema.StringAttribute{Optional: true,
						Description: "Where probes go instead of address (NAT, anycast, a VIP behind a load balancer): an IP address, in a pool of IP addresses."},
				}},
			},
			"members": membersBlock(),
			"flatten": flattenBlock(),
			"location": schema.SingleNestedBlock{
				Description: "The pool's datacenter, for routes with select nearest.",
				Attributes: map[string]schema.Attribute{
					"lat": schema.Float64Attribute{Optional: true, Description: "Latitude in degrees (-90 to 90)."},
					"lon": schema.Float64Attribute{Optional: true, Description: "Longitude in degrees (-180 to 180)."},
				},
			},
		},
	}
}
