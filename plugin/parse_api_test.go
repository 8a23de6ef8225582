package gtm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/internal/testca"
)

func TestParseAPIAccess(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(v), 0o600)
		return p
	}
	admin, ops, ci := write("admin", "admin-v\n"), write("ops", "ops-v"), write("ci", "ci-v")
	ca := testca.New(t)
	cert, key := ca.Server(t, dir, "server", "127.0.0.1")
	input := "gtm gtm.example.net {\n api 127.0.0.1:0 {\n token_file " + admin +
		"\n token ops " + ops + " operate\n token ci " + ci + " admin domain:*.shop.gtm.example.net pool:shop-*\n tls " + cert + " " + key + " " + ca.CertFile +
		"\n audit " + filepath.Join(dir, "audit.log") + "\n }\n}"
	b, err := parse(caddy.NewTestController("dns", input))
	if err != nil {
		t.Fatal(err)
	}
	a := b.api.access
	if a.tokens.Len() != 3 || a.tls == nil || a.tls.ClientCAs == nil || a.audit != filepath.Join(dir, "audit.log") {
		t.Fatalf("parsed %+v", a)
	}
	if tok := a.tokens.Lookup("admin-v"); tok == nil || tok.Name != "token_file" || tok.Role != access.Admin || tok.Scoped() {
		t.Fatalf("token_file: %v", tok)
	}
	if tok := a.tokens.Lookup("ci-v"); tok == nil || tok.Role != access.Admin || len(tok.Scopes) != 2 {
		t.Fatalf("ci: %v", tok)
	}

	cl := "cluster {\n endpoint http://127.0.0.1:2379\n node a\n audit_retention 48h\n }\n"
	b, err = parse(caddy.NewTestController("dns", "gtm gtm.example.net {\n"+cl+"}"))
	if err != nil || b.cluster.auditRetention != 48*time.Hour {
		t.Fatalf("audit_retention: %v %v", b, err)
	}

	for _, c := range []struct {
		name, body string
		line       int
		want       []string
	}{
		{"token without role", "api 127.0.0.1:0 {\n token ops " + ops + "\n}", 3, []string{"token: expected NAME FILE ROLE"}},
		{"bad role", "api 127.0.0.1:0 {\n token ops " + ops + " root\n}", 3, []string{`role "root"`, "read, operate or admin"}},
		{"bad scope", "api 127.0.0.1:0 {\n token ops " + ops + " operate zone:x\n}", 3, []string{`scope "zone:x"`, "domain:GLOB"}},
		{"bad glob", "api 127.0.0.1:0 {\n token ops " + ops + " operate pool:[\n}", 3, []string{`scope "pool:["`, "bad glob"}},
		{"missing token file", "api 127.0.0.1:0 {\n token ops " + filepath.Join(dir, "nope") + " operate\n}", 3, []string{"token ops", "no such file"}},
		{"empty token file", "api 127.0.0.1:0 {\n token ops " + write("empty", " \n") + " operate\n}", 3, []string{"token ops", "empty"}},
		{"duplicate name", "api 127.0.0.1:0 {\n token ops " + ops + " operate\n token ops " + ci + " read\n}", 4, []string{"token ops: defined twice"}},
		{"same value", "api 127.0.0.1:0 {\n token ops " + ops + " operate\n token ops2 " + ops + " read\n}", 4, []string{"token ops2: same value as token ops"}},
		{"same value as token_file", "api 127.0.0.1:0 {\n token_file " + ops + "\n token ops " + ops + " read\n}", 2, []string{"same value as token token_file"}},
		{"reserved name", "api 127.0.0.1:0 {\n token token_file " + ops + " read\n}", 3, []string{`token "token_file"`}},
		{"tls missing key", "api 127.0.0.1:0 {\n tls " + cert + "\n}", 3, []string{"tls: expected CERT KEY [CLIENT_CA]"}},
		{"tls bad cert", "api 127.0.0.1:0 {\n tls " + ops + " " + key + "\n}", 3, []string{"api: tls:"}},
		{"tls bad ca", "api 127.0.0.1:0 {\n tls " + cert + " " + key + " " + ops + "\n}", 3, []string{"no PEM certificate"}},
		{"audit without file", "api 127.0.0.1:0 {\n audit\n}", 3, []string{"audit: expected FILE"}},
		{"audit with cluster", "api 127.0.0.1:0 {\n audit " + filepath.Join(dir, "a.log") + "\n}\n" + cl, 3, []string{"with cluster the audit records live in the fleet's etcd"}},
		{"bad retention", "cluster {\n endpoint http://127.0.0.1:2379\n node a\n audit_retention forever\n}", 5, []string{`audit_retention "forever"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(caddy.NewTestController("dns", "gtm gtm.example.net {\n"+c.body+"\n}"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append([]string{"Testfile:" + itoa(c.line) + " "}, c.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
