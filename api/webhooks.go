package api

import "github.com/gtm-dns/coredns-gtm/webhook"

// Webhooked is a Control with webhooks: /api/v1/status reports them.
type Webhooked interface {
	// Webhooks reports each webhook's queue, counters and last error.
	Webhooks() []webhook.Status
}

// webhookStatus is the "webhooks" member of the status: nil (left out) without webhooks.
func (h *handler) webhookStatus() []webhook.Status {
	if wh, ok := h.cfg.Control.(Webhooked); ok {
		if s := wh.Webhooks(); len(s) > 0 {
			return s
		}
	}
	return nil
}
