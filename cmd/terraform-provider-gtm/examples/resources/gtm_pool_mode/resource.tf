# Drain a whole datacenter: every address of the pool whose own mode is auto.
resource "gtm_pool_mode" "eu" {
  pool = gtm_pool.eu.name
  mode = "down"
}
