package gtm

import (
	"strconv"
	"strings"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
)

// parseService parses a domain's `https [PRIORITY] { alpn ID...; port N; hints on|off }`
// and `srv _SERVICE._PROTO PORT [PRIORITY]`. The syntax (numbers, keys) is checked here; the
// ranges and what the values mean by config.Validate, in the words the API uses too.
func parseService(c *caddy.Controller, d *config.Domain, dir string, args []string, block bool) error {
	if dir == "srv" {
		if block {
			return c.Errf("domain %s: srv does not take a block", d.Name)
		}
		if len(args) != 2 && len(args) != 3 {
			return c.Errf("domain %s: srv: expected _SERVICE._PROTO PORT [PRIORITY]", d.Name)
		}
		s := config.SRV{Service: args[0], Line: c.Line()}
		if !strings.HasPrefix(args[0], "_") {
			return c.Errf("domain %s: srv %q: expected _SERVICE._PROTO such as _sip._udp (each label starts with _)", d.Name, args[0])
		}
		var err error
		if s.Port, err = strconv.Atoi(args[1]); err != nil {
			return c.Errf("domain %s: srv %s: port %q: expected a number from 1 to %d", d.Name, args[0], args[1], config.MaxPort)
		}
		if len(args) == 3 {
			if s.Priority, err = strconv.Atoi(args[2]); err != nil {
				return c.Errf("domain %s: srv %s %s: priority %q: expected a number from 0 to %d", d.Name, args[0], args[1], args[2], config.MaxPriority)
			}
		}
		d.SRV = append(d.SRV, s)
		return nil
	}
	what := "domain " + d.Name + ": https"
	if d.HTTPS != nil {
		return c.Errf("%s: only one https per domain (first on line %d)", what, d.Lines["https"])
	}
	h := &config.HTTPS{}
	d.HTTPS, d.Lines["https"] = h, c.Line()
	if len(args) > 1 {
		return c.Errf("%s: unexpected %q; expected https [PRIORITY] { alpn ID...; port N; hints on|off }", what, args[1])
	}
	if len(args) == 1 {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > config.MaxPriority {
			return c.Errf("%s: priority %q: expected a number from 1 to %d (a ServiceMode record)", what, args[0], config.MaxPriority)
		}
		h.Priority = n
	}
	if !block {
		return nil
	}
	return eachParam(c, what, func(key string, vals []string, line int) error {
		if _, dup := d.Lines["https."+key]; dup {
			return errAt(c, line, "%s: %s given twice (first on line %d)", what, key, d.Lines["https."+key])
		}
		switch key {
		case "alpn":
			if len(vals) == 0 {
				return errAt(c, line, "%s: alpn: expected at least one protocol ID (such as alpn h3 h2)", what)
			}
			h.ALPN = vals
		case "port":
			if len(vals) != 1 {
				return errAt(c, line, "%s: port: expected one number from 1 to %d", what, config.MaxPort)
			}
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > config.MaxPort {
				return errAt(c, line, "%s: port %q: expected a number from 1 to %d", what, vals[0], config.MaxPort)
			}
			h.Port = n
		case "hints":
			v, ok := config.Switch(false), len(vals) == 1
			if ok {
				v, ok = config.ParseSwitch(vals[0])
			}
			if !ok {
				return errAt(c, line, "%s: hints: expected on or off", what)
			}
			h.Hints = &v
		default:
			return errAt(c, line, "%s: unknown SvcParam key %q; expected %s", what, key, strings.Join(config.HTTPSKeys, ", "))
		}
		d.Lines["https."+key] = line
		return nil
	})
}

// eachParam reads the block of `https` after its opening brace: one KEY VALUE... per line
// or separated by `;`, also all on the line of the braces (`https { alpn h3 h2; port 443 }`).
func eachParam(c *caddy.Controller, what string, fn func(key string, vals []string, line int) error) error {
	var cur []string
	line, prevLine := 0, 0
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		err := fn(cur[0], cur[1:], line)
		cur = nil
		return err
	}
	for c.Next() {
		tok, l := c.Val(), c.Line()
		if tok == "}" {
			return flush()
		}
		if l != prevLine {
			if err := flush(); err != nil {
				return err
			}
		}
		prevLine = l
		if tok == "{" {
			return c.Errf("%s: unexpected block", what)
		}
		end := strings.HasSuffix(tok, ";")
		if tok = strings.TrimSuffix(tok, ";"); tok != "" {
			if len(cur) == 0 {
				line = l
			}
			cur = append(cur, tok)
		}
		if end {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return c.Errf("%s: missing closing brace", what)
}
