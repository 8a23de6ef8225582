# A pool defined in the Corefile (read-only through the API) read into Terraform.
data "gtm_pool" "static" {
  name = "static"
}

output "static_addresses" {
  value = [for a in jsondecode(data.gtm_pool.static.json).addresses : a.address]
}
