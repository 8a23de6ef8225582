package tfprovider

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// dataBase is what the data sources share.
type dataBase struct{ c *client.Client }

func (d *dataBase) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.c = configured(req.ProviderData, &resp.Diagnostics)
}

// --- gtm_healthcheck, gtm_pool, gtm_domain (data) ---

// configData reads one configuration resource, Corefile-defined or API-managed.
type configData struct {
	dataBase
	kind client.Kind
}

type configDataModel struct {
	Name   types.String `tfsdk:"name"`
	ID     types.String `tfsdk:"id"`
	Source types.String `tfsdk:"source"`
	ETag   types.String `tfsdk:"etag"`
	JSON   types.String `tfsdk:"json"`
}

func newConfigDataSource(k client.Kind) func() datasource.DataSource {
	return func() datasource.DataSource { return &configData{kind: k} }
}

func (d *configData) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_" + d.kind.Singular()
}

func (d *configData) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	what := d.kind.Singular()
	resp.Schema = schema.Schema{
		Description: "Reads a " + what + " in force, defined in the Corefile (read-only through the API) or through the API " +
			"(GET /api/v1/config/" + string(d.kind) + "/{name}).",
		Attributes: map[string]schema.Attribute{
			"name":   schema.StringAttribute{Required: true, Description: "The " + what + "'s name."},
			"id":     schema.StringAttribute{Computed: true, Description: "The name as the API spells it."},
			"source": schema.StringAttribute{Computed: true, Description: "corefile or api."},
			"etag":   schema.StringAttribute{Computed: true, Description: "Its version (\"corefile\" for a Corefile resource)."},
			"json": schema.StringAttribute{Computed: true,
				Description: "Its JSON form with every default spelled out, as the API answers (jsondecode() it)."},
		},
	}
}

func (d *configData) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m configDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := canonical(d.kind, m.Name.ValueString())
	body, tag, err := d.c.GetRaw(ctx, d.kind, id)
	if err != nil {
		apiDiag(&resp.Diagnostics, "read "+d.kind.Singular()+" "+id, err)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		resp.Diagnostics.AddError("read "+d.kind.Singular()+" "+id, "unexpected answer: "+err.Error())
		return
	}
	src, _ := doc["source"].(string)
	m.ID, m.Source, m.ETag, m.JSON = types.StringValue(id), types.StringValue(src), types.StringValue(tag), types.StringValue(string(body))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// --- gtm_status ---

type statusData struct{ dataBase }

func newStatusDataSource() datasource.DataSource { return &statusData{} }

type statusModel struct {
	Zones   []types.String      `tfsdk:"zones"`
	Domains []statusDomainModel `tfsdk:"domains"`
	Pools   []statusPoolModel   `tfsdk:"pools"`
	JSON    types.String        `tfsdk:"json"`
}

type statusDomainModel struct {
	Name   types.String       `tfsdk:"name"`
	Pinned types.String       `tfsdk:"pinned"`
	Routes []statusRouteModel `tfsdk:"routes"`
}

type statusRouteModel struct {
	Selector types.String   `tfsdk:"selector"`
	Select   types.String   `tfsdk:"select"`
	Pools    []types.String `tfsdk:"pools"`
	Current  types.String   `tfsdk:"current"`
	FailOpen types.Bool     `tfsdk:"fail_open"`
}

type statusPoolModel struct {
	Name      types.String         `tfsdk:"name"`
	Available types.Bool           `tfsdk:"available"`
	Up        types.Int64          `tfsdk:"up"`
	LB        types.String         `tfsdk:"lb"`
	Mode      types.String         `tfsdk:"mode"`
	Addresses []statusAddressModel `tfsdk:"addresses"`
	// MembersStale and MembersError: a registry of its members cannot be reached.
	MembersStale types.Bool   `tfsdk:"members_stale"`
	MembersError types.String `tfsdk:"members_error"`
}

