package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gtm-dns/coredns-gtm/internal/testca"
)

// gtmctl against an API with tls and required client certificates: --cacert, --cert,
// --key; audit prints records (latest, since, pages, JSON lines).
func TestAuditOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	scert, skey := ca.Server(t, dir, "server", "127.0.0.1")
	ccert, ckey := ca.Client(t, dir, "operator")
	var queries []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/audit" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"no"}`, 404)
			return
		}
		queries = append(queries, r.URL.RawQuery)
		var recs []map[string]any
		from := 0
		fmt.Sscan(r.URL.Query().Get("since"), &from)
		n := 2
		if r.URL.Query().Get("since") == "" {
			from = 5
		}
		if from == 0 {
			n = 1000 // a full page: gtmctl asks for the next
		}
		if from >= 1000 {
			n = 1
		}
		for i := 1; i <= n; i++ {
			recs = append(recs, map[string]any{"id": from + i, "time": "2026-12-06T22:00:00Z", "token": "ops", "client": "127.0.0.1:5", "method": "PUT",
				"path": "/api/v1/pools/a/mode", "resource": "poolmodes/a", "before": nil, "after": map[string]string{"mode": "down"}, "status": 403, "error": "token ops: scope pool:b* does not cover pool a"})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"records": recs, "last": from + n})
	}))
	kp, err := tls.LoadX509KeyPair(scert, skey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	env := func(k string) string {
		if k == "GTM_TOKEN" {
			return "tok"
		}
		return ""
	}
	gtmctl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"--server", srv.URL, "--cacert", ca.CertFile}, args...), &out, &errb, env)
		return code, out.String(), errb.String()
	}
	code, out, errs := gtmctl("--cert", ccert, "--key", ckey, "audit")
	if code != 0 || !strings.Contains(out, "6 2026-12-06T22:00:00Z ops 127.0.0.1:5 PUT /api/v1/pools/a/mode 403 poolmodes/a: token ops: scope pool:b* does not cover pool a") || queries[0] != "limit=1000" {
		t.Fatalf("audit: %d %q %q %v", code, out, errs, queries)
	}
	queries = nil
	code, out, _ = gtmctl("--cert", ccert, "--key", ckey, "audit", "--since", "0", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1001 || len(queries) != 2 || queries[1] != "limit=1000&since=1000" {
		t.Fatalf("export: %d, %d lines, queries %v", code, len(lines), queries)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["id"] != float64(1) || rec["token"] != "ops" || rec["status"] != float64(403) {
		t.Fatalf("JSON line %s: %v", lines[0], err)
	}
	// No client certificate: the handshake is refused.
	if code, _, errs := gtmctl("audit"); code != 1 || !strings.Contains(errs, "certificate") {
		t.Fatalf("without a client certificate: %d %q", code, errs)
	}
	// No --cacert: the server's certificate is not trusted.
	var o, e bytes.Buffer
	if code := run([]string{"--server", srv.URL, "--cert", ccert, "--key", ckey, "audit"}, &o, &e, env); code != 1 || !strings.Contains(e.String(), "certificate") {
		t.Fatalf("without --cacert: %d %q", code, e.String())
	}
	if code, _, errs := gtmctl("--cert", ccert, "audit"); code != 2 || !strings.Contains(errs, "--cert and --key go together") {
		t.Fatalf("--cert alone: %d %q", code, errs)
	}
	if code, _, errs := gtmctl("--cacert", ckey, "audit"); code != 2 || !strings.Contains(errs, "no PEM certificate") {
		t.Fatalf("bad --cacert: %d %q", code, errs)
	}
}
