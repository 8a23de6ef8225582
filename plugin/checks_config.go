package gtm

import (
	"slices"
	"strings"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
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
	case "header":
		if len(args) < 2 {
			return c.Errf("%s: expected NAME VALUE", what)
		}
		h.Header = append(h.Header, config.Header{Name: args[0], Value: strings.Join(args[1:], " ")})
	case "query":
		if len(args) < 1 || len(args) > 2 {
			return c.Errf("%s: expected NAME [TYPE]", what)
		}
		h.Query = strings.Join(args, " ")
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