type statusAddressModel struct {
	Address  types.String `tfsdk:"address"`
	Up       types.Bool   `tfsdk:"up"`
	Healthy  types.Bool   `tfsdk:"healthy"`
	Mode     types.String `tfsdk:"mode"`
	Disabled types.Bool   `tfsdk:"disabled"`
	// Source is static or the registry it was discovered in; CheckAddress where it is probed.
	Source       types.String `tfsdk:"source"`
	CheckAddress types.String `tfsdk:"check_address"`
}

func (d *statusData) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_status"
}

func (d *statusData) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.Attribute { return schema.StringAttribute{Computed: true, Description: desc} }
	boolean := func(desc string) schema.Attribute { return schema.BoolAttribute{Computed: true, Description: desc} }
	strs := func(desc string) schema.Attribute {
		return schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: desc}
	}
	resp.Schema = schema.Schema{
		Description: "The state of every domain, pool and address now (GET /api/v1/status).",
		Attributes: map[string]schema.Attribute{
			"zones": strs("The gtm block's zones."),
			"json":  str("The whole status as the API answers it (jsondecode() it for health details, votes, history)."),
			"domains": schema.ListNestedAttribute{Computed: true, Description: "Every managed domain.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":   str("Its FQDN."),
					"pinned": str("The pool it is pinned to, or empty."),
					"routes": schema.ListNestedAttribute{Computed: true, Description: "Its routes and the pool each selects now.",
						NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
							"selector":  str("The route's selector."),
							"select":    str("failover, weighted, nearest, fastest or all."),
							"pools":     strs("Its pools, in order."),
							"current":   str("The pool a client of unknown location is answered from now."),
							"fail_open": boolean("No pool is available and the route fails open."),
						}}},
				}}},
			"pools": schema.ListNestedAttribute{Computed: true, Description: "Every pool.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":          str("Its name."),
					"available":     boolean("Enough healthy addresses (min_available)."),
					"up":            schema.Int64Attribute{Computed: true, Description: "Addresses that may be answered now."},
					"lb":            str("Its lb."),
					"mode":          str("The pool mode in force (auto: none)."),
					"members_stale": boolean("A registry of its members cannot be reached or errs: its last members stay."),
					"members_error": str("Why members_stale (each stale source and its error), or empty."),
					"addresses": schema.ListNestedAttribute{Computed: true, Description: "Its addresses.",
						NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
							"address":       str("The address."),
							"up":            boolean("May be answered now."),
							"healthy":       boolean("The health checks' verdict."),
							"mode":          str("auto, up or down."),
							"disabled":      boolean("Disabled in the configuration."),
							"source":        str("Where it comes from: static, dns:NAME, srv:NAME, kubernetes:NAMESPACE/SERVICE."),
							"check_address": str("Where its probes go, when not to address, or empty."),
						}}},
				}}},
		},
	}
}

func strList(in []string) []types.String {
	out := make([]types.String, 0, len(in))
	for _, s := range in {
		out = append(out, types.StringValue(s))
	}
	return out
}

