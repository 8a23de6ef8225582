package tfprovider

import (
	"net"
	"net/netip"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

// A pool's members (registries whose addresses join the static ones) and flatten (a pool of
// names answering its name's A/AAAA): the JSON forms PoolMember and PoolFlatten, whose
// members take the Corefile sub-directive names.

// memberModel is one members block: exactly one of dns, srv, kubernetes and ingress.
type memberModel struct {
	DNS        []types.String `tfsdk:"dns"`
	SRV        types.String   `tfsdk:"srv"`
	Kubernetes types.String   `tfsdk:"kubernetes"`
	Ingress    types.String   `tfsdk:"ingress"`
	Resolver   types.String   `tfsdk:"resolver"`
	Refresh    []types.String `tfsdk:"refresh"`
	Kubeconfig types.String   `tfsdk:"kubeconfig"`
	Addresses  types.String   `tfsdk:"addresses"`
}

// flattenModel is the flatten block; an empty block is flatten with the defaults.
type flattenModel struct {
	Resolver types.String   `tfsdk:"resolver"`
	Refresh  []types.String `tfsdk:"refresh"`
}

// defaultRefresh is what the server reads back for a dns or srv member, or a flatten,
// without refresh (config.DefaultRefreshMin and Max).
var defaultRefresh = []string{"5s", "5m0s"}

// sameResolver compares resolvers as the server reads them: an IP address without a port
// is port 53.
func sameResolver(a, b string) bool {
	norm := func(s string) string {
		if ip, err := netip.ParseAddr(s); err == nil {
			return net.JoinHostPort(ip.String(), "53")
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.String()
		}
		return s
	}
	return norm(a) == norm(b)
}

func membersToAPI(ms []memberModel) []client.Member {
	var out []client.Member
	for _, m := range ms {
		out = append(out, client.Member{
			DNS: strsOf(m.DNS), SRV: strOf(m.SRV), Kubernetes: strOf(m.Kubernetes), Ingress: strOf(m.Ingress),
			Resolver: strOf(m.Resolver), Refresh: strsOf(m.Refresh), Kubeconfig: strOf(m.Kubeconfig), Addresses: strOf(m.Addresses),
		})
	}
	return out
}

// membersFromAPI is the state of the server's members, paired by position with prior's.
func membersFromAPI(prior []memberModel, as []client.Member) []memberModel {
	out := []memberModel{} // a block list is never null: none is empty
	for i, a := range as {
		var p memberModel
		if i < len(prior) {
			p = prior[i]
		}
		var refreshDef []string
		if len(a.DNS) > 0 || a.SRV != "" {
			refreshDef = defaultRefresh
		}
		out = append(out, memberModel{
			DNS:        keepList(p.DNS, a.DNS, nil, sameFold),
			SRV:        keepString(p.SRV, a.SRV, "", sameFold),
			Kubernetes: keepString(p.Kubernetes, a.Kubernetes, "", sameString),
			Ingress:    keepString(p.Ingress, a.Ingress, "", sameString),
			Resolver:   keepString(p.Resolver, a.Resolver, "", sameResolver),
			Refresh:    keepList(p.Refresh, a.Refresh, refreshDef, sameDuration),
			Kubeconfig: keepString(p.Kubeconfig, a.Kubeconfig, "", sameString),
			Addresses:  keepOmittable(p.Addresses, a.Addresses, "endpoints", sameString),
		})
	}
	return out
}

func flattenToAPI(f *flattenModel) *client.Flatten {
	if f == nil {
		return nil
	}
	return &client.Flatten{Resolver: strOf(f.Resolver), Refresh: strsOf(f.Refresh)}
}

func flattenFromAPI(prior *flattenModel, a *client.Flatten) *flattenModel {
	if a == nil {
		return nil
	}
	var p flattenModel
	if prior != nil {
		p = *prior
	}
	return &flattenModel{
		Resolver: keepString(p.Resolver, a.Resolver, "", sameResolver),
		Refresh:  keepList(p.Refresh, a.Refresh, defaultRefresh, sameDuration),
	}
}

// refreshAttribute and resolverAttribute are the re-resolution settings members dns|srv and
// flatten share.
func refreshAttribute() schema.ListAttribute {
	return schema.ListAttribute{Optional: true, ElementType: types.StringType,
		Description: "dns, srv, flatten: [MIN, MAX], Go durations bounding the re-resolution interval (which follows the records' TTL); default [\"5s\", \"5m0s\"]."}
}

func resolverAttribute() schema.StringAttribute {
	return schema.StringAttribute{Optional: true,
		Description: "dns, srv, flatten: the DNS server asked, ADDRESS[:PORT] (default: the host's resolv.conf)."}
}

func membersBlock() schema.ListNestedBlock {
	opt := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Description: desc}
	}
	return schema.ListNestedBlock{
		Description: "A registry whose addresses join the pool's static ones (repeatable; a pool of IP addresses only): " +
			"exactly one of dns, srv, kubernetes and ingress, with its settings. Discovered addresses get the pool's health checks and defaults; " +
			"a registry that cannot be reached never empties the pool (its last members stay).",
		NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
			"dns": schema.ListAttribute{Optional: true, ElementType: types.StringType,
				Description: "`members dns NAME...`: the names' A/AAAA, re-resolved as their TTL ends."},
			"srv":        opt("`members srv _SERVICE._PROTO.NAME`: the targets' A/AAAA; the SRV port is their checks' port, the SRV weight their weight."),
			"kubernetes": opt("`members kubernetes NAMESPACE/SERVICE`: the Service's ready endpoints (or its load balancer's ingress, with addresses)."),
			"ingress":    opt("`members kubernetes ingress NAMESPACE/NAME`: the Ingress's status.loadBalancer.ingress."),
			"resolver":   resolverAttribute(),
			"refresh":    refreshAttribute(),
			"kubeconfig": opt("kubernetes, ingress: a kubeconfig file (default: in-cluster, else $KUBECONFIG)."),
			"addresses":  opt("kubernetes: endpoints (default: ready EndpointSlice addresses) or loadbalancer (the Service's status.loadBalancer.ingress)."),
		}},
	}
}

func flattenBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		Description: "A pool of domain names answers the chosen name's current A/AAAA instead of a CNAME (an ALIAS, valid at the zone apex). " +
			"`flatten {}` takes the defaults.",
		Attributes: map[string]schema.Attribute{
			"resolver": resolverAttribute(),
			"refresh":  refreshAttribute(),
		},
	}
}
