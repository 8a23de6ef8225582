// Command coredns-gtm is CoreDNS with the full standard plugin set plus the gtm plugin.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // the standard plugin set
	"github.com/coredns/coredns/coremain"

	_ "github.com/gtm-dns/coredns-gtm/plugin" // registers gtm
)

// gtm answers managed names before cache (geo answers must not be shared between clients
// through a cache that does not key on the client subnet) and after acl, rewrite, log,
// prometheus and metadata, so that those still see every query.
func init() {
	dnsserver.Directives = insertBefore(dnsserver.Directives, "cache", "gtm")
}

func insertBefore(list []string, before, name string) []string {
	out := make([]string, 0, len(list)+1)
	for _, d := range list {
		if d == before {
			out = append(out, name)
		}
		out = append(out, d)
	}
	return out
}

func main() {
	coremain.Run()
}