func (d *statusData) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	st, raw, err := d.c.Status(ctx)
	if err != nil {
		apiDiag(&resp.Diagnostics, "read the status", err)
		return
	}
	m := statusModel{Zones: strList(st.Zones), JSON: types.StringValue(string(raw)), Domains: []statusDomainModel{}, Pools: []statusPoolModel{}}
	for _, dm := range st.Domains {
		sd := statusDomainModel{Name: types.StringValue(dm.Name), Pinned: types.StringValue(dm.Pinned), Routes: []statusRouteModel{}}
		for _, r := range dm.Routes {
			sd.Routes = append(sd.Routes, statusRouteModel{Selector: types.StringValue(r.Selector), Select: types.StringValue(r.Select),
				Pools: strList(r.Pools), Current: types.StringValue(r.Current), FailOpen: types.BoolValue(r.FailOpen)})
		}
		m.Domains = append(m.Domains, sd)
	}
	for _, p := range st.Pools {
		mode := p.Mode
		if mode == "" {
			mode = "auto"
		}
		sp := statusPoolModel{Name: types.StringValue(p.Name), Available: types.BoolValue(p.Available), Up: types.Int64Value(int64(p.Up)),
			LB: types.StringValue(p.LB), Mode: types.StringValue(mode), Addresses: []statusAddressModel{},
			MembersStale: types.BoolValue(p.MembersStale), MembersError: types.StringValue(p.MembersError)}
		for _, a := range p.Addresses {
			sp.Addresses = append(sp.Addresses, statusAddressModel{Address: types.StringValue(a.Address), Up: types.BoolValue(a.Up),
				Healthy: types.BoolValue(a.Healthy), Mode: types.StringValue(a.Mode), Disabled: types.BoolValue(a.Disabled),
				Source: types.StringValue(a.Source), CheckAddress: types.StringValue(a.CheckAddress)})
		}
		m.Pools = append(m.Pools, sp)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// --- gtm_explain ---

type explainData struct{ dataBase }

func newExplainDataSource() datasource.DataSource { return &explainData{} }

type explainModel struct {
	Domain types.String   `tfsdk:"domain"`
	Type   types.String   `tfsdk:"type"`
	Subnet types.String   `tfsdk:"subnet"`
	Client types.String   `tfsdk:"client"`
	Rcode  types.String   `tfsdk:"rcode"`
	TTL    types.Int64    `tfsdk:"ttl"`
	Scope  types.Int64    `tfsdk:"scope"`
	Answer []types.String `tfsdk:"answer"`
	Pool   types.String   `tfsdk:"pool"`
	Route  types.String   `tfsdk:"route"`
	JSON   types.String   `tfsdk:"json"`
}

func (d *explainData) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_explain"
}

func (d *explainData) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "What a client gets for a managed name and why (GET /api/v1/explain): the query path's own decision.",
		Attributes: map[string]schema.Attribute{
			"domain": schema.StringAttribute{Required: true, Description: "The managed name asked for."},
			"type":   schema.StringAttribute{Optional: true, Description: "A (default), AAAA or CNAME."},
			"subnet": schema.StringAttribute{Optional: true, Description: "The client as an ECS client subnet, e.g. 203.0.113.0/24."},
			"client": schema.StringAttribute{Optional: true, Description: "The client as a query's source address (no ECS)."},
			"rcode":  schema.StringAttribute{Computed: true, Description: "The answer's rcode."},
			"ttl":    schema.Int64Attribute{Computed: true, Description: "The answer's TTL."},
			"scope":  schema.Int64Attribute{Computed: true, Description: "The answer's ECS scope prefix length."},
			"answer": schema.ListAttribute{Computed: true, ElementType: types.StringType, Description: "The answer's records, as text."},
			"pool":   schema.StringAttribute{Computed: true, Description: "The pool answered from (of the last name of the chain)."},
			"route":  schema.StringAttribute{Computed: true, Description: "The selector of the route that matched (empty when pinned or none)."},
			"json":   schema.StringAttribute{Computed: true, Description: "The whole decision as the API answers it."},
		},
	}
}

func (d *explainData) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m explainModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ex, raw, err := d.c.Explain(ctx, client.ExplainQuery{Domain: m.Domain.ValueString(), Type: strOf(m.Type), Subnet: strOf(m.Subnet), Client: strOf(m.Client)})
	if err != nil {
		if client.StatusOf(err) == http.StatusNotFound {
			resp.Diagnostics.AddAttributeError(path.Root("domain"), "explain "+m.Domain.ValueString(), err.Error())
			return
		}
		apiDiag(&resp.Diagnostics, "explain "+m.Domain.ValueString(), err)
		return
	}
	m.Rcode, m.TTL, m.Scope = types.StringValue(ex.Rcode), types.Int64Value(ex.TTL), types.Int64Value(int64(ex.Scope))
	m.Answer, m.JSON = strList(ex.Answer), types.StringValue(string(raw))
	m.Pool, m.Route = types.StringValue(""), types.StringValue("")
	if n := len(ex.Steps); n > 0 {
		last := ex.Steps[n-1]
		m.Pool = types.StringValue(last.Pool)
		if last.Route != nil {
			m.Route = types.StringValue(*last.Route)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
