# What a client in 203.0.113.0/24 gets for www, and why.
data "gtm_explain" "client" {
  domain = "www.gtm.example.net"
  subnet = "203.0.113.0/24"
}

output "answer" {
  value = data.gtm_explain.client.answer
}
