data "gtm_domain" "apex" {
  name = "gtm.example.net"
}

output "apex_routes" {
  value = jsondecode(data.gtm_domain.apex.json).routes
}
