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

// kind describes one kind of /api/v1/config resource to the shared lifecycle: M is the
// Terraform model (a struct with tfsdk tags), A the API's JSON form in package client.
type kind[M, A any] struct {
	api      client.Kind
	typeName string // the resource type without the provider prefix: "pool"
	schema   func() schema.Schema
	// meta points at the model's name, id and etag attributes.
	meta func(m *M) (name, id, etag *types.String)
	// toAPI is the JSON form the model asks for.
	toAPI func(ctx context.Context, m *M) (A, diag.Diagnostics)
	// fromAPI is the model of what the server holds; prior (the plan or the last state)
	// lends its spelling where the server's means the same.
	fromAPI func(ctx context.Context, prior *M, a *A) (M, diag.Diagnostics)
	// source is the "source" member of an answer.
	source func(a *A) string
}

// canonical is the name a resource has in API answers and state ids: a domain's is its
// lower-case FQDN, anything else's is as written.
func canonical(k client.Kind, name string) string {
	if k != client.KindDomain {
		return name
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// metaAttributes are the attributes every configuration resource has besides its settings.
func metaAttributes(what, nameDesc string, attrs map[string]schema.Attribute) map[string]schema.Attribute {
	attrs["name"] = schema.StringAttribute{
		Required:      true,
		Description:   nameDesc + " Changing it replaces the resource.",
		PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
	}
	attrs["id"] = schema.StringAttribute{
		Computed:      true,
		Description:   "The " + what + "'s name as the API spells it (the import ID).",
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
	}
	attrs["etag"] = schema.StringAttribute{
		Computed:    true,
		Description: "The version of the " + what + " on the server (its ETag) when Terraform last read or wrote it; updates and deletes send it as If-Match.",
	}
	return attrs
}

// configResource is the lifecycle of a /api/v1/config resource: create with If-None-Match,
// read with the ETag, update and delete with If-Match, import by name.
type configResource[M, A any] struct {
	k kind[M, A]
	c *client.Client
}

var (
	_ resource.ResourceWithConfigure   = (*configResource[healthCheckModel, client.HealthCheck])(nil)
	_ resource.ResourceWithImportState = (*configResource[healthCheckModel, client.HealthCheck])(nil)
)

func (r *configResource[M, A]) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_" + r.k.typeName
}

func (r *configResource[M, A]) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = r.k.schema()
}

func (r *configResource[M, A]) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.c = configured(req.ProviderData, &resp.Diagnostics)
}

func (r *configResource[M, A]) label(name string) string {
	return r.k.api.Singular() + " " + name
}

// finish fills the model's name, id and etag after an answer.
func (r *configResource[M, A]) finish(m *M, name types.String, id, tag string) {
	n, i, e := r.k.meta(m)
	*n, *i, *e = name, types.StringValue(id), types.StringValue(tag)
}

// standing records a write that stands although it failed: one the fleet did not apply
// within the wait of wait_synced. The state is what the server holds now (its ETag too, which
// the lagging answer does not carry), so the next plan starts from the truth.
func (r *configResource[M, A]) standing(ctx context.Context, werr error, plan *M, name types.String, id string, state *tfsdk.State, diags *diag.Diagnostics) {
	if !client.Lagging(werr) {
		return
	}
	var out A
	tag, err := r.c.Get(ctx, r.k.api, id, &out)
	if err != nil {
		return // the write's own error says what happened; the next refresh reads it
	}
	st, d := r.k.fromAPI(ctx, plan, &out)
	diags.Append(d...)
	r.finish(&st, name, id, tag)
	diags.Append(state.Set(ctx, &st)...)
}

