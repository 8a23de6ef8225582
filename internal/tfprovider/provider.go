// Package tfprovider is terraform-provider-gtm: a Terraform / OpenTofu provider (Terraform
// Plugin Framework) that manages coredns-gtm's API resources (health-check templates,
// pools, domains) and its overrides (address and pool modes, pins) through the admin API,
// with the shared API client of package client.
//
// The resources' attributes mirror the API's JSON forms (docs/openapi.yaml); defaults are
// the server's, and values the server spells differently but means the same (10s and
// 10.0s, 2 and "2") keep the configuration's spelling, so a plan after an apply is empty.
// Every write of a configuration resource carries a precondition (If-None-Match on create,
// If-Match with the ETag read on update and delete): a change made elsewhere since the
// last read fails the apply with the server's 412 instead of being overwritten.
package tfprovider

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// Address is the provider's source address for OpenTofu (the Terraform registry's is
// registry.terraform.io/gtm-dns/gtm).
const Address = "registry.opentofu.org/gtm-dns/gtm"

// New returns the provider factory for providerserver.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &gtmProvider{version: version} }
}

type gtmProvider struct{ version string }

type providerModel struct {
	Server      types.String `tfsdk:"server"`
	Token       types.String `tfsdk:"token"`
	TokenFile   types.String `tfsdk:"token_file"`
	CACert      types.String `tfsdk:"ca_cert"`
	ClientCert  types.String `tfsdk:"client_cert"`
	ClientKey   types.String `tfsdk:"client_key"`
	WaitSynced  types.Bool   `tfsdk:"wait_synced"`
	WaitTimeout types.String `tfsdk:"wait_timeout"`
}

func (p *gtmProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "gtm"
	resp.Version = p.version
}

func (p *gtmProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages coredns-gtm (global traffic management for CoreDNS) through its admin API.",
		Attributes: map[string]schema.Attribute{
			"server": schema.StringAttribute{
				Optional:    true,
				Description: "The admin API's URL, e.g. http://127.0.0.1:8053 (default: $GTM_SERVER, else http://127.0.0.1:8053).",
			},
			"token": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "The bearer token (default: $GTM_TOKEN). Not with token_file.",
			},
			"token_file": schema.StringAttribute{
				Optional:    true,
				Description: "A file holding the bearer token, surrounding whitespace ignored (default: $GTM_TOKEN_FILE). Not with token.",
			},
			"ca_cert": schema.StringAttribute{
				Optional:    true,
				Description: "For an API served over HTTPS with a private CA: a PEM file, or PEM text, of the CA that signs the server's certificate (default: $GTM_CA_CERT).",
			},
			"client_cert": schema.StringAttribute{
				Optional:    true,
				Description: "A client certificate file (PEM) for an API that requires one (api `tls CERT KEY CLIENT_CA`); with client_key.",
			},
			"client_key": schema.StringAttribute{
				Optional:    true,
				Description: "The client certificate's key file (PEM).",
			},
			"wait_synced": schema.BoolAttribute{
				Optional: true,
				Description: "Every write waits until every live node of the fleet has applied it (the API's ?wait=synced, as gtmctl apply --wait), " +
					"so that when apply ends every node answers with the change. A node that lags past wait_timeout fails the apply naming it; " +
					"the write stands (and a resource just created is marked tainted, as for any create that fails after the object exists). " +
					"Default: $GTM_WAIT_SYNCED (true or false), else false. Without a fleet (cluster) a write is in force when it is answered anyway.",
			},
			"wait_timeout": schema.StringAttribute{
				Optional:    true,
				Description: "With wait_synced: how long a write waits for the fleet, a Go duration up to 5m (default: the server's, 10s).",
			},
		},
	}
}

// pick is the configured value, else the environment's.
func pick(v types.String, env string) string {
	if !v.IsNull() && !v.IsUnknown() {
		return v.ValueString()
	}
	return os.Getenv(env)
}

