// Command coredns-gtm is CoreDNS with the full standard plugin set plus the gtm plugin.
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // the standard plugin set
	"github.com/coredns/coredns/coremain"

	gtm "github.com/gtm-dns/coredns-gtm/plugin"
)

func main() {
	gtm.EnsureDirective()
	coremain.Run()
}
