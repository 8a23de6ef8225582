package api

import "testing"

// A healthcheck's source address is "source_address" through the API, beside the
// "source":"api" every resource's answer carries, and is validated like the Corefile's.
func TestConfigHealthCheckSourceAddress(t *testing.T) {
	a, _, _ := newConfigAPI(t, true)
	a.want(a.do("PUT", "/api/v1/config/healthchecks/from2", `{"protocol":"tcp","port":80,"source_address":"127.0.0.2"}`),
		201, `"source_address": "127.0.0.2"`, `"source": "api"`)
	a.want(a.do("GET", "/api/v1/config/healthchecks/from2", ""), 200, `"source_address": "127.0.0.2"`, `"source": "api"`)
	a.want(a.do("PUT", "/api/v1/config/healthchecks/bad", `{"protocol":"tcp","port":80,"source_address":"localhost"}`),
		400, `source \"localhost\": expected a local IP address such as 127.0.0.2`, `"field": "source_address"`)
	a.want(a.do("PUT", "/api/v1/config/healthchecks/bad", `{"protocol":"tcp","port":80,"source":"127.0.0.2"}`), 400, "source")
}
