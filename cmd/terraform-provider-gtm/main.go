// Command terraform-provider-gtm is the Terraform / OpenTofu provider of coredns-gtm
// (source address gtm-dns/gtm). Terraform or OpenTofu starts it; it is not run by hand
// (except with -debug, which prints the TF_REATTACH_PROVIDERS line for a debugger session).
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/gtm-dns/coredns-gtm/internal/tfprovider"
)

// version is set by the release build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers (prints TF_REATTACH_PROVIDERS)")
	flag.Parse()
	err := providerserver.Serve(context.Background(), tfprovider.New(version), providerserver.ServeOpts{
		Address: tfprovider.Address,
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
