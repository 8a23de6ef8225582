package tfprovider

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// The overrides (address modes, pool modes, pins) are not versioned resources: the API
// has no ETag for them, and writing one is idempotent. Their resources read them back from
// the status (or the pool mode), so a restore or unpin made elsewhere shows as drift.

func replaceString() []planmodifier.String {
	return []planmodifier.String{stringplanmodifier.RequiresReplace()}
}

func keepID() []planmodifier.String {
	return []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
}

var windowAttributes = map[string]schema.Attribute{
	"from": schema.StringAttribute{Optional: true,
		Description: "RFC 3339: the override starts then (a scheduled maintenance window); stored at once."},
	"until": schema.StringAttribute{Optional: true,
		Description: "RFC 3339: the override ends then by itself (the server reverts it, and the next plan shows it as drift)."},
}

func withWindow(attrs map[string]schema.Attribute) map[string]schema.Attribute {
	for k, v := range windowAttributes {
		attrs[k] = v
	}
	return attrs
}

// overrideBase is what the override resources share.
type overrideBase struct{ c *client.Client }

func (r *overrideBase) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, err := clientOf(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	r.c = c
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

type addressModeResource struct{ overrideBase }

func newAddressModeResource() resource.Resource { return &addressModeResource{} }

func (r *addressModeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_address_mode"
}

func (r *addressModeResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "An address's own override in a pool (PUT /api/v1/pools/{pool}/addresses/{address}/mode): " +
			"down drains it (maintenance), up forces it in, auto gives it back to its health checks. Destroying the resource sets auto.",
		Attributes: withWindow(map[string]schema.Attribute{
			"id":      schema.StringAttribute{Computed: true, PlanModifiers: keepID(), Description: "POOL/ADDRESS (the import ID)."},
			"pool":    schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "The pool."},
			"address": schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "An address of the pool as its configuration writes it (IPv6 in any spelling)."},
			"mode":    schema.StringAttribute{Required: true, Description: "auto, up or down."},
		}),
	}
}

func (r *addressModeResource) write(ctx context.Context, m *addressModeModel) error {
	res, err := r.c.SetAddressMode(ctx, m.Pool.ValueString(), m.Address.ValueString(),
		client.ModeRequest{Mode: m.Mode.ValueString(), From: strOf(m.From), Until: strOf(m.Until)})
	if err != nil {
		return err
	}
	m.ID = types.StringValue(m.Pool.ValueString() + "/" + m.Address.ValueString())
	m.From = keepString(m.From, res.From, "", sameTime)
	m.Until = keepString(m.Until, res.Until, "", sameTime)
	return nil
}

