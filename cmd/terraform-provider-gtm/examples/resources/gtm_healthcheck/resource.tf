resource "gtm_healthcheck" "web" {
  name     = "web"
  protocol = "https"
  path     = "/health"
  host     = "www.example.com"
  expect   = "200-299"
  interval = "5s"
  fall     = 3
  rise     = 2
  max_rtt  = "500ms" # a slower probe counts as failed

  header {
    name  = "X-Probe"
    value = "gtm"
  }
}

# A verdict from Prometheus: one sample per address, compared with expect.
resource "gtm_healthcheck" "errors" {
  name     = "errors"
  protocol = "prometheus"
  url      = "http://prometheus.example.net:9090"
  query    = "sum(rate(http_errors_total{instance=\"{{address}}:443\"}[1m]))"
  expect   = "< 0.05"
}
