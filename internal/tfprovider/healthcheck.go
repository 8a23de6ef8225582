package tfprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// healthCheckModel is gtm_healthcheck: the JSON form of a template (HealthCheckInput).
type healthCheckModel struct {
	ID            types.String   `tfsdk:"id"`
	Name          types.String   `tfsdk:"name"`
	ETag          types.String   `tfsdk:"etag"`
	Protocol      types.String   `tfsdk:"protocol"`
	Port          types.Int64    `tfsdk:"port"`
	Path          types.String   `tfsdk:"path"`
	Host          types.String   `tfsdk:"host"`
	Expect        types.String   `tfsdk:"expect"`
	Body          types.String   `tfsdk:"body"`
	TLSInsecure   types.Bool     `tfsdk:"tls_insecure"`
	Interval      types.String   `tfsdk:"interval"`
	Timeout       types.String   `tfsdk:"timeout"`
	Fall          types.Int64    `tfsdk:"fall"`
	Rise          types.Int64    `tfsdk:"rise"`
	Method        types.String   `tfsdk:"method"`
	Header        []headerModel  `tfsdk:"header"`
	Query         types.String   `tfsdk:"query"`
	Answer        types.String   `tfsdk:"answer"`
	Count         types.Int64    `tfsdk:"icmp_count"` // JSON count: count is a meta-argument in Terraform
	Loss          types.Int64    `tfsdk:"loss"`
	SourceAddress types.String   `tfsdk:"source_address"`
	URL           types.String   `tfsdk:"url"`
	MaxRTT        types.String   `tfsdk:"max_rtt"`
	Vantage       []types.String `tfsdk:"vantage"`
}

type headerModel struct {
	Name  types.String `tfsdk:"name"`
	Value types.String `tfsdk:"value"`
}

func newHealthCheckResource() resource.Resource {
	return &configResource[healthCheckModel, client.HealthCheck]{k: healthCheckKind}
}

var healthCheckKind = kind[healthCheckModel, client.HealthCheck]{
	api:      client.KindHealthCheck,
	typeName: "healthcheck",
	schema:   healthCheckSchema,
	meta: func(m *healthCheckModel) (*types.String, *types.String, *types.String) {
		return &m.Name, &m.ID, &m.ETag
	},
	source: func(a *client.HealthCheck) string { return a.Source },
	toAPI: func(_ context.Context, m *healthCheckModel) (client.HealthCheck, diag.Diagnostics) {
		h := client.HealthCheck{
			Protocol: strOf(m.Protocol), Port: int(intOf(m.Port)), Path: strOf(m.Path), Host: strOf(m.Host),
			Expect: strOf(m.Expect), Body: strOf(m.Body), TLSInsecure: m.TLSInsecure.ValueBool(),
			Interval: strOf(m.Interval), Timeout: strOf(m.Timeout), Fall: int(intOf(m.Fall)), Rise: int(intOf(m.Rise)),
			Method: strOf(m.Method), Query: strOf(m.Query), Answer: strOf(m.Answer),
			Count: int(intOf(m.Count)), Loss: int(intOf(m.Loss)), SourceAddress: strOf(m.SourceAddress),
			URL: strOf(m.URL), MaxRTT: strOf(m.MaxRTT), Vantage: strsOf(m.Vantage),
		}
		for _, hd := range m.Header {
			h.Header = append(h.Header, client.Header{Name: strOf(hd.Name), Value: strOf(hd.Value)})
		}
		return h, nil
	},
	fromAPI: func(_ context.Context, p *healthCheckModel, a *client.HealthCheck) (healthCheckModel, diag.Diagnostics) {
		m := healthCheckModel{
			Protocol:      keepStringC(p.Protocol, a.Protocol, sameString),
			Port:          keepInt(p.Port, int64(a.Port), 0),
			Path:          keepString(p.Path, a.Path, "", sameString),
			Host:          keepString(p.Host, a.Host, "", sameString),
			Expect:        keepString(p.Expect, a.Expect, "", sameString),
			Body:          keepString(p.Body, a.Body, "", sameString),
			TLSInsecure:   keepBoolC(p.TLSInsecure, a.TLSInsecure),
			Interval:      keepStringC(p.Interval, a.Interval, sameDuration),
			Timeout:       keepStringC(p.Timeout, a.Timeout, sameDuration),
			Fall:          keepIntC(p.Fall, int64(a.Fall)),
			Rise:          keepIntC(p.Rise, int64(a.Rise)),
			Method:        keepString(p.Method, a.Method, "", sameFold),
			Query:         keepString(p.Query, a.Query, "", sameString),
			Answer:        keepString(p.Answer, a.Answer, "", sameString),
			Count:         keepInt(p.Count, int64(a.Count), 0),
			Loss:          keepInt(p.Loss, int64(a.Loss), 0),
			SourceAddress: keepString(p.SourceAddress, a.SourceAddress, "", sameString),
			URL:           keepString(p.URL, a.URL, "", sameString),
			MaxRTT:        keepString(p.MaxRTT, a.MaxRTT, "", sameDuration),
			Vantage:       keepList(p.Vantage, a.Vantage, nil, sameString),
			Header:        []headerModel{},
		}
		for i, h := range a.Header {
			var ph headerModel
			if i < len(p.Header) {
				ph = p.Header[i]
			}
			m.Header = append(m.Header, headerModel{
				Name:  keepStringC(ph.Name, h.Name, sameString),
				Value: keepStringC(ph.Value, h.Value, sameString),
			})
		}
		return m, nil
	},
}

