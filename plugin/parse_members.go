package gtm

import (
	"time"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
)

// eachPoolLine is eachLine for a pool's block, whose `members` and `flatten` lines may open
// a block of their own; any other directive with a block is refused as eachLine does.
func eachPoolLine(c *caddy.Controller, p *config.Pool, what string, fn func(dir string, args []string) error) error {
	for c.Next() {
		if c.Val() == "}" {
			return nil
		}
		dir := c.Val()
		args, block := lineArgs(c)
		var err error
		switch {
		case dir == "members":
			p.Lines[dir] = c.Line()
			err = parseMembers(c, p, args, block)
		case dir == "flatten":
			p.Lines[dir] = c.Line()
			err = parseFlatten(c, p, args, block)
		case block:
			err = c.Errf("%s: unexpected block after %q", what, dir)
		default:
			err = fn(dir, args)
		}
		if err != nil {
			return err
		}
	}
	return c.Errf("%s: missing closing brace", what)
}

// parseMembers reads `members dns NAME...`, `members srv _S._P.NAME`,
// `members kubernetes NS/SVC`, `members kubernetes ingress NS/NAME`, each with an optional
// block of sub-directives. Syntax only: config.Validate checks the values.
func parseMembers(c *caddy.Controller, p *config.Pool, args []string, block bool) error {
	what := "pool " + p.Name + ": members"
	m := config.Member{Line: c.Line()}
	if len(args) == 0 {
		return c.Errf("%s: expected dns NAME..., srv _SERVICE._PROTO.NAME or kubernetes [ingress] NAMESPACE/NAME", what)
	}
	kind := args[0]
	switch kind {
	case "dns":
		if len(args) < 2 {
			return c.Errf("%s dns: expected NAME...", what)
		}
		m.DNS = append([]string(nil), args[1:]...)
	case "srv":
		if len(args) != 2 {
			return c.Errf("%s srv: expected one _SERVICE._PROTO.NAME", what)
		}
		m.SRV = args[1]
	case "kubernetes":
		switch {
		case len(args) == 3 && args[1] == "ingress":
			m.Ingress, kind = args[2], "kubernetes ingress"
		case len(args) == 2:
			m.Kubernetes = args[1]
		default:
			return c.Errf("%s kubernetes: expected NAMESPACE/SERVICE or ingress NAMESPACE/NAME", what)
		}
	default:
		return c.Errf("%s: unknown source %q; expected dns, srv or kubernetes", what, kind)
	}
	what += " " + kind
	if block {
		err := eachLine(c, what, func(dir string, args []string) error {
			switch dir {
			case "resolver", "refresh":
				if kind != "dns" && kind != "srv" {
					return c.Errf("%s: %s applies only to members dns and srv", what, dir)
				}
				return parseResolution(c, what, dir, args, &m.Resolver, &m.Refresh)
			case "kubeconfig":
				if kind == "dns" || kind == "srv" {
					return c.Errf("%s: kubeconfig applies only to members kubernetes", what)
				}
				if len(args) != 1 {
					return c.Errf("%s: kubeconfig: expected FILE", what)
				}
				m.Kubeconfig = args[0]
			case "addresses":
				if kind != "kubernetes" {
					return c.Errf("%s: addresses applies only to members kubernetes NAMESPACE/SERVICE", what)
				}
				if len(args) != 1 || args[0] != config.AddressesEndpoints && args[0] != config.AddressesLoadBalancer {
					return c.Errf("%s: addresses: expected endpoints or loadbalancer", what)
				}
				m.Addresses = args[0]
			default:
				return c.Errf("%s: unknown directive %q; expected %s", what, dir, memberDirectives(kind))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	m.Normalize()
	p.Members = append(p.Members, m)
	return nil
}

func memberDirectives(kind string) string {
	if kind == "dns" || kind == "srv" {
		return "resolver or refresh"
	}
	if kind == "kubernetes" {
		return "kubeconfig or addresses"
	}
	return "kubeconfig"
}

// parseFlatten reads `flatten [{ resolver ADDRESS[:PORT]; refresh MIN MAX }]`.
func parseFlatten(c *caddy.Controller, p *config.Pool, args []string, block bool) error {
	what := "pool " + p.Name + ": flatten"
	if len(args) != 0 {
		return c.Errf("%s: expected no arguments (resolver and refresh go in its block)", what)
	}
	if p.Flatten != nil {
		return c.Errf("%s: duplicate flatten (first on line %d)", what, p.Flatten.Line)
	}
	f := &config.Flatten{Line: c.Line()}
	if block {
		err := eachLine(c, what, func(dir string, args []string) error {
			switch dir {
			case "resolver", "refresh":
				return parseResolution(c, what, dir, args, &f.Resolver, &f.Refresh)
			}
			return c.Errf("%s: unknown directive %q; expected resolver or refresh", what, dir)
		})
		if err != nil {
			return err
		}
	}
	f.Normalize()
	p.Flatten = f
	return nil
}

func parseResolution(c *caddy.Controller, what, dir string, args []string, resolver *string, refresh *[]config.Duration) error {
	switch dir {
	case "resolver":
		if len(args) != 1 {
			return c.Errf("%s: resolver: expected ADDRESS[:PORT]", what)
		}
		if _, err := config.ParseResolver(args[0]); err != nil {
			return c.Errf("%s: %v", what, err)
		}
		*resolver = args[0]
	case "refresh":
		if len(args) != 2 {
			return c.Errf("%s: refresh: expected MIN MAX, two durations such as 5s 300s", what)
		}
		var out []config.Duration
		for _, a := range args {
			d, err := time.ParseDuration(a)
			if err != nil || d <= 0 {
				return c.Errf("%s: refresh %q: expected a positive duration such as 5s", what, a)
			}
			out = append(out, config.Duration(d))
		}
		*refresh = out
	}
	return nil
}
