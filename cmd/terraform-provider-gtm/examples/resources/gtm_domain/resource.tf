resource "gtm_domain" "www" {
  name         = "www.gtm.example.net"
  ttl          = 30
  ttl_degraded = 10
  fallback     = "nodata"
  failback     = "5m"

  routes {
    selector = "continent:EU"
    pools    = [gtm_pool.eu.name, gtm_pool.us.name]
  }
  routes {
    selector = "net:10.0.0.0/8"
    pools    = [gtm_pool.eu.name]
  }
  routes {
    selector = "default"
    pools    = [gtm_pool.us.name, gtm_pool.eu.name]
  }

  # HTTPS (type 65) answers whose hints are the addresses this client gets.
  https {
    alpn = ["h3", "h2"]
  }
  # _sip._udp.www.gtm.example.net SRV, one record per answered address.
  srv {
    service = "_sip._udp"
    port    = 5060
  }
}
