package tfprovider

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// The overrides (address modes, pool modes, pins) are not versioned resources: the API
// has no ETag for them, and writing one is idempotent. Their resources read them back from
// the status (or the pool mode), so a restore or unpin made elsewhere shows as drift.

// override describes one kind of override to the shared lifecycle of overrideResource; M is
// its Terraform model.
type override[M any] struct {
	typeName string // without the provider prefix: "pin"
	schema   func() schema.Schema
	// label names the override in messages: "the mode of pool eu".
	label func(m *M) string
	// set writes what m asks for; it sets m's id first (a write that stands although it
	// failed, one the fleet did not apply in time, is recorded as m) and keeps m's spelling
	// of what the server answers the same.
	set func(ctx context.Context, c *client.Client, m *M) error
	// get reads the override into m; false: it is gone with its pool, address or domain.
	get func(ctx context.Context, c *client.Client, m *M) (bool, error)
	// clear undoes the override (destroy).
	clear func(ctx context.Context, c *client.Client, m *M) error
	// importAttrs are the attributes an import ID sets.
	importAttrs func(id string) (map[string]string, error)
}

// overrideResource is the lifecycle of an override: create and update set it, read takes it
// from the server, delete clears it, import parses the ID.
type overrideResource[M any] struct {
	o override[M]
	c *client.Client
}

var _ resource.ResourceWithImportState = (*overrideResource[pinModel])(nil)

func (r *overrideResource[M]) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_" + r.o.typeName
}

func (r *overrideResource[M]) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = r.o.schema()
}

func (r *overrideResource[M]) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configured(req.ProviderData, &resp.Diagnostics)
}

// write sets the override the plan asks for and records it in state.
func (r *overrideResource[M]) write(ctx context.Context, plan tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics) {
	var m M
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	if err := r.o.set(ctx, r.c, &m); err != nil {
		if client.Lagging(err) {
			diags.Append(state.Set(ctx, &m)...) // the write stands
		}
		apiDiag(diags, "set "+r.o.label(&m), err)
		return
	}
	diags.Append(state.Set(ctx, &m)...)
}

func (r *overrideResource[M]) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.write(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *overrideResource[M]) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.write(ctx, req.Plan, &resp.State, &resp.Diagnostics)
}

func (r *overrideResource[M]) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m M
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	found, err := r.o.get(ctx, r.c, &m)
	if err != nil {
		apiDiag(&resp.Diagnostics, "read "+r.o.label(&m), err)
		return
	}
	if !found {
		// The pool, address or domain is gone, and its override with it.
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *overrideResource[M]) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m M
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.o.clear(ctx, r.c, &m); err != nil && client.StatusOf(err) != http.StatusNotFound {
		apiDiag(&resp.Diagnostics, "clear "+r.o.label(&m), err)
	}
}

func (r *overrideResource[M]) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	attrs, err := r.o.importAttrs(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	for name, v := range attrs {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(name), v)...)
	}
}

// --- the attributes they share ---

func replaceString() []planmodifier.String {
	return []planmodifier.String{stringplanmodifier.RequiresReplace()}
}

