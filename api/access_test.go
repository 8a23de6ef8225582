package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// The tokens of the matrix: every role, and scoped ones that cover (or miss) the targets
// the requests below touch: pool hz, domain www.example.net. (overrides), domain
// app.gtm.test. (config), pool p1 and template hc1 (config).
var matrixTokens = map[string]*access.Token{
	"reader":  access.NewToken("reader", "v-reader-0123456789", access.Read),
	"ops":     access.NewToken("ops", "v-ops-0123456789", access.Operate),
	"admin":   access.NewToken("admin", "v-admin-0123456789", access.Admin),
	"ci":      access.NewToken("ci", "v-ci-0123456789", access.Admin, access.Scope{Kind: "domain", Glob: "*.gtm.test"}),
	"poolops": access.NewToken("poolops", "v-poolops-0123456789", access.Operate, access.Scope{Kind: "pool", Glob: "h*"}),
	"webops":  access.NewToken("webops", "v-webops-0123456789", access.Operate, access.Scope{Kind: "domain", Glob: "www.example.net"}),
}

// matrix: for every operation of docs/openapi.yaml, the tokens that may call it (the others
// get 403). A new endpoint fails this test until it is given its row here (and a rule in
// access.go when it writes).
var matrix = map[string][]string{
	"GET /api/v1/status":                                  {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/events":                                  {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/history":                                 {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/cluster":                                 {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/explain":                                 {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/audit":                                   {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/brake":                                   {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/config":                                  {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/config/healthchecks/{name}":              {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/config/pools/{name}":                     {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/config/domains/{domain}":                 {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /api/v1/pools/{pool}/mode":                       {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"GET /":                                               {"reader", "ops", "admin", "ci", "poolops", "webops"},
	"PUT /api/v1/pools/{pool}/addresses/{address}/mode":   {"ops", "admin", "poolops"},
	"PUT /api/v1/pools/{pool}/mode":                       {"ops", "admin", "poolops"},
	"DELETE /api/v1/pools/{pool}/mode":                    {"ops", "admin", "poolops"},
	"PUT /api/v1/domains/{domain}/pin":                    {"ops", "admin", "webops"},
	"POST /api/v1/domains/{domain}/failback":              {"ops", "admin", "webops"},
	"PUT /api/v1/config/healthchecks/{name}":              {"admin"},
	"DELETE /api/v1/config/healthchecks/{name}":           {"admin"},
	"PUT /api/v1/config/pools/{name}":                     {"admin"},
	"DELETE /api/v1/config/pools/{name}":                  {"admin"},
	"PUT /api/v1/config/domains/{domain}":                 {"admin", "ci"},
	"DELETE /api/v1/config/domains/{domain}":              {"admin", "ci"},
	"PUT /api/v1/pools/{pool}/addresses/{address}/health": {"ops", "admin", "poolops"},
	"POST /api/v1/brake/release":                          {"ops", "admin"},
	"PUT /api/v1/config":                                  {"admin"},
	"POST /api/v1/cluster/restore":                        {"admin"},
}

// refusals: what a 403 says for a few cells (the token, and the right it lacks).
var refusals = map[[2]string]string{
	{"ops", "PUT /api/v1/config/pools/{name}"}:                      "token ops: role operate cannot write config",
	{"reader", "PUT /api/v1/domains/{domain}/pin"}:                  "token reader: role read cannot pin domains",
	{"ci", "PUT /api/v1/config/pools/{name}"}:                       "token ci: scope domain:*.gtm.test does not cover pool p1",
	{"poolops", "POST /api/v1/domains/{domain}/failback"}:           "token poolops: scope pool:h* does not cover domain www.example.net",
	{"webops", "PUT /api/v1/pools/{pool}/addresses/{address}/mode"}: "token webops: scope domain:www.example.net does not cover pool hz",
}

func concrete(method, p string) (string, string) {
	r := strings.NewReplacer("{pool}", "hz", "{address}", "192.0.2.1", "{name}", "hc1")
	body := ""
	switch {
	case strings.HasPrefix(p, "/api/v1/config/domains/"):
		p = strings.Replace(p, "{domain}", "app.gtm.test", 1)
		body = `{"routes":[{"selector":"default","pools":["core"]}]}`
	case strings.HasPrefix(p, "/api/v1/config/pools/"):
		p = strings.Replace(p, "{name}", "p1", 1)
		body = `{"addresses":[{"address":"192.0.2.9"}]}`
	case strings.HasPrefix(p, "/api/v1/config/healthchecks/"):
		body = `{"protocol":"tcp","port":81}`
	case strings.HasSuffix(p, "/pin"):
		body = `{"pool":"hz"}`
	case strings.HasSuffix(p, "/mode"):
		body = `{"mode":"down"}`
	case strings.HasSuffix(p, "/health"):
		body = `{"healthy":false,"ttl":"30s"}`
	case p == "/api/v1/config":
		// Creates a pool and a domain naming a missing one: the unscoped admin gets the
		// validation's 400 (nothing written, so every token sees the same changes), the
		// scoped tokens a 403 by what the write changes, checked first.
		body = `{"pools":{"p2":{"addresses":[{"address":"192.0.2.8"}]}},"domains":{"bad.gtm.test":{"routes":[{"selector":"default","pools":["nope"]}]}}}`
	}
	p = strings.Replace(p, "{domain}", "www.example.net", 1)
	p = r.Replace(p)
	if strings.HasSuffix(p, "/explain") {
		p += "?domain=www.example.net"
	}
	if method == http.MethodDelete || method == http.MethodGet {
		body = ""
	}
	return p, body
}

func newMatrixAPI(t *testing.T) (string, *fakeControl, *audit.Memory, *Events, *[]string) {
	t.Helper()
	ctl := newFakeControl(t, true)
	snap := snapshot(ctl.Store())
	set, err := access.NewSet(matrixTokens["reader"], matrixTokens["ops"], matrixTokens["admin"], matrixTokens["ci"], matrixTokens["poolops"], matrixTokens["webops"])
	if err != nil {
		t.Fatal(err)
	}
	log := audit.NewMemory(10000)
	ev := NewEvents(1000)
	var mu sync.Mutex
	var logs []string
	h := NewHandler(Config{Tokens: set, Audit: log, Control: ctl, Events: ev, Snapshot: func() *policy.Snapshot { return snap },
		Log: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, ctl, log, ev, &logs
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAccessMatrix: every operation of docs/openapi.yaml × every role × scopes that cover
// or miss its target. A refusal is 403 naming the token and the missing right, changes
// nothing, and is an audit record; every write attempt of a known token is one record.
func TestAccessMatrix(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			ops = append(ops, m+" "+p)
		}
	}
	// Rows of endpoints being added in parallel (push health, brake, whole config, restore)
	// are checked once documented.
	for op := range matrix {
		if !slices.Contains(ops, op) {
			t.Logf("matrix row %q is not (yet) an operation of docs/openapi.yaml", op)
		}
	}
	sort.Strings(ops)
	base, ctl, log, _, _ := newMatrixAPI(t)
	writes := 0
	for _, op := range ops {
		allowed, ok := matrix[op]
		if !ok {
			t.Errorf("operation %q of docs/openapi.yaml has no row in the access matrix", op)
			continue
		}
		method, tmpl, _ := strings.Cut(op, " ")
		p, body := concrete(method, tmpl)
		names := make([]string, 0, len(matrixTokens))
		for n := range matrixTokens {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			tok := matrixTokens[name]
			value := "v-" + name + "-0123456789"
			before := ctl.Store().Data().Revision
			code, resp := call(t, method, base+p, value, body)
			if method != http.MethodGet {
				writes++
			}
			if slices.Contains(allowed, name) {
				if code == http.StatusForbidden || code == http.StatusUnauthorized {
					t.Errorf("%s by %s (%s): %d %s", op, name, tok.Role, code, resp)
				}
				continue
			}
			if code != http.StatusForbidden {
				t.Errorf("%s by %s (%s): %d, want 403: %s", op, name, tok.Role, code, resp)
				continue
			}
			var e struct{ Error string }
			json.Unmarshal([]byte(resp), &e)
			if !strings.HasPrefix(e.Error, "token "+name+": ") {
				t.Errorf("%s by %s: 403 %q does not name the token", op, name, e.Error)
			}
			if want, ok := refusals[[2]string{name, op}]; ok && e.Error != want {
				t.Errorf("%s by %s: %q, want %q", op, name, e.Error, want)
			}
			if after := ctl.Store().Data().Revision; after != before {
				t.Errorf("%s by %s: refused, but the state moved from revision %d to %d", op, name, before, after)
			}
		}
	}
	recs, _ := log.List(context.Background(), 0, 10000)
	if len(recs) != writes {
		t.Errorf("%d write attempts, %d audit records", writes, len(recs))
	}
	for _, r := range recs {
		if r.Status == http.StatusForbidden && (r.Error == "" || r.Token == "") {
			t.Errorf("refusal record without token or reason: %+v", r)
		}
	}
	// An unknown token is not a known actor: 401, and nothing to record.
	if code, _ := call(t, "PUT", base+"/api/v1/domains/www.example.net/pin", "v-nobody-0123456789", `{"pool":"hz"}`); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", code)
	}
	if again, _ := log.List(context.Background(), 0, 10000); len(again) != len(recs) {
		t.Error("an unknown token's attempt was recorded")
	}
}

// TestAuditRecordsAndTokenNames: accepted, invalid and refused writes are recorded with
// before/after and status; events name the token; no token value appears in logs, events,
// records, status or the page.
func TestAuditRecordsAndTokenNames(t *testing.T) {
	base, _, log, ev, logs := newMatrixAPI(t)
	steps := []struct {
		token, method, path, body string
		code                      int
	}{
		{"v-admin-0123456789", "PUT", "/api/v1/config/pools/p1", `{"addresses":[{"address":"192.0.2.9"}]}`, 201},
		{"v-admin-0123456789", "PUT", "/api/v1/config/pools/p1", `{"addresses":[{"address":"192.0.2.10"}]}`, 200},
		{"v-admin-0123456789", "PUT", "/api/v1/config/pools/p1", `{"addresses":[{"address":"not-an-ip!"}]}`, 400},
		{"v-ops-0123456789", "PUT", "/api/v1/config/pools/p1", `{"addresses":[]}`, 403},
		{"v-ops-0123456789", "PUT", "/api/v1/pools/hz/addresses/192.0.2.1/mode", `{"mode":"down"}`, 200},
		{"v-webops-0123456789", "PUT", "/api/v1/domains/www.example.net/pin", `{"pool":"hz"}`, 200},
		{"v-admin-0123456789", "DELETE", "/api/v1/config/pools/p1", ``, 204},
	}
	for _, s := range steps {
		if code, body := call(t, s.method, base+s.path, s.token, s.body); code != s.code {
			t.Fatalf("%s %s: %d, want %d: %s", s.method, s.path, code, s.code, body)
		}
	}
	recs, _ := log.List(context.Background(), 0, 100)
	if len(recs) != len(steps) {
		t.Fatalf("%d records for %d writes", len(recs), len(steps))
	}
	want := []struct {
		token, resource, before, after string
		status                         int
	}{
		{"admin", "config/pools/p1", "null", `{"addresses":[{"address":"192.0.2.9"`, 201},
		{"admin", "config/pools/p1", `"192.0.2.9"`, `"192.0.2.10"`, 200},
		{"admin", "config/pools/p1", `"192.0.2.10"`, `"192.0.2.10"`, 400},
		{"ops", "config/pools/p1", `"192.0.2.10"`, `"192.0.2.10"`, 403},
		{"ops", "modes/hz/192.0.2.1", "null", `{"mode":"down"}`, 200},
		{"webops", "pins/www.example.net.", "null", `{"pool":"hz"}`, 200},
		{"admin", "config/pools/p1", `"192.0.2.10"`, "null", 204},
	}
	for i, w := range want {
		r := recs[i]
		b, _ := json.Marshal(r)
		if r.Token != w.token || r.Resource != w.resource || r.Status != w.status || !strings.Contains(string(r.Before), strings.TrimPrefix(w.before, "null")) ||
			!strings.Contains(string(r.After), strings.TrimPrefix(w.after, "null")) || (w.before == "null") != (r.Before == nil) || (w.after == "null") != (r.After == nil) ||
			r.Method != steps[i].method || r.Path != steps[i].path || r.Client == "" || r.Time.IsZero() || (i > 0 && r.ID <= recs[i-1].ID) {
			t.Errorf("record %d: %s", i, b)
		}
	}
	// GET /api/v1/audit: oldest first, since and limit; the latest without since.
	code, body := call(t, "GET", base+fmt.Sprintf("/api/v1/audit?since=%d&limit=2", recs[1].ID), "v-reader-0123456789", "")
	var page AuditDoc
	if json.Unmarshal([]byte(body), &page); code != 200 || len(page.Records) != 2 || page.Records[0].ID != recs[2].ID || page.Last != recs[3].ID {
		t.Fatalf("audit page: %d %s", code, body)
	}
	code, body = call(t, "GET", base+"/api/v1/audit?limit=1", "v-reader-0123456789", "")
	if json.Unmarshal([]byte(body), &page); code != 200 || len(page.Records) != 1 || page.Records[0].ID != recs[6].ID {
		t.Fatalf("latest: %d %s", code, body)
	}
	for _, bad := range []string{"since=-1", "since=x", "limit=0", "limit=1001"} {
		if code, body := call(t, "GET", base+"/api/v1/audit?"+bad, "v-reader-0123456789", ""); code != 400 || !strings.Contains(body, strings.Split(bad, "=")[0]) {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
	// Events of kind config, mode and pin name the token.
	kinds := map[string]string{}
	for _, e := range ev.Since(0) {
		kinds[e.Kind] = e.Token
	}
	if kinds["config"] != "admin" || kinds["mode"] != "ops" || kinds["pin"] != "webops" {
		t.Errorf("event tokens: %v", kinds)
	}
	// No token value anywhere an operator or a scraper reads.
	_, status := call(t, "GET", base+"/api/v1/status", "v-reader-0123456789", "")
	_, page1 := call(t, "GET", base+"/", "v-reader-0123456789", "")
	_, events := call(t, "GET", base+"/api/v1/events", "v-reader-0123456789", "")
	_, auditAll := call(t, "GET", base+"/api/v1/audit?since=0&limit=1000", "v-reader-0123456789", "")
	all := strings.Join(append([]string{status, page1, events, auditAll}, *logs...), "\n")
	for name := range matrixTokens {
		if strings.Contains(all, "v-"+name+"-0123456789") {
			t.Errorf("the value of token %s leaked", name)
		}
	}
}

// A write of many keys is allowed only when the token's scopes cover every one.
func TestAllowKeys(t *testing.T) {
	ci := matrixTokens["ci"] // admin, domain:*.gtm.test
	r := httptest.NewRequest("PUT", "/api/v1/config", nil)
	r = r.WithContext(context.WithValue(r.Context(), attemptKey{}, &attempt{tok: ci}))
	ok := []state.Op{{Key: "config/domains/a.gtm.test."}, {Key: "pins/b.gtm.test."}, {Key: "holds/c.gtm.test."}}
	if err := allowKeys(r, ok); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"config/pools/p", "config/healthchecks/h", "config/domains/www.example.net.", "modes/p/192.0.2.1", "poolmodes/p"} {
		if err := allowKeys(r, append(ok, state.Op{Key: k})); err == nil || !strings.HasPrefix(err.Error(), "token ci: scope domain:*.gtm.test does not cover") {
			t.Errorf("%s: %v", k, err)
		}
	}
	if err := allowKeys(httptest.NewRequest("PUT", "/", nil), []state.Op{{Key: "config/pools/p"}}); err != nil {
		t.Errorf("outside an audited request: %v", err)
	}
}
