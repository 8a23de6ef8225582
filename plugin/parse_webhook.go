package gtm

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/webhook"
)

// webhookKinds are the event kinds a webhook can ask for (those of /api/v1/events).
var webhookKinds = []string{"health", "failover", "failopen", "fallback", "hold", "failback", "mode", "pin", "config", "reload", "cluster"}

// webhookConfig is one `webhook URL { secret FILE; events KIND...; name NAME }` of an api block.
type webhookConfig struct {
	line   int
	url    string
	name   string // labels the metrics and the status; default its position in the api block
	secret []byte
	kinds  []string
}

// eachEntry is eachLine for a block whose directive nested may open a block of its own:
// fn is told whether the line did.
func eachEntry(c *caddy.Controller, what, nested string, fn func(dir string, args []string, isBlock bool) error) error {
	for c.Next() {
		if c.Val() == "}" {
			return nil
		}
		dir := c.Val()
		args, isBlock := lineArgs(c)
		if isBlock && dir != nested {
			return c.Errf("%s: unexpected block after %q", what, dir)
		}
		if err := fn(dir, args, isBlock); err != nil {
			return err
		}
	}
	return c.Errf("%s: missing closing brace", what)
}

func parseWebhook(c *caddy.Controller, b *block, a *apiConfig, args []string, isBlock bool) error {
	if len(args) != 1 {
		return c.Errf("api: webhook: expected URL such as https://hooks.example.com/gtm")
	}
	if err := webhook.ValidURL(args[0]); err != nil {
		return c.Errf("api: webhook: %v", err)
	}
	w := webhookConfig{line: c.Line(), url: args[0], name: strconv.Itoa(len(a.webhooks) + 1)}
	for _, o := range a.webhooks {
		if o.url == w.url {
			return c.Errf("api: webhook %s: listed twice (first on line %d)", w.url, o.line)
		}
	}
	what := "api: webhook " + w.url
	if isBlock {
		err := eachLine(c, what, func(dir string, args []string) error {
			switch dir {
			case "secret":
				if len(args) != 1 {
					return c.Errf("%s: secret: expected FILE", what)
				}
				raw, err := os.ReadFile(b.path(args[0]))
				if err != nil {
					return c.Errf("%s: secret: %v", what, err)
				}
				s := strings.TrimRight(string(raw), "\r\n")
				if s == "" {
					return c.Errf("%s: secret file %q is empty", what, args[0])
				}
				w.secret = []byte(s)
			case "events":
				if len(args) == 0 {
					return c.Errf("%s: events: expected KIND... (%s)", what, strings.Join(webhookKinds, ", "))
				}
				for _, k := range args {
					if !slices.Contains(webhookKinds, k) {
						return c.Errf("%s: events: unknown kind %q; expected %s", what, k, strings.Join(webhookKinds, ", "))
					}
					if !slices.Contains(w.kinds, k) {
						w.kinds = append(w.kinds, k)
					}
				}
			case "name":
				if len(args) != 1 || !validHookName(args[0]) {
					return c.Errf("%s: name: expected one NAME of letters, digits, '-', '_' or '.'", what)
				}
				w.name = args[0]
			default:
				return c.Errf("%s: unknown directive %q; expected secret, events or name", what, dir)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, o := range a.webhooks {
		if o.name == w.name {
			return errAt(c, w.line, "%s: name %q is also the name of the webhook of line %d", what, w.name, o.line)
		}
	}
	a.webhooks = append(a.webhooks, w)
	return nil
}

func validHookName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != "" && len(s) <= 64
}
