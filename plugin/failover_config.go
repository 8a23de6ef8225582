package gtm

import (
	"time"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
)

// parsePoolFailover parses a pool's `min_available N|P%` and `slow_start DURATION`; the
// validator judges the ranges, so the Corefile and the API report them in the same words.
func parsePoolFailover(c *caddy.Controller, p *config.Pool, dir string, args []string) error {
	what := "pool " + p.Name + ": " + dir
	switch dir {
	case "min_available":
		if len(args) != 1 {
			return c.Errf("%s: expected a count N or a share P%%", what)
		}
		n, pct, ok := config.ParseMinAvailable(args[0])
		if !ok {
			return c.Errf("%s %q: expected a count such as 2 or a share such as 50%%", what, args[0])
		}
		p.MinAvailable, p.MinAvailablePercent = n, pct
		if pct != nil {
			p.MinAvailable = 1
		}
	case "slow_start":
		if len(args) != 1 {
			return c.Errf("%s: expected DURATION", what)
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d <= 0 {
			return c.Errf("%s %q: expected a positive duration such as 30s", what, args[0])
		}
		p.SlowStart = config.Duration(d)
	}
	return nil
}

// parseDomainFailover parses a domain's `fallback open|nodata|servfail|POOL` and
// `failback auto|manual|DURATION`.
func parseDomainFailover(c *caddy.Controller, d *config.Domain, dir string, args []string) error {
	d.Lines[dir] = c.Line()
	switch dir {
	case "fallback":
		if len(args) != 1 {
			return c.Errf("domain %s: fallback: expected open, nodata, servfail or POOL", d.Name)
		}
		d.Fallback = args[0]
	case "failback":
		if len(args) != 1 {
			return c.Errf("domain %s: failback: expected auto, manual or DURATION", d.Name)
		}
		d.Failback = args[0]
	}
	return nil
}
