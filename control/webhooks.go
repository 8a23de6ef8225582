package control

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/webhook"
)

// webhookMetrics counts deliveries and drops. The webhook label is the webhook's name,
// never its URL (which may carry a token); the result and reason labels are the webhook
// package's fixed words.
type webhookMetrics struct{}

func (webhookMetrics) Delivered(hook, result string) {
	metrics.WebhookDeliveries.WithLabelValues(hook, result).Inc()
}
func (webhookMetrics) Dropped(hook, reason string) {
	metrics.WebhookDropped.WithLabelValues(hook, reason).Inc()
}

// liveHook is a running webhook and the node name its payloads carry.
type liveHook struct {
	h    *webhook.Hook
	node string
}

// hookSets are the webhooks in charge, per API address: the serving block's. A reload's new
// block takes over the address when it starts, before the old block stops, so no event is
// delivered twice; after a failed reload the running block takes it back. Process-wide
// because the event ring they follow is (api.DefaultEvents); its one writer is Block
// (serveWebhooks at Resume, stopWebhooks at Stop).
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
func (b *Block) serveWebhooks() {
	a := b.cfg.API
	if a == nil {
		return
	}
	if len(a.Webhooks) == 0 {
		// A reload that removed the webhooks: the old block's stop sending now.
		hookSets.Lock()
		if _, ok := hookSets.byAddr[a.Addr]; ok {
			delete(hookSets.byAddr, a.Addr)
			publishHooks()
		}
		hookSets.Unlock()
		return
	}
	hookSets.once.Do(func() { api.DefaultEvents.Subscribe(dispatchEvent) })
	hookSets.Lock()
	hooks := b.hooks
	hookSets.Unlock()
	if hooks == nil {
		node := nodeName(b.cfg)
		for _, w := range a.Webhooks {
			h, err := webhook.New(webhook.Config{Name: w.Name, URL: w.URL, Secret: w.Secret, Kinds: w.Kinds, Observer: webhookMetrics{}})
			if err != nil { // the URL was checked while parsing
				log.Errorf("%s:%d: api: webhook: %v", b.cfg.File, w.Line, err)
				continue
			}
			if w.Secret == nil {
				log.Warningf("%s:%d: api: webhook %s has no secret: its requests are not signed", b.cfg.File, w.Line, w.Name)
			}
			h.Start()
			hooks = append(hooks, liveHook{h, node})
		}
	}
	hookSets.Lock()
	defer hookSets.Unlock()
	b.hooks = hooks
	if hookSets.byAddr == nil {
		hookSets.byAddr = map[string][]liveHook{}
	}
	hookSets.byAddr[a.Addr] = hooks
	publishHooks()
}

// stopWebhooks takes the block's webhooks out of charge (unless a newer block holds the
// address) and stops them: requests in flight are cancelled, queued events dropped.
func (b *Block) stopWebhooks() {
	hookSets.Lock()
	hooks := b.hooks
	b.hooks = nil
	if len(hooks) > 0 {
		addr := b.cfg.API.Addr
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
func (b *Block) Webhooks() []webhook.Status {
	hookSets.Lock()
	hooks := b.hooks
	hookSets.Unlock()
	out := make([]webhook.Status, 0, len(hooks))
	for _, l := range hooks {
		out = append(out, l.h.Status())
	}
	return out
}

// nodeName names this node in webhook payloads: its cluster node name, else the host name.
func nodeName(cfg Config) string {
	if cfg.Cluster != nil {
		return cfg.Cluster.Node
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return fmt.Sprintf("pid-%d", os.Getpid())
}