// overrideAttributes are an override's own attributes plus id (described by idDesc) and
// the window (from, until).
func overrideAttributes(idDesc string, attrs map[string]schema.Attribute) map[string]schema.Attribute {
	attrs["id"] = schema.StringAttribute{Computed: true, Description: idDesc,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
	attrs["from"] = schema.StringAttribute{Optional: true,
		Description: "RFC 3339: the override starts then (a scheduled maintenance window); stored at once."}
	attrs["until"] = schema.StringAttribute{Optional: true,
		Description: "RFC 3339: the override ends then by itself (the server reverts it, and the next plan shows it as drift)."}
	return attrs
}

// window is the from and until of an override as the server reports them: a window that
// started reports no start, so the configuration's (in the past) stands.
func window(from, until *types.String, gotFrom, gotUntil string, started bool) {
	if started {
		gotFrom = strOf(*from)
	}
	*from = keepString(*from, gotFrom, "", sameTime)
	*until = keepString(*until, gotUntil, "", sameTime)
}

// --- gtm_address_mode ---

type addressModeModel struct {
	ID      types.String `tfsdk:"id"`
	Pool    types.String `tfsdk:"pool"`
	Address types.String `tfsdk:"address"`
	Mode    types.String `tfsdk:"mode"`
	From    types.String `tfsdk:"from"`
	Until   types.String `tfsdk:"until"`
}

func newAddressModeResource() resource.Resource {
	return &overrideResource[addressModeModel]{o: addressModeOverride}
}

var addressModeOverride = override[addressModeModel]{
	typeName: "address_mode",
	schema: func() schema.Schema {
		return schema.Schema{
			Description: "An address's own override in a pool (PUT /api/v1/pools/{pool}/addresses/{address}/mode): " +
				"down drains it (maintenance), up forces it in, auto gives it back to its health checks. Destroying the resource sets auto.",
			Attributes: overrideAttributes("POOL/ADDRESS (the import ID).", map[string]schema.Attribute{
				"pool":    schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "The pool."},
				"address": schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "An address of the pool as its configuration writes it (IPv6 in any spelling)."},
				"mode":    schema.StringAttribute{Required: true, Description: "auto, up or down."},
			}),
		}
	},
	label: func(m *addressModeModel) string {
		return fmt.Sprintf("the mode of %s in pool %s", m.Address.ValueString(), m.Pool.ValueString())
	},
	set: func(ctx context.Context, c *client.Client, m *addressModeModel) error {
		m.ID = types.StringValue(m.Pool.ValueString() + "/" + m.Address.ValueString())
		res, err := c.SetAddressMode(ctx, m.Pool.ValueString(), m.Address.ValueString(),
			client.ModeRequest{Mode: m.Mode.ValueString(), From: strOf(m.From), Until: strOf(m.Until)})
		if err != nil {
			return err
		}
		window(&m.From, &m.Until, res.From, res.Until, false)
		return nil
	},
	get: func(ctx context.Context, c *client.Client, m *addressModeModel) (bool, error) {
		st, _, err := c.Status(ctx)
		if err != nil {
			return false, err
		}
		p := st.Pool(m.Pool.ValueString())
		var a *client.StatusAddress
		if p != nil {
			for i := range p.Addresses {
				if sameAddress(p.Addresses[i].Address, m.Address.ValueString()) {
					a = &p.Addresses[i]
				}
			}
		}
		if a == nil {
			return false, nil
		}
		mode, from, until, started := "auto", "", "", false
		switch {
		case a.Scheduled != nil && a.Scheduled.Mode != "":
			mode, from, until = a.Scheduled.Mode, a.Scheduled.From, a.Scheduled.Until
		case a.ModeSource == "address" || (a.ModeSource == "" && a.Mode != "auto"):
			mode, until, started = a.Mode, a.Until, true
		}
		m.Mode = keepStringC(m.Mode, mode, sameString)
		window(&m.From, &m.Until, from, until, started)
		if m.ID.IsNull() {
			m.ID = types.StringValue(m.Pool.ValueString() + "/" + m.Address.ValueString())
		}
		return true, nil
	},
	clear: func(ctx context.Context, c *client.Client, m *addressModeModel) error {
		_, err := c.SetAddressMode(ctx, m.Pool.ValueString(), m.Address.ValueString(), client.ModeRequest{Mode: "auto"})
		return err
	},
	importAttrs: func(id string) (map[string]string, error) {
		pool, addr, ok := strings.Cut(id, "/")
		if !ok || pool == "" || addr == "" {
			return nil, fmt.Errorf("%q: expected POOL/ADDRESS, e.g. eu/192.0.2.1", id)
		}
		return map[string]string{"id": id, "pool": pool, "address": addr}, nil
	},
}

// --- gtm_pool_mode ---

type poolModeModel struct {
	ID    types.String `tfsdk:"id"`
	Pool  types.String `tfsdk:"pool"`
	Mode  types.String `tfsdk:"mode"`
	From  types.String `tfsdk:"from"`
	Until types.String `tfsdk:"until"`
}

func newPoolModeResource() resource.Resource {
	return &overrideResource[poolModeModel]{o: poolModeOverride}
}

