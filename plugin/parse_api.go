package gtm

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/api"
)

// accessConfig is what the api block says about who may do what, over which transport,
// and where the record of it is kept: token NAME FILE ROLE [SCOPE...], tls CERT KEY
// [CLIENT_CA], audit FILE.
type accessConfig struct {
	named     []*access.Token
	tokens    *access.Set // built when the block is parsed: token_file's and the named ones
	tls       *tls.Config
	audit     string // the audit FILE (single node)
	auditLine int
}

// parseAPIAccess parses the access directives of the api block; false when dir is not one.
func parseAPIAccess(c *caddy.Controller, b *block, a *apiConfig, dir string, args []string) (bool, error) {
	switch dir {
	case "token":
		if len(args) < 3 {
			return true, c.Errf("api: token: expected NAME FILE ROLE [SCOPE...] (ROLE: read, operate or admin; SCOPE: domain:GLOB or pool:GLOB)")
		}
		name := args[0]
		if name == api.TokenFileName || !validTokenName(name) {
			return true, c.Errf("api: token %q: expected a name of letters, digits, '.', '_' or '-' (not %q)", name, api.TokenFileName)
		}
		raw, err := os.ReadFile(b.path(args[1]))
		if err != nil {
			return true, c.Errf("api: token %s: %v", name, err)
		}
		value := strings.TrimSpace(string(raw))
		if value == "" {
			return true, c.Errf("api: token %s: file %q is empty", name, args[1])
		}
		role, ok := access.ParseRole(args[2])
		if !ok {
			return true, c.Errf("api: token %s: role %q: expected read, operate or admin", name, args[2])
		}
		var scopes []access.Scope
		for _, s := range args[3:] {
			sc, err := access.ParseScope(s)
			if err != nil {
				return true, c.Errf("api: token %s: %v", name, err)
			}
			scopes = append(scopes, sc)
		}
		a.access.named = append(a.access.named, access.NewToken(name, value, role, scopes...))
		if _, err := access.NewSet(a.access.named...); err != nil {
			return true, c.Errf("api: %v", err)
		}
	case "tls":
		if len(args) < 2 || len(args) > 3 {
			return true, c.Errf("api: tls: expected CERT KEY [CLIENT_CA]")
		}
		for i := range args {
			args[i] = b.path(args[i])
		}
		t, err := serverTLS(args[0], args[1], args[2:]...)
		if err != nil {
			return true, c.Errf("api: tls: %v", err)
		}
		a.access.tls = t
	case "audit":
		if len(args) != 1 {
			return true, c.Errf("api: audit: expected FILE")
		}
		a.access.audit, a.access.auditLine = b.path(args[0]), c.Line()
	default:
		return false, nil
	}
	return true, nil
}

// finishAPIAccess builds the block's token set once every line is read.
func finishAPIAccess(c *caddy.Controller, a *apiConfig) error {
	tokens := a.access.named
	if a.token != "" {
		tokens = append([]*access.Token{access.NewToken(api.TokenFileName, a.token, access.Admin)}, tokens...)
	}
	set, err := access.NewSet(tokens...)
	if err != nil {
		return errAt(c, a.line, "api: %v", err)
	}
	a.access.tokens = set
	return nil
}

// checkAccess checks the access settings against the rest of the block.
func checkAccess(c *caddy.Controller, b *block) error {
	if b.cluster != nil && b.api != nil && b.api.access.audit != "" {
		return errAt(c, b.api.access.auditLine, "api: audit: with cluster the audit records live in the fleet's etcd; remove audit, and bound them with cluster { audit_retention DURATION }")
	}
	return nil
}

// parseClusterAccess parses the cluster block's audit_retention; false when dir is not it.
func parseClusterAccess(c *caddy.Controller, cl *clusterConfig, dir string, args []string) (bool, error) {
	if dir != "audit_retention" {
		return false, nil
	}
	if len(args) != 1 {
		return true, c.Errf("cluster: audit_retention: expected DURATION such as 720h")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < time.Second {
		return true, c.Errf("cluster: audit_retention %q: expected a duration of at least 1s such as 720h", args[0])
	}
	cl.auditRetention = d
	return true, nil
}

func validTokenName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// serverTLS is the admin API's TLS: the certificate, and with a client CA a required,
// verified client certificate. Files are read now: a reload (SIGUSR1) reads them again.
func serverTLS(cert, key string, clientCA ...string) (*tls.Config, error) {
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	t := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	if len(clientCA) == 1 {
		pem, err := os.ReadFile(clientCA[0])
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate in it", clientCA[0])
		}
		t.ClientCAs, t.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return t, nil
}
