package gtm

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/gtm-dns/coredns-gtm/api"
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

// Webhook metrics. The webhook label is the webhook's name, never its URL (which may carry
// a token); the result and reason labels are the webhook package's fixed words.
var (
	webhookDeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts by webhook and result (ok, status, timeout, error).",
	}, []string{"webhook", "result"})
	webhookDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "gtm", Name: "webhook_dropped_total",
		Help: "Events a webhook never delivered, by webhook and reason (queue_full, retries, rejected, shutdown).",
	}, []string{"webhook", "reason"})
)

type webhookMetrics struct{}

func (webhookMetrics) Delivered(hook, result string) {
	webhookDeliveries.WithLabelValues(hook, result).Inc()
}
func (webhookMetrics) Dropped(hook, reason string) {
	webhookDropped.WithLabelValues(hook, reason).Inc()
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

// liveHook is a running webhook and the node name its payloads carry.
type liveHook struct {
	h    *webhook.Hook
	node string
}

// hookSets are the webhooks in charge, per API address: the serving block's. A reload's new
// block takes over the address when it starts, before the old block stops, so no event is
// delivered twice; after a failed reload the running block takes it back.
var hookSets struct {
	sync.Mutex
	byAddr map[string][]liveHook
	all    atomic.Pointer[[]liveHook] // read on the event path without the lock
	once   sync.Once
}

// hookPayload is what a webhook POSTs: the event as /api/v1/events returns it, and the node.
type hookPayload struct {
	api.Event
	Node string `json:"node"`
}

// dispatchEvent hands e to every webhook in charge. It runs on the path that records the
// event, so it only enqueues, which never blocks.
func dispatchEvent(e api.Event) {
	all := hookSets.all.Load()
	if all == nil {
		return
	}
	for _, l := range *all {
		l.h.Enqueue(e.Kind, hookPayload{Event: e, Node: l.node})
	}
}

func publishHooks() {
	var all []liveHook
	for _, hs := range hookSets.byAddr {
		all = append(all, hs...)
	}
	hookSets.all.Store(&all)
}

// serveWebhooks starts the block's webhooks (once) and puts them in charge of its API address.
func (g *GTM) serveWebhooks() {
	b := g.block
	if b.api == nil {
		return
	}
	if len(b.api.webhooks) == 0 {
		// A reload that removed the webhooks: the old block's stop sending now.
		hookSets.Lock()
		if _, ok := hookSets.byAddr[b.api.addr]; ok {
			delete(hookSets.byAddr, b.api.addr)
			publishHooks()
		}
		hookSets.Unlock()
		return
	}
	hookSets.once.Do(func() { api.DefaultEvents.Subscribe(dispatchEvent) })
	hookSets.Lock()
	hooks := g.hooks
	hookSets.Unlock()
	if hooks == nil {
		node := nodeName(b)
		for _, w := range b.api.webhooks {
			h, err := webhook.New(webhook.Config{Name: w.name, URL: w.url, Secret: w.secret, Kinds: w.kinds, Observer: webhookMetrics{}})
			if err != nil { // the URL was checked while parsing
				log.Errorf("%s:%d: api: webhook: %v", b.file, w.line, err)
				continue
			}
			if w.secret == nil {
				log.Warningf("%s:%d: api: webhook %s has no secret: its requests are not signed", b.file, w.line, w.name)
			}
			h.Start()
			hooks = append(hooks, liveHook{h, node})
		}
	}
	hookSets.Lock()
	defer hookSets.Unlock()
	g.hooks = hooks
	if hookSets.byAddr == nil {
		hookSets.byAddr = map[string][]liveHook{}
	}
	hookSets.byAddr[b.api.addr] = hooks
	publishHooks()
}

// stopWebhooks takes the block's webhooks out of charge (unless a newer block holds the
// address) and stops them: requests in flight are cancelled, queued events dropped.
func (g *GTM) stopWebhooks() {
	hookSets.Lock()
	hooks := g.hooks
	g.hooks = nil
	if len(hooks) > 0 {
		addr := g.block.api.addr
		if cur := hookSets.byAddr[addr]; len(cur) > 0 && cur[0].h == hooks[0].h {
			delete(hookSets.byAddr, addr)
			publishHooks()
		}
	}
	hookSets.Unlock()
	for _, l := range hooks {
		l.h.Stop()
	}
}

// Webhooks implements api.Webhooked: each webhook's counters and last error.
func (g *GTM) Webhooks() []webhook.Status {
	hookSets.Lock()
	hooks := g.hooks
	hookSets.Unlock()
	out := make([]webhook.Status, 0, len(hooks))
	for _, l := range hooks {
		out = append(out, l.h.Status())
	}
	return out
}

// nodeName names this node in webhook payloads: its cluster node name, else the host name.
func nodeName(b *block) string {
	if b.cluster != nil {
		return b.cluster.node
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return fmt.Sprintf("pid-%d", os.Getpid())
}
