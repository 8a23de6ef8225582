resource "gtm_pool" "eu" {
  name          = "eu"
  lb            = "weighted"
  healthcheck   = gtm_healthcheck.web.name # or a list: ["web", "tcp"]
  min_available = "50%"                    # or a count: 2

  addresses {
    address = "192.0.2.10"
    weight  = 3
  }
  addresses {
    address       = "192.0.2.11"
    check_address = "10.1.0.11" # probed here, answered as 192.0.2.11 (NAT)
  }
  addresses {
    address  = "192.0.2.12"
    disabled = true
  }

  # Addresses from a registry join the static ones (and leave when it drops them).
  members {
    dns      = ["web.eu.reg.example.net"]
    resolver = "10.0.0.53"
    refresh  = ["5s", "1m"]
  }

  location {
    lat = 50.11
    lon = 8.68
  }
}

# A pool of names answered with the name's current A/AAAA (an ALIAS, valid at the apex).
resource "gtm_pool" "cdn" {
  name = "cdn"
  addresses {
    address = "edge.cdn.example.net"
  }
  flatten {}
}
