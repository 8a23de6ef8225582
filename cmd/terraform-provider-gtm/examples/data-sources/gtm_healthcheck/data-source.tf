data "gtm_healthcheck" "web" {
  name = "web"
}

output "web_interval" {
  value = jsondecode(data.gtm_healthcheck.web.json).interval
}