func (r *addressModeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m addressModeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.write(ctx, &m); err != nil {
		apiDiag(&resp.Diagnostics, fmt.Sprintf("set mode of %s in pool %s", m.Address.ValueString(), m.Pool.ValueString()), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *addressModeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m addressModeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.write(ctx, &m); err != nil {
		apiDiag(&resp.Diagnostics, fmt.Sprintf("set mode of %s in pool %s", m.Address.ValueString(), m.Pool.ValueString()), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *addressModeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m addressModeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, _, err := r.c.Status(ctx)
	if err != nil {
		apiDiag(&resp.Diagnostics, "read the status", err)
		return
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
		// The pool or the address is gone, and its override with it.
		resp.State.RemoveResource(ctx)
		return
	}
	mode, from, until := "auto", "", ""
	switch {
	case a.Scheduled != nil && a.Scheduled.Mode != "":
		mode, from, until = a.Scheduled.Mode, a.Scheduled.From, a.Scheduled.Until
	case a.ModeSource == "address" || (a.ModeSource == "" && a.Mode != "auto"):
		mode, until = a.Mode, a.Until
		from = strOf(m.From) // a window that started: its start is past, as written
	}
	m.Mode = keepStringC(m.Mode, mode, sameString)
	m.From = keepString(m.From, from, "", sameTime)
	m.Until = keepString(m.Until, until, "", sameTime)
	if m.ID.IsNull() {
		m.ID = types.StringValue(m.Pool.ValueString() + "/" + m.Address.ValueString())
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *addressModeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m addressModeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	_, err := r.c.SetAddressMode(ctx, m.Pool.ValueString(), m.Address.ValueString(), client.ModeRequest{Mode: "auto"})
	if err != nil && client.StatusOf(err) != http.StatusNotFound {
		apiDiag(&resp.Diagnostics, fmt.Sprintf("restore %s in pool %s", m.Address.ValueString(), m.Pool.ValueString()), err)
	}
}

func (r *addressModeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	pool, addr, ok := strings.Cut(req.ID, "/")
	if !ok || pool == "" || addr == "" {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("%q: expected POOL/ADDRESS, e.g. eu/192.0.2.1", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("pool"), pool)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("address"), addr)...)
}

// --- gtm_pool_mode ---

type poolModeModel struct {
	ID    types.String `tfsdk:"id"`
	Pool  types.String `tfsdk:"pool"`
	Mode  types.String `tfsdk:"mode"`
	From  types.String `tfsdk:"from"`
	Until types.String `tfsdk:"until"`
}

type poolModeResource struct{ overrideBase }

func newPoolModeResource() resource.Resource { return &poolModeResource{} }

func (r *poolModeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pool_mode"
}

func (r *poolModeResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A whole pool's mode (PUT /api/v1/pools/{pool}/mode): down drains a datacenter, for every address whose own mode is auto. " +
			"Destroying the resource clears it.",
		Attributes: withWindow(map[string]schema.Attribute{
			"id":   schema.StringAttribute{Computed: true, PlanModifiers: keepID(), Description: "The pool (the import ID)."},
			"pool": schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "The pool."},
			"mode": schema.StringAttribute{Required: true, Description: "auto, up or down."},
		}),
	}
}

// write sets the pool mode m asks for and keeps m's spelling of the window.
func (r *poolModeResource) write(ctx context.Context, m *poolModeModel) error {
	res, err := r.c.SetPoolMode(ctx, m.Pool.ValueString(), client.ModeRequest{Mode: m.Mode.ValueString(), From: strOf(m.From), Until: strOf(m.Until)})
	if err != nil {
		return err
	}
	m.ID = m.Pool
	m.From = keepString(m.From, res.From, "", sameTime)
	m.Until = keepString(m.Until, res.Until, "", sameTime)
	return nil
}

func (r *poolModeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m poolModeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.write(ctx, &m); err != nil {
		apiDiag(&resp.Diagnostics, "set the mode of pool "+m.Pool.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *poolModeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m poolModeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.write(ctx, &m); err != nil {
		apiDiag(&resp.Diagnostics, "set the mode of pool "+m.Pool.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *poolModeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m poolModeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pm, err := r.c.PoolMode(ctx, m.Pool.ValueString())
	if client.StatusOf(err) == http.StatusNotFound {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		apiDiag(&resp.Diagnostics, "read the mode of pool "+m.Pool.ValueString(), err)
		return
	}
	from := pm.From
	if !pm.Scheduled && from != "" {
		from = strOf(m.From) // a window that started: its start is past, as written
	}
	m.Mode = keepStringC(m.Mode, pm.Mode, sameString)
	m.From = keepString(m.From, from, "", sameTime)
	m.Until = keepString(m.Until, pm.Until, "", sameTime)
	m.ID = m.Pool
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *poolModeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m poolModeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.c.ClearPoolMode(ctx, m.Pool.ValueString()); err != nil && client.StatusOf(err) != http.StatusNotFound {
		apiDiag(&resp.Diagnostics, "clear the mode of pool "+m.Pool.ValueString(), err)
	}
}

func (r *poolModeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("pool"), req.ID)...)
}

// --- gtm_pin ---

type pinModel struct {
	ID     types.String `tfsdk:"id"`
	Domain types.String `tfsdk:"domain"`
	Pool   types.String `tfsdk:"pool"`
	From   types.String `tfsdk:"from"`
	Until  types.String `tfsdk:"until"`
}

type pinResource struct{ overrideBase }

func newPinResource() resource.Resource { return &pinResource{} }

func (r *pinResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pin"
}

func (r *pinResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Pins a domain to one pool regardless of its routes (PUT /api/v1/domains/{domain}/pin): the manual disaster-recovery switch. " +
			"Destroying the resource unpins the domain.",
		Attributes: withWindow(map[string]schema.Attribute{
			"id":     schema.StringAttribute{Computed: true, PlanModifiers: keepID(), Description: "The domain's FQDN (the import ID)."},
			"domain": schema.StringAttribute{Required: true, PlanModifiers: replaceString(), Description: "A managed domain (with or without the final dot)."},
			"pool":   schema.StringAttribute{Required: true, Description: "The pool every client of the domain is answered from."},
		}),
	}
}

func (r *pinResource) write(ctx context.Context, m *pinModel) error {
	res, err := r.c.SetPin(ctx, m.Domain.ValueString(), client.PinRequest{Pool: m.Pool.ValueString(), From: strOf(m.From), Until: strOf(m.Until)})
	if err != nil {
		return err
	}
	m.ID = types.StringValue(canonical(client.KindDomain, m.Domain.ValueString()))
	m.From = keepString(m.From, res.From, "", sameTime)
	m.Until = keepString(m.Until, res.Until, "", sameTime)
	return nil
}

func (r *pinResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m pinModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.write(ctx, &m); err != nil {
		apiDiag(&resp.Diagnostics, "pin "+m.Domain.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *pinResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m pinModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.write(ctx, &m); err != nil {
		apiDiag(&resp.Diagnostics, "pin "+m.Domain.ValueString(), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *pinResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m pinModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, _, err := r.c.Status(ctx)
	if err != nil {
		apiDiag(&resp.Diagnostics, "read the status", err)
		return
	}
	fqdn := canonical(client.KindDomain, m.Domain.ValueString())
	d := st.Domain(fqdn)
	if d == nil {
		resp.State.RemoveResource(ctx)
		return
	}
	pool, from, until := d.Pinned, "", d.Until
	if d.Scheduled != nil && d.Scheduled.Pool != "" {
		pool, from, until = d.Scheduled.Pool, d.Scheduled.From, d.Scheduled.Until
	} else if pool != "" {
		from = strOf(m.From) // a window that started: its start is past, as written
	}
	if pool == "" {
		pool = d.DanglingPin
	}
	m.Pool = keepStringC(m.Pool, pool, sameString)
	m.From = keepString(m.From, from, "", sameTime)
	m.Until = keepString(m.Until, until, "", sameTime)
	m.ID = types.StringValue(fqdn)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *pinResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m pinModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, err := r.c.SetPin(ctx, m.Domain.ValueString(), client.PinRequest{Pool: ""}); err != nil && client.StatusOf(err) != http.StatusNotFound {
		apiDiag(&resp.Diagnostics, "unpin "+m.Domain.ValueString(), err)
	}
}

func (r *pinResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), canonical(client.KindDomain, req.ID))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("domain"), req.ID)...)
}