// put writes the plan under precondition pre and records the server's answer in state. A
// write the server refuses is returned (nothing is recorded, except one that stands: see
// standing); a plan the provider cannot send is only a diagnostic.
func (r *configResource[M, A]) put(ctx context.Context, plan *M, id string, pre client.Precondition, state *tfsdk.State, diags *diag.Diagnostics) error {
	np, _, _ := r.k.meta(plan)
	name := *np
	body, d := r.k.toAPI(ctx, plan)
	diags.Append(d...)
	if diags.HasError() {
		return nil
	}
	var out A
	tag, err := r.c.Put(ctx, r.k.api, id, body, &out, pre)
	if err != nil {
		r.standing(ctx, err, plan, name, id, state, diags)
		return err
	}
	st, d := r.k.fromAPI(ctx, plan, &out)
	diags.Append(d...)
	r.finish(&st, name, id, tag)
	diags.Append(state.Set(ctx, &st)...)
	return nil
}

func (r *configResource[M, A]) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan M
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	np, _, _ := r.k.meta(&plan)
	id := canonical(r.k.api, np.ValueString())
	err := r.put(ctx, &plan, id, client.Precondition{Create: true}, &resp.State, &resp.Diagnostics)
	switch {
	case err == nil:
	case client.StatusOf(err) == http.StatusPreconditionFailed:
		resp.Diagnostics.AddError(fmt.Sprintf("create %s: it already exists", r.label(id)),
			fmt.Sprintf("The server already has %s (412: %v). Terraform does not overwrite it: import it with\n  tofu import gtm_%s.NAME %s\nor choose another name.", r.label(id), err, r.k.typeName, id))
	default:
		apiDiag(&resp.Diagnostics, "create "+r.label(id), err)
	}
}

func (r *configResource[M, A]) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior M
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	np, idv, _ := r.k.meta(&prior)
	name := *np
	id := idv.ValueString()
	if id == "" {
		id = canonical(r.k.api, name.ValueString())
	}
	var out A
	tag, err := r.c.Get(ctx, r.k.api, id, &out)
	if client.StatusOf(err) == http.StatusNotFound {
		// Deleted outside Terraform: the next plan creates it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		apiDiag(&resp.Diagnostics, "read "+r.label(id), err)
		return
	}
	if r.k.source(&out) == client.SourceCorefile {
		resp.Diagnostics.AddWarning(r.label(id)+" is defined in the Corefile",
			"It is read-only through the API: changes to it will be refused (409). Read it with the data source gtm_"+r.k.typeName+" instead.")
	}
	st, d := r.k.fromAPI(ctx, &prior, &out)
	resp.Diagnostics.Append(d...)
	if name.IsNull() || name.IsUnknown() {
		name = types.StringValue(id)
	}
	r.finish(&st, name, id, tag)
	resp.Diagnostics.Append(resp.State.Set(ctx, &st)...)
}

func (r *configResource[M, A]) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior M
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	_, idv, etag := r.k.meta(&prior)
	// If-Match with the version read at plan time: a change made since then is a 412.
	if err := r.put(ctx, &plan, idv.ValueString(), client.Precondition{IfMatch: etag.ValueString()}, &resp.State, &resp.Diagnostics); err != nil {
		apiDiag(&resp.Diagnostics, "update "+r.label(idv.ValueString()), err)
	}
}

func (r *configResource[M, A]) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var prior M
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	_, idv, etag := r.k.meta(&prior)
	err := r.c.Delete(ctx, r.k.api, idv.ValueString(), etag.ValueString())
	if err != nil && client.StatusOf(err) != http.StatusNotFound {
		apiDiag(&resp.Diagnostics, "delete "+r.label(idv.ValueString()), err)
	}
}

func (r *configResource[M, A]) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id := canonical(r.k.api, req.ID)
	var out A
	if _, err := r.c.Get(ctx, r.k.api, id, &out); err != nil {
		apiDiag(&resp.Diagnostics, "import "+r.label(id), err)
		return
	}
	if r.k.source(&out) == client.SourceCorefile {
		resp.Diagnostics.AddError("import "+r.label(id)+": defined in the Corefile",
			"Corefile-defined resources are read-only through the API (the server refuses writes to them with 409), so Terraform cannot manage it. "+
				"Read it with the data source gtm_"+r.k.typeName+", or remove it from the Corefile first.")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}
