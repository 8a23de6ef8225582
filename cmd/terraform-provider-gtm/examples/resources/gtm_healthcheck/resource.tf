resource "gtm_healthcheck" "web" {
  name     = "web"
  protocol = "https"
  path     = "/health"
  host     = "www.example.com"
  expect   = "200-299"
  interval = "5s"
  fall     = 3
  rise     = 2

  header {
    name  = "X-Probe"
    value = "gtm"
  }
}
