// Command gtmctl operates coredns-gtm through its admin API: status, explain, drain and
// restore addresses, pin domains, and keep the API-managed configuration in a file (get,
// diff, apply).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/client"
	"github.com/gtm-dns/coredns-gtm/config"
)

const usage = `usage: gtmctl [--server URL] [--token-file FILE] COMMAND [ARGS]

commands:
  status                          domains, pools and addresses with their state
  explain DOMAIN [--type A|AAAA|CNAME] (--subnet CIDR | --client IP)
                                  what that client gets and why
  drain ADDRESS [--pool POOL] [--from WHEN] [--until WHEN]
                                  take an address out (mode down), in POOL or every pool holding it;
                                  --until: back to auto then; --from: a maintenance window starting later
  drain --pool POOL [--from WHEN] [--until WHEN]
                                  drain a whole pool (pool mode down): every address whose own mode is auto
  restore ADDRESS [--pool POOL]   give it back to its health checks (mode auto)
  restore --pool POOL             clear the pool mode
  restore --from-cache FILE       put a node's cache file (cluster { cache FILE }) back into the
                                  fleet's store after etcd lost its data (a new epoch every node takes)
  pin DOMAIN POOL [--from WHEN] [--until WHEN]
                                  answer DOMAIN from POOL only (--until: unpinned then)
  unpin DOMAIN
  failback DOMAIN                 release DOMAIN's failback holds (failback manual or DURATION)
  get [KIND [NAME]]               the configuration in force (KIND: healthchecks, pools, domains)
  diff -f FILE                    what apply -f FILE would change
  apply -f FILE [--dry-run] [--wait [--wait-timeout D]]
                                  make the API resources what FILE says (YAML or JSON, every
                                  document of it; a saved GET /api/v1/config too), in one commit:
                                  all or nothing; --wait: return once every live node applied it
  events [--since N] [--follow]   recent events; --follow keeps polling
  audit [--since N] [--follow] [--json]
                                  the audit log: every write attempt, who made it and how it ended
                                  (the latest; --since N: every record after N; --json: JSON lines)
` + outsideUsage + `
WHEN is an RFC 3339 time (2026-12-01T22:00:00Z) or a duration from now (30m, 2h).
--server defaults to $GTM_SERVER or http://127.0.0.1:8053; the token is read from
--token-file, else taken from $GTM_TOKEN. For an API served with tls: --cacert FILE (the CA
that signed its certificate) and, when it requires client certificates, --cert FILE --key FILE.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv)) }

// cli is one invocation.
type cli struct {
	api  *client.Client // the admin API client shared with terraform-provider-gtm
	out  io.Writer
	wait bool // --wait: writes return once every live node applied them
}

// parse parses flags wherever they stand among the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("gtmctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	server := fs.String("server", "", "admin API URL")
	tokenFile := fs.String("token-file", "", "file holding the bearer token")
	file := fs.String("f", "", "configuration file (diff, apply)")
	dry := fs.Bool("dry-run", false, "apply: print the changes without writing them")
	pool := fs.String("pool", "", "drain, restore: the pool")
	from := fs.String("from", "", "drain, pin: start later, at this RFC 3339 time or after this duration")
	until := fs.String("until", "", "drain, pin: end at this RFC 3339 time or after this duration")
	qtype := fs.String("type", "A", "explain: the query type")
	subnet := fs.String("subnet", "", "explain: the client's ECS subnet")
	clientAddr := fs.String("client", "", "explain: the client's address (no ECS)")
	since := fs.Uint64("since", 0, "events: only events after this id")
	follow := fs.Bool("follow", false, "events: keep polling for new events")
	interval := fs.Duration("interval", time.Second, "events --follow: polling interval")
	cacert := fs.String("cacert", "", "the CA certificate of an API served with tls")
	cert := fs.String("cert", "", "a client certificate, for an API that requires one (with --key)")
	key := fs.String("key", "", "the client certificate's key")
	asJSON := fs.Bool("json", false, "audit: print records as JSON lines (an export)")
	wait := fs.Bool("wait", false, "apply (and any write): return only once every live node applied the change")
	waitTimeout := fs.Duration("wait-timeout", 0, "--wait: how long to wait (default: the server's, 10s)")
	fromCache := fs.String("from-cache", "", "restore: a node's cache file to put back into the fleet's store")
	outside := outsideFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		fs.Usage()
		return 2
	}
	opts, err := tlsOptions(*cacert, *cert, *key)
	if err != nil {
		fmt.Fprintf(stderr, "gtmctl: %v\n", err)
		return 2
	}
	opts.Server, opts.UserAgent = *server, "gtmctl"
	// --wait: every write asks for ?wait=synced (the client also waits that much longer).
	opts.WaitSynced, opts.WaitTimeout = *wait, *waitTimeout
	if opts.Server == "" {
		opts.Server = getenv("GTM_SERVER")
	}
	opts.Token = strings.TrimSpace(getenv("GTM_TOKEN"))
	if *tokenFile != "" {
		if opts.Token, err = client.ReadToken(*tokenFile); err != nil {
			fmt.Fprintf(stderr, "gtmctl: %v\n", err)
			return 1
		}
	}
	api, err := client.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "gtmctl: %v\n", err)
		return 2
	}
	c := &cli{api: api, out: stdout, wait: *wait}
	cmd, rest := pos[0], pos[1:]
	need := func(n int, what string) bool {
		if len(rest) != n {
			fmt.Fprintf(stderr, "gtmctl %s: expected %s\n", cmd, what)
			return false
		}
		return true
	}
	switch cmd {
	case "status":
		if need(0, "no arguments") {
			err = c.status()
		} else {
			return 2
		}
	case "explain":
		if !need(1, "DOMAIN") {
			return 2
		}
		err = c.explain(rest[0], *qtype, *subnet, *clientAddr)
	case "drain", "restore":
		if cmd == "restore" && *fromCache != "" {
			if !need(0, "no ADDRESS with --from-cache FILE") {
				return 2
			}
			err = c.restoreCache(*fromCache)
			break
		}
		win, werr := window(*from, *until, time.Now())
		if werr != nil {
			fmt.Fprintf(stderr, "gtmctl %s: %v\n", cmd, werr)
			return 2
		}
		mode := "down"
		if cmd == "restore" {
			mode = "auto"
		}
		if len(rest) == 0 && *pool != "" {
			err = c.setPoolMode(*pool, mode, win)
			break
		}
		if !need(1, "ADDRESS (or --pool POOL alone for the whole pool)") {
			return 2
		}
		err = c.setMode(rest[0], *pool, mode, win)
	case "pin":
		if !need(2, "DOMAIN POOL") {
			return 2
		}
		win, werr := window(*from, *until, time.Now())
		if werr != nil {
			fmt.Fprintf(stderr, "gtmctl %s: %v\n", cmd, werr)
			return 2
		}
		err = c.pinWindow(rest[0], rest[1], win)
	case "unpin":
		if !need(1, "DOMAIN") {
			return 2
		}
		err = c.pin(rest[0], "")
	case "failback":
		if !need(1, "DOMAIN") {
			return 2
		}
		err = c.failback(rest[0])
	case "get":
		if len(rest) > 2 {
			fmt.Fprintf(stderr, "gtmctl get: expected [KIND [NAME]]\n")
			return 2
		}
		err = c.get(rest)
	case "diff", "apply":
		if *file == "" || !need(0, "-f FILE") {
			fmt.Fprintf(stderr, "gtmctl %s: expected -f FILE\n", cmd)
			return 2
		}
		err = c.apply(*file, cmd == "diff" || *dry)
	case "events":
		err = c.events(*since, *follow, *interval)
	case "audit":
		var from *uint64 // without --since: the latest records
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "since" {
				from = since
			}
		})
		err = c.audit(from, *follow, *asJSON, *interval)
	case "health", "brake":
		code, oerr := c.outside(cmd, rest, outside)
		if code == 2 {
			fmt.Fprintf(stderr, "gtmctl %s: %v\n", cmd, oerr)
			return 2
		}
		err = oerr
	default:
		fmt.Fprintf(stderr, "gtmctl: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "gtmctl: %v\n", err)
		return 1
	}
	return 0
}

// call makes one API request through the shared client; a non-2xx answer is a
// *client.Error with the API's message.
func (c *cli) call(method, path string, body []byte, hdr map[string]string) ([]byte, http.Header, error) {
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	var b any
	if body != nil {
		b = body
	}
	resp, err := c.api.Do(context.Background(), method, path, b, h)
	if err != nil {
		return nil, nil, err
	}
	return resp.Body, resp.Header, nil
}

func (c *cli) getJSON(path string, v any) error {
	b, _, err := c.call("GET", path, nil, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

type statusDoc struct {
	Domains []struct {
		Name, Pinned string
		Routes       []struct {
			Selector, Select, Current string
			Pools                     []string
			FailOpen                  bool `json:"fail_open"`
			Held, Fallback            string
		}
	}
	Pools []struct {
		Name, LB  string
		Available bool
		Up        int
		Addresses []struct {
			Address, Mode         string
			LastError             string `json:"last_error"`
			Up, Healthy, Disabled bool
		}
	}
}

func (c *cli) status() error {
	var s statusDoc
	if err := c.getJSON("/api/v1/status", &s); err != nil {
		return err
	}
	fmt.Fprintln(c.out, "DOMAINS")
	for _, d := range s.Domains {
		pin := ""
		if d.Pinned != "" {
			pin = "  pinned to " + d.Pinned
		}
		fmt.Fprintf(c.out, "  %s%s\n", d.Name, pin)
		for _, r := range d.Routes {
			fo := ""
			if r.FailOpen {
				fo = " (FAIL-OPEN)"
			}
			if r.Fallback != "" && r.Fallback != "open" {
				fo = " (FALLBACK " + strings.ToUpper(r.Fallback) + ")"
			}
			if r.Held != "" {
				fo += " (held on " + r.Held + ": gtmctl failback " + d.Name + ")"
			}
			fmt.Fprintf(c.out, "    route %s -> %s [%s]: now %s%s\n", r.Selector, strings.Join(r.Pools, " "), r.Select, r.Current, fo)
		}
	}
	fmt.Fprintln(c.out, "POOLS")
	for _, p := range s.Pools {
		state := "available"
		if !p.Available {
			state = "UNAVAILABLE"
		}
		fmt.Fprintf(c.out, "  %s  %s  lb %s  %d up\n", p.Name, state, p.LB, p.Up)
		for _, a := range p.Addresses {
			st := "up"
			if !a.Up {
				st = "DOWN"
			}
			extra := ""
			if a.Mode != "auto" {
				extra += " mode " + a.Mode
			}
			if a.Disabled {
				extra += " disabled"
			}
			if !a.Healthy && a.LastError != "" {
				extra += " (" + a.LastError + ")"
			}
			fmt.Fprintf(c.out, "    %-40s %s%s\n", a.Address, st, extra)
		}
	}
	return nil
}

func (c *cli) explain(domain, qtype, subnet, client string) error {
	q := url.Values{"domain": {domain}, "type": {qtype}}
	if subnet != "" {
		q.Set("subnet", subnet)
	}
	if client != "" {
		q.Set("client", client)
	}
	b, _, err := c.call("GET", "/api/v1/explain?"+q.Encode(), nil, nil)
	if err != nil {
		return err
	}
	_, err = c.out.Write(b)
	return err
}

func (c *cli) setMode(addr, pool, mode string, win map[string]string) error {
	pools := []string{pool}
	if pool == "" {
		pools = nil
		var s statusDoc
		if err := c.getJSON("/api/v1/status", &s); err != nil {
			return err
		}
		for _, p := range s.Pools {
			for _, a := range p.Addresses {
				if strings.EqualFold(a.Address, addr) {
					pools = append(pools, p.Name)
				}
			}
		}
		if len(pools) == 0 {
			return fmt.Errorf("no pool has address %q (give --pool POOL)", addr)
		}
	}
	body, _ := json.Marshal(withWindow(map[string]string{"mode": mode}, win))
	for _, p := range pools {
		if _, _, err := c.call("PUT", "/api/v1/pools/"+url.PathEscape(p)+"/addresses/"+url.PathEscape(addr)+"/mode", body, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "pool %s address %s: mode %s%s\n", p, addr, mode, describe(win))
	}
	return nil
}

func (c *cli) pin(domain, pool string) error { return c.pinWindow(domain, pool, nil) }

func (c *cli) pinWindow(domain, pool string, win map[string]string) error {
	body, _ := json.Marshal(withWindow(map[string]string{"pool": pool}, win))
	if _, _, err := c.call("PUT", "/api/v1/domains/"+url.PathEscape(domain)+"/pin", body, nil); err != nil {
		return err
	}
	if pool == "" {
		fmt.Fprintf(c.out, "domain %s unpinned\n", domain)
	} else {
		fmt.Fprintf(c.out, "domain %s pinned to pool %s%s\n", domain, pool, describe(win))
	}
	return nil
}

// setPoolMode sets (or, with auto, clears) the mode of a whole pool.
func (c *cli) setPoolMode(pool, mode string, win map[string]string) error {
	body, _ := json.Marshal(withWindow(map[string]string{"mode": mode}, win))
	if _, _, err := c.call("PUT", "/api/v1/pools/"+url.PathEscape(pool)+"/mode", body, nil); err != nil {
		return err
	}
	if mode == "auto" {
		fmt.Fprintf(c.out, "pool %s: pool mode cleared\n", pool)
	} else {
		fmt.Fprintf(c.out, "pool %s: pool mode %s%s (every address whose own mode is auto)\n", pool, mode, describe(win))
	}
	return nil
}

// window turns --from and --until (RFC 3339, or a duration from now) into the API's
// from/until fields.
func window(from, until string, now time.Time) (map[string]string, error) {
	win := map[string]string{}
	for _, f := range []struct{ name, v string }{{"from", from}, {"until", until}} {
		if f.v == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, f.v); err == nil {
			win[f.name] = t.Format(time.RFC3339Nano)
			continue
		}
		d, err := time.ParseDuration(f.v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--%s %q: expected an RFC 3339 time (2026-12-01T22:00:00Z) or a positive duration from now (30m, 2h)", f.name, f.v)
		}
		win[f.name] = now.Add(d).UTC().Format(time.RFC3339)
	}
	return win, nil
}

func withWindow(body, win map[string]string) map[string]string {
	for k, v := range win {
		body[k] = v
	}
	return body
}

func describe(win map[string]string) string {
	out := ""
	if v, ok := win["from"]; ok {
		out += " from " + v
	}
	if v, ok := win["until"]; ok {
		out += " until " + v
	}
	return out
}

func (c *cli) get(args []string) error {
	path := "/api/v1/config"
	if len(args) == 2 {
		path += "/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1])
	}
	b, _, err := c.call("GET", path, nil, nil)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		if _, ok := config.ParseKind(args[0]); !ok {
			return fmt.Errorf("no such resource kind %q: expected healthchecks, pools or domains", args[0])
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		b = all[args[0]]
	}
	var out bytes.Buffer
	json.Indent(&out, b, "", "  ")
	out.WriteByte('\n')
	_, err = c.out.Write(out.Bytes())
	return err
}

func (c *cli) events(since uint64, follow bool, every time.Duration) error {
	for {
		var doc struct {
			Events []map[string]any
			Last   uint64
		}
		b, _, err := c.call("GET", fmt.Sprintf("/api/v1/events?since=%d", since), nil, nil)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // ids print as --since takes them (1234567), not as floats (1.234567e+06)
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("events: unexpected answer: %v", err)
		}
		for _, e := range doc.Events {
			fmt.Fprintf(c.out, "%v %v %v %v\n", e["id"], e["time"], e["kind"], e["message"])
		}
		if doc.Last > since {
			since = doc.Last
		}
		if !follow {
			return nil
		}
		time.Sleep(every)
	}
}

// change is one write apply makes.
type change struct {
	op         string // create, update, delete
	kind, name string
	body       []byte
	etag       string
	lines      []string
}

// canonical decodes a resource body as the server does and returns its canonical form.
func canonical(kind config.Kind, name string, body []byte, ttl uint32) (map[string]any, []byte, error) {
	r, err := config.Decode(kind, name, body, ttl)
	if err != nil {
		return nil, nil, err
	}
	b, err := config.Encode(r)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	err = json.Unmarshal(b, &m)
	return m, b, err
}

// plan reads FILE and the server's resources and lists the writes that make them equal;
// it returns what FILE wants too (every document of it).
func (c *cli) plan(file string) ([]change, []string, desiredSet, error) {
	want, err := readDesired(file)
	if err != nil {
		return nil, nil, nil, err
	}
	var have map[string]json.RawMessage
	if err := c.getJSON("/api/v1/config", &have); err != nil {
		return nil, nil, nil, err
	}
	var notes []string
	var creates, deletes []change
	for _, kind := range config.Kinds {
		k := string(kind)
		cur := map[string]map[string]any{}
		if b, ok := have[k]; ok {
			json.Unmarshal(b, &cur)
		}
		desired := map[string]map[string]any{}
		for name, body := range want[k] {
			if kind == config.KindDomain {
				fq, ok := config.DomainName(name)
				if !ok {
					return nil, nil, nil, fmt.Errorf("%s: domain %q is not a domain name", file, name)
				}
				name = fq
			}
			desired[name] = body
		}
		for _, name := range sortedKeys(desired) {
			body := desired[name]
			src, _ := body["source"].(string)
			delete(body, "source")
			if now, ok := cur[name]; ok && now["source"] == "corefile" || src == "corefile" {
				if src != "corefile" {
					notes = append(notes, fmt.Sprintf("! %s/%s is defined in the Corefile: left alone", k, name))
				}
				continue
			}
			b, _ := json.Marshal(body)
			if _, ok := cur[name]; !ok {
				// Checked as the server decodes it, sent as written: a field left out takes
				// the server's default (a domain's ttl is the block's, not a placeholder).
				if _, _, err := canonical(kind, name, b, 1); err != nil {
					return nil, nil, nil, fmt.Errorf("%s: %s/%s: %v", file, k, name, err)
				}
				creates = append(creates, change{op: "create", kind: k, name: name, body: b})
				continue
			}
			// The resource's current version and ETag, read together.
			cb, hdr, err := c.call("GET", "/api/v1/config/"+k+"/"+url.PathEscape(name), nil, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			var now map[string]any
			json.Unmarshal(cb, &now)
			delete(now, "source")
			nb, _ := json.Marshal(now)
			ttl := uint32(1)
			if t, ok := now["ttl"].(float64); ok {
				ttl = uint32(t) // a domain without ttl in FILE keeps the one in force
				if _, given := body["ttl"]; !given && kind == config.KindDomain {
					body["ttl"] = now["ttl"] // and so does the whole-configuration write
					b, _ = json.Marshal(body)
				}
			}
			haveC, _, err := canonical(kind, name, nb, ttl)
			if err != nil {
				return nil, nil, nil, err
			}
			wantC, canon, err := canonical(kind, name, b, ttl)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %s/%s: %v", file, k, name, err)
			}
			if lines := fieldDiff(haveC, wantC); len(lines) > 0 {
				creates = append(creates, change{op: "update", kind: k, name: name, body: canon, etag: hdr.Get("ETag"), lines: lines})
			}
		}
		for _, name := range sortedKeys(cur) {
			if _, ok := desired[name]; ok || cur[name]["source"] != "api" {
				continue
			}
			_, hdr, err := c.call("GET", "/api/v1/config/"+k+"/"+url.PathEscape(name), nil, nil)
			if err != nil {
				return nil, nil, nil, err
			}
			deletes = append(deletes, change{op: "delete", kind: k, name: name, etag: hdr.Get("ETag")})
		}
	}
	slices.Reverse(deletes) // domains, then pools, then health checks
	return append(creates, deletes...), notes, want, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fieldDiff lists the top-level fields that differ, as "field: OLD -> NEW".
func fieldDiff(have, want map[string]any) []string {
	keys := map[string]bool{}
	for k := range have {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		a, _ := json.Marshal(have[k])
		b, _ := json.Marshal(want[k])
		if !bytes.Equal(a, b) {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, a, b))
		}
	}
	return out
}

func (c *cli) apply(file string, dry bool) error {
	plan, notes, want, err := c.plan(file)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(c.out, n)
	}
	if len(plan) == 0 {
		fmt.Fprintln(c.out, "no changes")
	}
	sign := map[string]string{"create": "+", "update": "~", "delete": "-"}
	for _, ch := range plan {
		fmt.Fprintf(c.out, "%s %s/%s (%s)\n", sign[ch.op], ch.kind, ch.name, ch.op)
		for _, l := range ch.lines {
			fmt.Fprintf(c.out, "    %s\n", l)
		}
		if ch.op == "create" {
			fmt.Fprintf(c.out, "    %s\n", ch.body)
		}
	}
	if dry {
		return nil
	}
	// Sent even with no difference: a fleet whose store lost its data takes it as the
	// operator's restore (the difference above is against this node's last good state).
	return c.applyAll(want, plan)
}

// failback releases a domain's failback holds: its routes go back to their first
// available pool.
func (c *cli) failback(domain string) error {
	b, _, err := c.call("POST", "/api/v1/domains/"+url.PathEscape(domain)+"/failback", nil, nil)
	if err != nil {
		return err
	}
	var doc struct {
		Domain   string
		Released []string
		Routes   []struct{ Selector, Current, Held string }
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("failback: bad answer: %v", err)
	}
	if len(doc.Released) == 0 {
		fmt.Fprintf(c.out, "domain %s: nothing was held\n", doc.Domain)
	} else {
		fmt.Fprintf(c.out, "domain %s: released the holds of route %s\n", doc.Domain, strings.Join(doc.Released, ", "))
	}
	for _, r := range doc.Routes {
		held := ""
		if r.Held != "" {
			held = " (held again on " + r.Held + ": its better pools are still down)"
		}
		fmt.Fprintf(c.out, "  route %s: now %s%s\n", r.Selector, r.Current, held)
	}
	return nil
}