func (p *gtmProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for name, v := range map[string]attr.Value{"server": m.Server, "token": m.Token, "token_file": m.TokenFile, "ca_cert": m.CACert,
		"client_cert": m.ClientCert, "client_key": m.ClientKey, "wait_synced": m.WaitSynced, "wait_timeout": m.WaitTimeout} {
		if v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(name), "Unknown provider setting",
				fmt.Sprintf("%s must be known when the plan is made (not the result of a resource created in the same apply).", name))
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	opts := client.Options{Server: pick(m.Server, "GTM_SERVER"), UserAgent: "terraform-provider-gtm/" + p.version,
		CertFile: m.ClientCert.ValueString(), KeyFile: m.ClientKey.ValueString()}
	if !waitOptions(m, &opts, &resp.Diagnostics) {
		return
	}
	if !m.Token.IsNull() && !m.TokenFile.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("token_file"), "Conflicting provider settings", "Give token or token_file, not both.")
		return
	}
	switch {
	case !m.Token.IsNull():
		opts.Token = strings.TrimSpace(m.Token.ValueString())
	case !m.TokenFile.IsNull():
		t, err := client.ReadToken(m.TokenFile.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("token_file"), "Cannot read the token file", err.Error())
			return
		}
		opts.Token = t
	case os.Getenv("GTM_TOKEN") != "":
		opts.Token = strings.TrimSpace(os.Getenv("GTM_TOKEN"))
	case os.Getenv("GTM_TOKEN_FILE") != "":
		t, err := client.ReadToken(os.Getenv("GTM_TOKEN_FILE"))
		if err != nil {
			resp.Diagnostics.AddError("Cannot read the token file of GTM_TOKEN_FILE", err.Error())
			return
		}
		opts.Token = t
	}
	if ca := pick(m.CACert, "GTM_CA_CERT"); ca != "" {
		if strings.Contains(ca, "-----BEGIN") {
			opts.CACert = []byte(ca)
		} else {
			b, err := os.ReadFile(ca)
			if err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("ca_cert"), "Cannot read the CA certificate", err.Error())
				return
			}
			opts.CACert = b
		}
	}
	c, err := client.New(opts)
	if err != nil {
		resp.Diagnostics.AddError("Invalid provider settings", err.Error())
		return
	}
	resp.ResourceData = c
	resp.DataSourceData = c
}

func (p *gtmProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newHealthCheckResource,
		newPoolResource,
		newDomainResource,
		newAddressModeResource,
		newPoolModeResource,
		newPinResource,
	}
}

func (p *gtmProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newStatusDataSource,
		newExplainDataSource,
		newConfigDataSource(client.KindHealthCheck),
		newConfigDataSource(client.KindPool),
		newConfigDataSource(client.KindDomain),
	}
}

// waitOptions sets the client's wait for the fleet from wait_synced and wait_timeout (or
// $GTM_WAIT_SYNCED); false when a setting is invalid.
func waitOptions(m providerModel, opts *client.Options, diags *diag.Diagnostics) bool {
	switch {
	case !m.WaitSynced.IsNull():
		opts.WaitSynced = m.WaitSynced.ValueBool()
	case os.Getenv("GTM_WAIT_SYNCED") != "":
		v, err := strconv.ParseBool(os.Getenv("GTM_WAIT_SYNCED"))
		if err != nil {
			diags.AddError("Invalid GTM_WAIT_SYNCED", fmt.Sprintf("%q: expected true or false", os.Getenv("GTM_WAIT_SYNCED")))
			return false
		}
		opts.WaitSynced = v
	}
	if t := m.WaitTimeout.ValueString(); t != "" {
		d, err := time.ParseDuration(t)
		switch {
		case err != nil || d <= 0 || d > 5*time.Minute:
			diags.AddAttributeError(path.Root("wait_timeout"), "Invalid wait_timeout", fmt.Sprintf("%q: expected a Go duration above 0 and at most 5m, such as 30s", t))
			return false
		case !opts.WaitSynced:
			diags.AddAttributeError(path.Root("wait_timeout"), "wait_timeout without wait_synced", "wait_timeout is how long a write waits for the fleet: set wait_synced = true too.")
			return false
		}
		opts.WaitTimeout = d
	}
	return true
}

// configured is the client of a resource's or data source's Configure, with a diagnostic
// when the provider data is not one.
func configured(data any, diags *diag.Diagnostics) *client.Client {
	c, err := clientOf(data)
	if err != nil {
		diags.AddError("Provider not configured", err.Error())
	}
	return c
}

// clientOf is the client Configure made, or an error when the provider is not configured.
func clientOf(data any) (*client.Client, error) {
	if data == nil {
		return nil, nil // ValidateConfig and friends run before Configure
	}
	c, ok := data.(*client.Client)
	if !ok {
		return nil, fmt.Errorf("unexpected provider data %T", data)
	}
	return c, nil
}
