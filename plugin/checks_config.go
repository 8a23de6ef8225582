package gtm

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/healthcheck"
)

// parseCheckSetting reads the template directives whose arguments are more than one token or
// a number: expect CODES..., header NAME VALUE, query NAME [TYPE], answer REGEXP, count N,
// loss PERCENT. The validator judges the values, with the same words as for the API.
func parseCheckSetting(c *caddy.Controller, h *config.HealthCheck, what, dir string, args []string) error {
	switch dir {
	case "expect":
		if len(args) == 0 {
			return c.Errf("%s: expected CODES such as 200-399, or for dns rcodes such as NOERROR", what)
		}
		h.Expect = strings.Join(args, ",")
		if h.Protocol == string(healthcheck.Prometheus) || healthcheck.IsComparison(args[0]) {
			h.Expect = strings.Join(args, " ") // prometheus: expect OP VALUE
		}
	case "header":
		if len(args) < 2 {
			return c.Errf("%s: expected NAME VALUE", what)
		}
		h.Header = append(h.Header, config.Header{Name: args[0], Value: strings.Join(args[1:], " ")})
	case "query":
		// dns: NAME [TYPE]; prometheus: PROMQL, which may be several tokens (or one quoted
		// token). The validator judges it for its protocol.
		if len(args) < 1 {
			return c.Errf("%s: expected NAME [TYPE] (dns) or PROMQL (prometheus)", what)
		}
		h.Query = strings.Join(args, " ")
	case "url":
		if len(args) != 1 {
			return c.Errf("%s: expected one URL such as http://127.0.0.1:9090", what)
		}
		h.URL = args[0]
	case "max_rtt":
		if len(args) != 1 {
			return c.Errf("%s: expected DURATION such as 200ms", what)
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d <= 0 {
			return c.Errf("%s %q: expected a positive duration such as 200ms", what, args[0])
		}
		h.MaxRTT = config.Duration(d)
	case "vantage":
		if len(args) == 0 {
			return c.Errf("%s: expected REGION [REGION...]", what)
		}
		h.Vantage = append(h.Vantage, args...)
	case "answer":
		if len(args) == 0 {
			return c.Errf("%s: expected REGEXP", what)
		}
		h.Answer = strings.Join(args, " ")
	case "count", "loss":
		if len(args) != 1 {
			return c.Errf("%s: expected one argument, got %d", what, len(args))
		}
		n, err := number(c, what, args[0])
		if err != nil {
			return err
		}
		if dir == "count" {
			if n < 1 || n > config.MaxEchoCount {
				// 0 is the JSON form's "unset"; in the Corefile it is an error.
				return c.Errf("%s %q: expected a number from 1 to %d", what, args[0], config.MaxEchoCount)
			}
			h.Count = n
		} else {
			h.Loss = n
		}
	}
	return nil
}

// parsePoolChecks reads `healthcheck NAME [NAME...] [require all|any|N]`.
func parsePoolChecks(c *caddy.Controller, p *config.Pool, what string, args []string) error {
	names := args
	if i := slices.Index(args, "require"); i >= 0 {
		if i != len(args)-2 {
			return c.Errf("%s: require: expected require all|any|N at the end", what)
		}
		p.Require = config.Require(args[i+1])
		names = args[:i]
	}
	if len(names) == 0 {
		return c.Errf("%s: expected NAME [NAME...] [require all|any|N]", what)
	}
	p.HealthCheck = config.Checks(slices.Clone(names))
	return nil
}

// brakeConfig is `brake PERCENT DURATION`: in the gtm block this node's brake, in its
// cluster block the fleet's.
type brakeConfig struct {
	percent int
	window  time.Duration
	fleet   bool
	line    int
}

// maxBrakeWindow bounds a brake's DURATION: a "wave" longer than this is no mass failure.
const maxBrakeWindow = time.Hour

// parseBrake reads `brake PERCENT DURATION`.
func parseBrake(c *caddy.Controller, b *block, args []string, fleet bool) error {
	where := "brake"
	if fleet {
		where = "cluster: brake"
	}
	if b.brake != nil {
		return c.Errf("%s: only one brake per gtm block (first on line %d, in the gtm block or its cluster block)", where, b.brake.line)
	}
	if len(args) != 2 {
		return c.Errf("%s: expected PERCENT DURATION such as brake 50 10s", where)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(args[0], "%"))
	if err != nil || n < 1 || n > 99 {
		return c.Errf("%s %q: expected a percentage from 1 to 99 (the share of checked addresses that may turn down within DURATION)", where, args[0])
	}
	d, err := time.ParseDuration(args[1])
	if err != nil || d <= 0 || d > maxBrakeWindow {
		return c.Errf("%s %s %q: expected a duration from 1s to %s such as 10s", where, args[0], args[1], maxBrakeWindow)
	}
	b.brake = &brakeConfig{percent: n, window: d, fleet: fleet, line: c.Line()}
	return nil
}