var poolModeOverride = override[poolModeModel]{
	typeName: "pool_mode",
	schema: func() schema.Schema {
		return schema.Schema{
			Description: "A whole pool's mode (PUT /api/v1/pools/{pool}/mode): down drains a datacenter, for every address whose own mode is auto. " +
				"Destroying the resource clears it.",
			Attributes: overrideAttributes("The pool (the import ID).", map[string]schema.Attribute{
				"pool": schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "The pool."},
				"mode": schema.StringAttribute{Required: true, Description: "auto, up or down."},
			}),
		}
	},
	label: func(m *poolModeModel) string { return "the mode of pool " + m.Pool.ValueString() },
	set: func(ctx context.Context, c *client.Client, m *poolModeModel) error {
		m.ID = m.Pool
		res, err := c.SetPoolMode(ctx, m.Pool.ValueString(), client.ModeRequest{Mode: m.Mode.ValueString(), From: strOf(m.From), Until: strOf(m.Until)})
		if err != nil {
			return err
		}
		window(&m.From, &m.Until, res.From, res.Until, false)
		return nil
	},
	get: func(ctx context.Context, c *client.Client, m *poolModeModel) (bool, error) {
		pm, err := c.PoolMode(ctx, m.Pool.ValueString())
		if client.StatusOf(err) == http.StatusNotFound {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		m.Mode = keepStringC(m.Mode, pm.Mode, sameString)
		window(&m.From, &m.Until, pm.From, pm.Until, !pm.Scheduled && pm.From != "")
		m.ID = m.Pool
		return true, nil
	},
	clear: func(ctx context.Context, c *client.Client, m *poolModeModel) error {
		return c.ClearPoolMode(ctx, m.Pool.ValueString())
	},
	importAttrs: func(id string) (map[string]string, error) {
		return map[string]string{"id": id, "pool": id}, nil
	},
}

// --- gtm_pin ---

type pinModel struct {
	ID     types.String `tfsdk:"id"`
	Domain types.String `tfsdk:"domain"`
	Pool   types.String `tfsdk:"pool"`
	From   types.String `tfsdk:"from"`
	Until  types.String `tfsdk:"until"`
}

func newPinResource() resource.Resource {
	return &overrideResource[pinModel]{o: pinOverride}
}

var pinOverride = override[pinModel]{
	typeName: "pin",
	schema: func() schema.Schema {
		return schema.Schema{
			Description: "Pins a domain to one pool regardless of its routes (PUT /api/v1/domains/{domain}/pin): the manual disaster-recovery switch. " +
				"Destroying the resource unpins the domain.",
			Attributes: overrideAttributes("The domain's FQDN (the import ID).", map[string]schema.Attribute{
				"domain": schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "A managed domain (with or without the final dot)."},
				"pool":   schema.StringAttribute{Required: true, Description: "The pool every client of the domain is answered from."},
			}),
		}
	},
	label: func(m *pinModel) string { return "the pin of " + m.Domain.ValueString() },
	set: func(ctx context.Context, c *client.Client, m *pinModel) error {
		m.ID = types.StringValue(canonical(client.KindDomain, m.Domain.ValueString()))
		res, err := c.SetPin(ctx, m.Domain.ValueString(), client.PinRequest{Pool: m.Pool.ValueString(), From: strOf(m.From), Until: strOf(m.Until)})
		if err != nil {
			return err
		}
		window(&m.From, &m.Until, res.From, res.Until, false)
		return nil
	},
	get: func(ctx context.Context, c *client.Client, m *pinModel) (bool, error) {
		st, _, err := c.Status(ctx)
		if err != nil {
			return false, err
		}
		fqdn := canonical(client.KindDomain, m.Domain.ValueString())
		d := st.Domain(fqdn)
		if d == nil {
			return false, nil
		}
		pool, from, until, started := d.Pinned, "", d.Until, false
		if d.Scheduled != nil && d.Scheduled.Pool != "" {
			pool, from, until = d.Scheduled.Pool, d.Scheduled.From, d.Scheduled.Until
		} else if pool != "" {
			started = true
		}
		if pool == "" {
			pool = d.DanglingPin
		}
		m.Pool = keepStringC(m.Pool, pool, sameString)
		window(&m.From, &m.Until, from, until, started)
		m.ID = types.StringValue(fqdn)
		return true, nil
	},
	clear: func(ctx context.Context, c *client.Client, m *pinModel) error {
		_, err := c.SetPin(ctx, m.Domain.ValueString(), client.PinRequest{Pool: ""})
		return err
	},
	importAttrs: func(id string) (map[string]string, error) {
		return map[string]string{"id": canonical(client.KindDomain, id), "domain": id}, nil
	},
}
