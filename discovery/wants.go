package discovery

import (
	"fmt"
	"strings"

	"github.com/gtm-dns/coredns-gtm/config"
)

func init() {
	// Validation (config, no Kubernetes import) refuses a kubeconfig that cannot be loaded
	// with the field that names it.
	config.KubeconfigCheck = CheckKubeconfig
}

// Wants lists the sources cfg's pools need: one per name of `members dns`, one per
// `members srv` and `members kubernetes`, one per address of a `flatten` pool.
func Wants(cfg *config.Config) []Want {
	var out []Want
	for _, p := range cfg.Pools {
		for _, m := range p.Members {
			out = append(out, memberWants(p.Name, m)...)
		}
		if f := p.Flatten; f != nil {
			lo, hi := config.RefreshBounds(f.Refresh)
			for _, a := range p.Addresses {
				_, target, err := config.ParseAddress(a.Address)
				if err != nil || target == "" {
					continue
				}
				name, resolver := target, f.Resolver
				out = append(out, Want{
					Pool: p.Name, Label: "flatten:" + strings.TrimSuffix(name, "."), Target: name,
					Key: fmt.Sprintf("flatten %s %s %s %s", name, resolver, lo, hi),
					New: func() (Source, error) {
						r, err := resolverOf(resolver)
						if err != nil {
							return nil, err
						}
						return &DNS{Name: name, Resolver: r, Min: lo, Max: hi}, nil
					},
				})
			}
		}
	}
	return out
}

func memberWants(pool string, m config.Member) []Want {
	labels := m.Sources()
	lo, hi := config.RefreshBounds(m.Refresh)
	resolver := m.Resolver
	switch m.Kind() {
	case "dns":
		out := make([]Want, 0, len(m.DNS))
		for i, n := range m.DNS {
			name := strings.ToLower(n)
			out = append(out, Want{
				Pool: pool, Label: labels[i], Key: fmt.Sprintf("dns %s %s %s %s", name, resolver, lo, hi),
				New: func() (Source, error) {
					r, err := resolverOf(resolver)
					if err != nil {
						return nil, err
					}
					return &DNS{Name: name, Resolver: r, Min: lo, Max: hi}, nil
				},
			})
		}
		return out
	case "srv":
		name := strings.ToLower(m.SRV)
		return []Want{{
			Pool: pool, Label: labels[0], Key: fmt.Sprintf("srv %s %s %s %s", name, resolver, lo, hi),
			New: func() (Source, error) {
				r, err := resolverOf(resolver)
				if err != nil {
					return nil, err
				}
				return &SRV{Name: name, Resolver: r, Min: lo, Max: hi}, nil
			},
		}}
	case "kubernetes", "ingress":
		obj, mode := m.Kubernetes, m.Addresses
		if m.Kind() == "ingress" {
			obj, mode = m.Ingress, "ingress"
		}
		if mode == "" {
			mode = config.AddressesEndpoints
		}
		ns, name, _ := config.ParseKubeObject(obj)
		kubeconfig := m.Kubeconfig
		return []Want{{
			Pool: pool, Label: labels[0], Key: fmt.Sprintf("kubernetes %s %s %s", mode, obj, kubeconfig),
			New: func() (Source, error) {
				f, err := AcquireFactory(kubeconfig)
				if err != nil {
					return nil, err
				}
				return &Kubernetes{Factory: f, Namespace: ns, Name: name, Mode: mode}, nil
			},
		}}
	}
	return nil
}

func resolverOf(s string) (*Resolver, error) {
	if s == "" {
		return NewResolver("")
	}
	addr, err := config.ParseResolver(s)
	if err != nil {
		return nil, err
	}
	return NewResolver(addr)
}
