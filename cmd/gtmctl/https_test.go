package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A domain's https and srv go through gtmctl as through the API: applied, read back, and
// applied again as no change (also from get's own output); a bad field is the API's 400.
func TestServicesRoundTrip(t *testing.T) {
	server, token := serve(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "gtm.yaml")
	os.WriteFile(f, []byte(`pools:
  web:
    addresses: [{address: 198.51.100.1}, {address: "2001:db8::1"}]
    lb: all
domains:
  h3.gtm.example.net:
    routes: [{selector: default, pools: [web]}]
    https: {priority: 1, alpn: [h3, h2], port: 443, hints: "on"}
    srv: [{service: _sip._udp, port: 5060}, {service: _xmpp._tcp, port: 5222, priority: 10}]
`), 0o600)
	if out := must(t, server, token, "apply", "-f", f); !strings.Contains(out, "applied 2 changes") {
		t.Fatalf("apply: %s", out)
	}
	got := must(t, server, token, "get", "domains", "h3.gtm.example.net.")
	for _, want := range []string{`"alpn"`, `"h3"`, `"port": 443`, `"hints": true`, `"service": "_sip._udp"`, `"port": 5222`, `"priority": 10`} {
		if !strings.Contains(got, want) {
			t.Errorf("get lacks %s:\n%s", want, got)
		}
	}
	if out := must(t, server, token, "apply", "-f", f); !strings.Contains(out, "no changes") {
		t.Errorf("second apply: %s", out)
	}
	all := filepath.Join(dir, "all.json")
	os.WriteFile(all, []byte(must(t, server, token, "get")), 0o600)
	if out := must(t, server, token, "diff", "-f", all); !strings.Contains(out, "no changes") {
		t.Errorf("diff of get's output: %s", out)
	}
	os.WriteFile(f, []byte(`domains:
  bad.gtm.example.net:
    routes: [{selector: default, pools: [core]}]
    srv: [{service: _sip._udp, port: 70000}]
`), 0o600)
	if _, errs, code := ctl(t, server, token, "apply", "-f", f); code == 0 || !strings.Contains(errs, "port 70000") {
		t.Errorf("bad srv port: exit %d: %s", code, errs)
	}
}
