terraform {
  required_providers {
    gtm = {
      source = "gtm-dns/gtm"
    }
  }
}

# The admin API of a coredns-gtm node (`api ADDRESS { token_file FILE; state FILE }`, or any
# node of a fleet). server and token may instead come from GTM_SERVER and GTM_TOKEN.
provider "gtm" {
  server     = "https://gtm-api.example.net:8053"
  token_file = "/etc/gtm/token"
  ca_cert    = "/etc/gtm/ca.pem" # the API's `tls` certificate is signed by a private CA

  # In a fleet: every write returns once every live node applied it (?wait=synced).
  wait_synced  = true
  wait_timeout = "30s"
}
