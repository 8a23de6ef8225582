package gtm

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
)

// EnsureDirective puts gtm into CoreDNS's directive order, right before cache, unless a
// plugin.cfg build already placed it. Before cache, because CoreDNS's cache keys answers on
// name and type only: a geo answer cached there would be served to clients elsewhere. After
// log, prometheus, metadata, rewrite and acl, so those still see and police every query.
func EnsureDirective() {
	if slices.Contains(dnsserver.Directives, "gtm") {
		return
	}
	i := slices.Index(dnsserver.Directives, "cache")
	if i < 0 {
		i = len(dnsserver.Directives)
	}
	dnsserver.Directives = slices.Insert(dnsserver.Directives, i, "gtm")
}
