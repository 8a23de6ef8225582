data "gtm_status" "now" {}

output "unavailable_pools" {
  value = [for p in data.gtm_status.now.pools : p.name if !p.available]
}
