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
    address = "192.0.2.11"
  }
  addresses {
    address  = "192.0.2.12"
    disabled = true
  }

  location {
    lat = 50.11
    lon = 8.68
  }
}
