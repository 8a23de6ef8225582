// Command coredns-gtm is CoreDNS with the full standard plugin set plus the gtm plugin.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // the standard plugin set
	"github.com/coredns/coredns/coremain"

	"github.com/gtm-dns/coredns-gtm/cmd/coredns-gtm/internal/tune"
	gtm "github.com/gtm-dns/coredns-gtm/plugin"
)

func main() {
	tune.Defaults()
	gtm.EnsureDirective()
	coremain.Run()
}
