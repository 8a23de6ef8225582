# Drain one server for a maintenance window tonight; the server ends it by itself.
resource "gtm_address_mode" "db_upgrade" {
  pool    = gtm_pool.eu.name
  address = "192.0.2.10"
  mode    = "down"
  from    = "2026-12-08T22:00:00Z"
  until   = "2026-12-09T02:00:00Z"
}
