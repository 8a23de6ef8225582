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
}
