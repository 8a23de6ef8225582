# Two datacenters, a domain routed by geography with failover between them, and a drain.
# Apply against a node whose Corefile has `gtm gtm.example.net { geoip ...; api ... { token_file ...; state ... } }`.

terraform {
  required_providers {
    gtm = {
      source = "gtm-dns/gtm"
    }
  }
}

provider "gtm" {} # GTM_SERVER and GTM_TOKEN

resource "gtm_healthcheck" "web" {
  name     = "web"
  protocol = "http"
  path     = "/health"
  interval = "5s"
}

resource "gtm_pool" "eu" {
  name        = "eu"
  healthcheck = gtm_healthcheck.web.name
  addresses {
    address = "192.0.2.10"
  }
  addresses {
    address = "192.0.2.11"
  }
}

resource "gtm_pool" "us" {
  name        = "us"
  healthcheck = gtm_healthcheck.web.name
  addresses {
    address = "198.51.100.10"
  }
}

resource "gtm_domain" "www" {
  name = "www.gtm.example.net"
  ttl  = 30

  routes {
    selector = "continent:EU"
    pools    = [gtm_pool.eu.name, gtm_pool.us.name] # failover: eu first, us when eu is down
  }
  routes {
    selector = "default"
    pools    = [gtm_pool.us.name, gtm_pool.eu.name]
  }
}

# Maintenance: take one server out of the answers; destroying this puts it back.
resource "gtm_address_mode" "drain_eu_1" {
  pool    = gtm_pool.eu.name
  address = "192.0.2.11"
  mode    = "down"
}

output "eu_client_gets" {
  value = data.gtm_explain.eu.answer
}

data "gtm_explain" "eu" {
  domain     = gtm_domain.www.name
  subnet     = "81.2.69.0/24"
  depends_on = [gtm_address_mode.drain_eu_1]
}