func healthCheckSchema() schema.Schema {
	opt := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Description: desc}
	}
	return schema.Schema{
		Description: "A health-check template (`healthcheck NAME { ... }` in the Corefile; PUT /api/v1/config/healthchecks/{name}). " +
			"Pools name it in healthcheck. Attributes are the JSON form's members; omitted ones take the server's defaults.",
		Attributes: metaAttributes("template", "The template's name: 1 to 63 letters, digits, '.', '_' or '-'.", map[string]schema.Attribute{
			"protocol": schema.StringAttribute{Required: true, Description: "http, https, tcp, icmp, dns, prometheus (a verdict from a PromQL query) or push (verdicts pushed through PUT /api/v1/pools/{pool}/addresses/{address}/health)."},
			"port":     schema.Int64Attribute{Optional: true, Description: "The port probed (default: 80 for http, 443 for https, 53 for dns; required for tcp; not for prometheus and push)."},
			"path":     opt("http(s): the request path (default /)."),
			"host":     opt("http(s): the Host header and TLS server name."),
			"expect":   opt("http(s): accepted status codes such as 200-399 (the default); dns: accepted rcodes (default NOERROR); prometheus (required): OP VALUE, e.g. \"< 0.05\"."),
			"body":     opt("http(s): a substring the response body must contain."),
			"tls_insecure": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				Description: "https: do not verify the server's certificate."},
			"interval": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("10s"),
				Description: "Time between probes, a Go duration (default 10s)."},
			"timeout": schema.StringAttribute{Optional: true, Computed: true,
				Description: "A probe's time limit, a Go duration shorter than interval (default 2s, or half of a shorter interval)."},
			"fall": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(3),
				Description: "Failed probes in a row that take an address out (default 3)."},
			"rise": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(2),
				Description: "Passed probes in a row that bring it back (default 2)."},
			"method":         opt("http(s): GET (default), HEAD or POST."),
			"query":          opt("dns (required): the question, NAME [TYPE]; prometheus (required): the PromQL of an instant query, {{address}} standing for the address."),
			"answer":         opt("dns: a regular expression some answer record's text must match."),
			"icmp_count":     schema.Int64Attribute{Optional: true, Description: "icmp: echo requests per probe (default 1); the JSON form's count, renamed because count is a Terraform meta-argument."},
			"loss":           schema.Int64Attribute{Optional: true, Description: "icmp: the most loss in percent that still counts as up (default 0)."},
			"source_address": opt("The local address probes are sent from (`source` in the Corefile)."),
			"url":            opt("prometheus (required): the Prometheus server, e.g. http://127.0.0.1:9090 (its HTTP API /api/v1/query)."),
			"max_rtt":        opt("Any protocol but push: a Go duration less than timeout; a slower probe counts as failed."),
			"vantage": schema.ListAttribute{Optional: true, ElementType: types.StringType,
				Description: "With cluster: the regions (cluster `region`) whose nodes probe and vote on this check; the quorum is counted among them, the other nodes follow their verdict."},
		}),
		Blocks: map[string]schema.Block{
			"header": schema.ListNestedBlock{
				Description: "http(s): an extra request header, in order (repeatable).",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"name":  schema.StringAttribute{Required: true, Description: "The header's name."},
					"value": schema.StringAttribute{Required: true, Description: "Its value."},
				}},
			},
		},
	}
}
