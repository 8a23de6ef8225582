# The manual disaster-recovery switch: every client of www is answered from us.
resource "gtm_pin" "www" {
  domain = gtm_domain.www.name
  pool   = gtm_pool.us.name
}
