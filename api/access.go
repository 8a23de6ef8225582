package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
)

// TokenFileName is the name of the `token_file` token (an unscoped admin) in audit records
// and events.
const TokenFileName = "token_file"

// rule is what a route needs: the least role, and how a refusal words the right.
type rule struct {
	need access.Role
	what string
}

// rules lists the writes; every GET needs role read, and a write route missing here needs
// admin (a new endpoint is refused to operators until it is given its rule).
var rules = map[string]rule{
	"PUT /api/v1/config/{kind}/{name}":                    {access.Admin, "write config"},
	"DELETE /api/v1/config/{kind}/{name}":                 {access.Admin, "write config"},
	"PUT /api/v1/pools/{pool}/addresses/{address}/mode":   {access.Operate, "set address modes"},
	"PUT /api/v1/pools/{pool}/mode":                       {access.Operate, "set pool modes"},
	"DELETE /api/v1/pools/{pool}/mode":                    {access.Operate, "set pool modes"},
	"PUT /api/v1/domains/{domain}/pin":                    {access.Operate, "pin domains"},
	"POST /api/v1/domains/{domain}/failback":              {access.Operate, "fail back"},
	"PUT /api/v1/pools/{pool}/addresses/{address}/health": {access.Operate, "push health verdicts"},
	"POST /api/v1/brake/release":                          {access.Operate, "release the brake"},
	"PUT /api/v1/config":                                  {access.Admin, "write config"},
	"POST /api/v1/cluster/restore":                        {access.Admin, "restore the cluster state"},
}

// ruleOf is the rule of a route pattern ("METHOD /path").
func ruleOf(pattern string) rule {
	if r, ok := rules[pattern]; ok {
		return r
	}
	method, _, _ := strings.Cut(pattern, " ")
	if method == http.MethodGet || method == http.MethodHead {
		return rule{access.Read, "read"}
	}
	return rule{access.Admin, "write " + strings.TrimPrefix(pattern, method+" ")}
}

// tokenOf returns the known token a request presents as its bearer, or nil.
func (h *handler) tokenOf(r *http.Request) *access.Token {
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return nil
	}
	return h.tokens.Lookup(strings.TrimSpace(auth[len(prefix):]))
}

// pathValues matches a pattern's path against a request path: the {name} wildcards' values.
func pathValues(pattern, p string) map[string]string {
	_, pp, _ := strings.Cut(pattern, " ")
	ps, rs := strings.Split(pp, "/"), strings.Split(p, "/")
	if len(ps) != len(rs) {
		return nil
	}
	out := map[string]string{}
	for i, seg := range ps {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			v, err := url.PathUnescape(rs[i])
			if err != nil {
				v = rs[i]
			}
			out[strings.TrimSuffix(strings.Trim(seg, "{}"), "...")] = v
		}
	}
	return out
}

// targetOf is what a write of pattern at path p changes, for the scope check.
func targetOf(pattern, p string) access.Target {
	v := pathValues(pattern, p)
	switch {
	case v["kind"] != "":
		kind, ok := config.ParseKind(v["kind"])
		if !ok {
			return access.Target{Kind: v["kind"], Name: v["name"]}
		}
		return access.Target{Kind: kind.Singular(), Name: v["name"]}
	case v["domain"] != "":
		return access.Target{Kind: "domain", Name: v["domain"]}
	case v["pool"] != "":
		return access.Target{Kind: "pool", Name: v["pool"]}
	}
	return access.Target{}
}

// resourceOf is the state key a write of pattern at path p is about (what its audit record
// names), or the path under /api/v1/ for a write outside the state.
func resourceOf(pattern, p string) string {
	v := pathValues(pattern, p)
	fqdn := func(s string) string { return strings.ToLower(dns.Fqdn(s)) }
	_, pp, _ := strings.Cut(pattern, " ")
	switch pp {
	case "/api/v1/config/{kind}/{name}":
		name := v["name"]
		if v["kind"] == "domains" {
			if n, ok := config.DomainName(name); ok {
				name = n
			}
		}
		return state.ConfigKey(v["kind"], name)
	case "/api/v1/pools/{pool}/addresses/{address}/mode":
		return state.ModeKey(v["pool"], config.AddressKey(v["address"]))
	case "/api/v1/pools/{pool}/mode":
		return state.PoolModeKey(v["pool"])
	case "/api/v1/domains/{domain}/pin":
		return state.PinKey(fqdn(v["domain"]))
	case "/api/v1/domains/{domain}/failback":
		return state.HoldsPrefix + fqdn(v["domain"])
	}
	return strings.TrimPrefix(p, "/api/v1/")
}

// allow decides whether tok may use the route pattern for request r.
func allow(tok *access.Token, pattern string, r *http.Request) error {
	ru := ruleOf(pattern)
	write := r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
	if scopedByChanges[pattern] {
		// A write of many resources: its scope check is on what it changes (allowKeys, in
		// the handler, against the state it commits at), not on the path.
		write = false
	}
	return access.Allow(tok, ru.need, ru.what, write, targetOf(pattern, r.URL.EscapedPath()))
}

// scopedByChanges are the write routes whose scope check is allowKeys on the changes they
// compute: a scoped token may make them when every resource they create, update or delete
// lies in its scopes.
var scopedByChanges = map[string]bool{
	"PUT /api/v1/config": true,
}

// tokenSet is the handler's tokens: cfg.Tokens, or the lone token_file token of cfg.Token.
func tokenSet(cfg Config) *access.Set {
	if cfg.Tokens != nil {
		return cfg.Tokens
	}
	if cfg.Token == "" {
		return nil
	}
	s, _ := access.NewSet(access.NewToken(TokenFileName, cfg.Token, access.Admin))
	return s
}

// allowKeys checks that the token of write request r may write every state key of ops (a
// write of many resources: each must be in the token's scopes); nil outside an audited
// request. Its refusal is an *access.Denied (403).
func allowKeys(r *http.Request, ops []state.Op) error {
	a := attemptOf(r)
	if a == nil || a.tok == nil || !a.tok.Scoped() {
		return nil
	}
	for _, op := range ops {
		if err := access.Allow(a.tok, access.Read, "", true, targetOfKey(op.Key)); err != nil {
			return err
		}
	}
	return nil
}

// targetOfKey is what a state key is about, for the scope check.
func targetOfKey(k string) access.Target {
	switch {
	case strings.HasPrefix(k, state.ConfigPrefix):
		kind, name, _ := strings.Cut(strings.TrimPrefix(k, state.ConfigPrefix), "/")
		if ck, ok := config.ParseKind(kind); ok {
			return access.Target{Kind: ck.Singular(), Name: name}
		}
	case strings.HasPrefix(k, state.ModesPrefix):
		pool, _, _ := strings.Cut(strings.TrimPrefix(k, state.ModesPrefix), "/")
		return access.Target{Kind: "pool", Name: pool}
	case strings.HasPrefix(k, state.PoolModesPrefix):
		return access.Target{Kind: "pool", Name: strings.TrimPrefix(k, state.PoolModesPrefix)}
	case strings.HasPrefix(k, state.PinsPrefix):
		return access.Target{Kind: "domain", Name: strings.TrimPrefix(k, state.PinsPrefix)}
	case strings.HasPrefix(k, state.HoldsPrefix):
		return access.Target{Kind: "domain", Name: strings.TrimPrefix(k, state.HoldsPrefix)}
	}
	return access.Target{}
}
