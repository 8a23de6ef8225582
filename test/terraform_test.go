package test

// Acceptance tests of terraform-provider-gtm with a real OpenTofu (scripts/tofu.sh builds it
// from source through the Go module proxy) against the built coredns-gtm: the provider
// binary is built with `go build ./cmd/terraform-provider-gtm` and found through a CLI
// config's dev_overrides, exactly as a user runs a local build, so nothing is downloaded.
//
// tofu is driven with os/exec rather than terraform-plugin-testing: the contract is the
// built binary under dev_overrides (the testing framework serves the provider in-process),
// and the 412 race needs a write between `plan -out` and `apply PLAN`, which the framework's
// steps cannot express.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var (
	providerOnce sync.Once
	providerDir  string
	providerErr  error
)

// providerBinary builds ./cmd/terraform-provider-gtm once per test run, as the README says,
// into a directory of its own (the dev_overrides directory).
func providerBinary(t *testing.T) string {
	t.Helper()
	providerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "terraform-provider-gtm")
		if err != nil {
			providerErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "terraform-provider-gtm"), "./cmd/terraform-provider-gtm")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			providerErr = fmt.Errorf("go build ./cmd/terraform-provider-gtm: %v\n%s", err, out)
		}
		providerDir = dir
	})
	if providerErr != nil {
		t.Fatal(providerErr)
	}
	return providerDir
}

// tofuBinary is $GTM_TOFU, else .cache/bin/tofu (scripts/tofu.sh), else tofu on PATH. Without
// one the test is skipped, except under CI=true, where it fails.
func tofuBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GTM_TOFU"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		tofuMissing(t, fmt.Sprintf("GTM_TOFU=%s does not exist (bash scripts/tofu.sh builds it)", p))
	}
	if p, err := filepath.Abs("../.cache/bin/tofu"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("tofu"); err == nil {
		return p
	}
	tofuMissing(t, "no tofu binary: set GTM_TOFU or run bash scripts/tofu.sh")
	return ""
}

// tofuMissing skips the test, or fails it under CI=true: CI must not pass by running nothing.
func tofuMissing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// workspace is a tofu working directory with its CLI config and provider environment.
type workspace struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func newWorkspace(t *testing.T, server, token string) *workspace {
	t.Helper()
	bin := tofuBinary(t)
	prov := providerBinary(t)
	dir := t.TempDir()
	home := t.TempDir()
	cli := writeFile(t, filepath.Join(home, "tofu.rc"), fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.opentofu.org/gtm-dns/gtm" = %q
  }
  direct {}
}
`, prov))
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"TF_CLI_CONFIG_FILE=" + cli,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"GTM_SERVER=" + server,
		"GTM_TOKEN=" + token,
	}
	return &workspace{t: t, bin: bin, dir: dir, env: env}
}

// write replaces the configuration (main.tf).
func (w *workspace) write(hcl string) {
	w.t.Helper()
	writeFile(w.t, filepath.Join(w.dir, "main.tf"), `terraform {
  required_providers {
    gtm = { source = "gtm-dns/gtm" }
  }
}
`+hcl)
}

// run runs tofu with args; it returns the combined output and the exit code.
func (w *workspace) run(args ...string) (string, int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Dir, cmd.Env = w.dir, w.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			w.t.Fatalf("tofu %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
	return out.String(), code
}

// apply applies the configuration and fails the test when it fails.
func (w *workspace) apply() string {
	w.t.Helper()
	out, code := w.run("apply", "-auto-approve", "-input=false", "-no-color")
	if code != 0 {
		w.t.Fatalf("tofu apply: exit %d\n%s", code, out)
	}
	return out
}

// applyFails applies and expects a failure; it returns the output.
func (w *workspace) applyFails() string {
	w.t.Helper()
	out, code := w.run("apply", "-auto-approve", "-input=false", "-no-color")
	if code == 0 {
		w.t.Fatalf("tofu apply succeeded, want a failure:\n%s", out)
	}
	return out
}

// planEmpty checks that a plan finds nothing to change.
func (w *workspace) planEmpty() {
	w.t.Helper()
	out, code := w.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 0 {
		w.t.Fatalf("tofu plan after apply: exit %d (want 0: no changes)\n%s", code, out)
	}
}

// planChanges checks that a plan finds changes and returns its output.
func (w *workspace) planChanges() string {
	w.t.Helper()
	out, code := w.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 2 {
		w.t.Fatalf("tofu plan: exit %d (want 2: changes)\n%s", code, out)
	}
	return out
}

// mustContain checks that out has every want, with runs of white space as one space (tofu
// wraps its diagnostics).
func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	flat := strings.Join(strings.Fields(out), " ")
	for _, w := range want {
		if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
			t.Fatalf("output does not contain %q:\n%s", w, out)
		}
	}
}

// tfAPI is a plain admin API client for the test's own writes (around Terraform).
type tfAPI struct {
	t           *testing.T
	base, token string
}

func (a *tfAPI) do(method, path, body string, hdr ...string) (int, []byte, http.Header) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), resp.Header
}

func (a *tfAPI) must(code int, method, path, body string, hdr ...string) ([]byte, http.Header) {
	a.t.Helper()
	got, b, h := a.do(method, path, body, hdr...)
	if got != code {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, got, code, b)
	}
	return b, h
}

// tfNode is one built coredns-gtm on its own.
type tfNode struct {
	dns *server
	api *tfAPI
	url string
}

const tfToken = "tf-token-8c2e"

// startTFNode runs the built binary with an api (token, state file) and a Corefile-defined
// pool and domain (read-only through the API), and waits until it answers.
func startTFNode(t *testing.T) *tfNode {
	t.Helper()
	dir := t.TempDir()
	dnsPort := freePort(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	token := writeFile(t, filepath.Join(dir, "token"), tfToken+"\n")
	conf := writeFile(t, filepath.Join(dir, "Corefile"), fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    gtm gtm.example.net {
        ttl 30
        pool static {
            address 192.0.2.99
        }
        domain static.gtm.example.net {
            route default static
        }
        api %s {
            token_file %s
            state %s
        }
    }
}
`, dnsPort, apiAddr, token, filepath.Join(dir, "state.json")))
	p := startBinary(t, dir, conf)
	addr := fmt.Sprintf("127.0.0.1:%d", dnsPort)
	n := &tfNode{dns: &server{t: t, udp: addr, tcp: addr}, api: &tfAPI{t: t, base: "http://" + apiAddr, token: tfToken}, url: "http://" + apiAddr}
	eventually(t, 20*time.Second, func() string {
		if got := n.answer(""); got != "" && !strings.HasPrefix(got, "192.0.2.99") {
			return "not answering yet: " + got + "\n" + p.out.String()
		}
		if got := n.answer("static.gtm.example.net"); got != "192.0.2.99" {
			return "not answering yet: " + got + "\n" + p.out.String()
		}
		return ""
	})
	return n
}

// answer is name's A answer (sorted; "" for the empty name means nothing to check) from
// the client subnet (empty: the query's source address), or the rcode / error.
func (n *tfNode) answerFrom(name, subnet string) string {
	m, err := n.dns.exchange(query{name: name, qtype: dns.TypeA, subnet: subnet})
	if err != nil {
		return "error: " + err.Error()
	}
	if m.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[m.Rcode]
	}
	a := answers(m)
	slices.Sort(a)
	return join(a)
}

func (n *tfNode) answer(name string) string {
	if name == "" {
		return ""
	}
	return n.answerFrom(name, "")
}

// answers waits (briefly: a write is in force on the next query) until name answers want.
func (n *tfNode) answers(t *testing.T, name, subnet, want string) {
	t.Helper()
	eventually(t, 3*time.Second, func() string {
		if got := n.answerFrom(name, subnet); got != want {
			return fmt.Sprintf("%s from %q: %q, want %q", name, subnet, got, want)
		}
		return ""
	})
}

// tfCheckTarget accepts connections on 127.0.0.1 (the target of a tcp health check).
func tfCheckTarget(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// tfBase is the configuration the lifecycle test starts from: a template, two pools and a
// domain with a net route (routes by the ECS subnet without a geo database) and a default.
func tfBase(checkPort int, us string) string {
	return fmt.Sprintf(`
resource "gtm_healthcheck" "tcp" {
  name     = "tcp"
  protocol = "tcp"
  port     = %d
  interval = "1s"
}

resource "gtm_pool" "eu" {
  name        = "eu"
  healthcheck = gtm_healthcheck.tcp.name
  addresses {
    address = "127.0.0.1"
  }
  location {
    lat = 50.11
    lon = 8.68
  }
}

resource "gtm_pool" "us" {
  name = "us"
  lb   = "all"
%s
}

resource "gtm_domain" "www" {
  name = "www.gtm.example.net"
  ttl  = 60
  routes {
    selector = "net:10.0.0.0/8"
    pools    = [gtm_pool.eu.name]
  }
  routes {
    selector = "default"
    pools    = [gtm_pool.us.name, gtm_pool.eu.name]
  }
  https {
    alpn = ["h3", "h2"]
  }
}
`, checkPort, us)
}

func addressBlocks(addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "  addresses {\n    address = %q\n  }\n", a)
	}
	return b.String()
}

// TestTerraformLifecycle drives every resource through create, update and destroy with the
// built provider and a real tofu, checking DNS answers after each apply and an empty plan
// after it; then drift after an API write, the 412 race between plan and apply, import,
// a Corefile-defined resource (409, and readable as a data source) and a refused attribute
// (the server's 400 on the attribute).
func TestTerraformLifecycle(t *testing.T) {
	checkPort := tfCheckTarget(t)
	n := startTFNode(t)
	w := newWorkspace(t, n.url, tfToken)

	// Create.
	w.write(tfBase(checkPort, addressBlocks("192.0.2.20", "192.0.2.21")))
	w.apply()
	n.answers(t, "www.gtm.example.net", "", "192.0.2.20 192.0.2.21")
	n.answers(t, "www.gtm.example.net", "10.1.2.0/24", "127.0.0.1")
	w.planEmpty()
	if m := n.dns.ask(query{name: "www.gtm.example.net", qtype: dns.TypeHTTPS}); len(m.Answer) != 1 || !strings.Contains(m.Answer[0].String(), `alpn="h3,h2"`) {
		t.Fatalf("HTTPS answer of the domain's https block: %v", m.Answer)
	}
	body, _ := n.api.must(200, "GET", "/api/v1/config/healthchecks/tcp", "")
	var hc map[string]any
	if err := json.Unmarshal(body, &hc); err != nil || hc["interval"] != "1s" || hc["source"] != "api" || hc["timeout"] != "500ms" {
		t.Fatalf("the template on the server: %v %s", err, body)
	}

	// Update in place: an address changes, the template's interval and the domain's TTL.
	w.write(strings.Replace(strings.Replace(tfBase(checkPort, addressBlocks("192.0.2.20", "192.0.2.30")),
		`interval = "1s"`, `interval = "2s"`, 1), "ttl  = 60", "ttl  = 120", 1))
	out := w.apply()
	mustContain(t, out, "3 changed")
	n.answers(t, "www.gtm.example.net", "", "192.0.2.20 192.0.2.30")
	if m := n.dns.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}); len(m.Answer) == 0 || m.Answer[0].Header().Ttl != 120 {
		t.Fatalf("TTL after the update: %v", m.Answer)
	}
	w.planEmpty()

	// Drift: a write around Terraform shows in the next plan, and apply puts it back.
	_, hdr := n.api.must(200, "GET", "/api/v1/config/pools/us", "")
	n.api.must(200, "PUT", "/api/v1/config/pools/us", `{"lb":"all","addresses":[{"address":"192.0.2.40"}]}`, "If-Match", hdr.Get("ETag"))
	n.answers(t, "www.gtm.example.net", "", "192.0.2.40")
	out = w.planChanges()
	mustContain(t, out, `gtm_pool.us will be updated in-place`, `"192.0.2.40" -> "192.0.2.20"`)
	w.apply()
	n.answers(t, "www.gtm.example.net", "", "192.0.2.20 192.0.2.30")
	w.planEmpty()

	// The 412 race: a change made between plan and apply fails the apply; nothing is overwritten.
	w.write(strings.Replace(tfBase(checkPort, addressBlocks("192.0.2.20", "192.0.2.31")), `interval = "1s"`, `interval = "2s"`, 1))
	if out, code := w.run("plan", "-out=race.plan", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("plan -out: exit %d\n%s", code, out)
	}
	_, hdr = n.api.must(200, "GET", "/api/v1/config/pools/us", "")
	n.api.must(200, "PUT", "/api/v1/config/pools/us", `{"lb":"all","addresses":[{"address":"192.0.2.50"}]}`, "If-Match", hdr.Get("ETag"))
	out, code := w.run("apply", "-input=false", "-no-color", "race.plan")
	if code == 0 {
		t.Fatalf("apply of a plan made before a concurrent change succeeded:\n%s", out)
	}
	mustContain(t, out, "412 Precondition Failed", "If-Match: the resource is not at that version", "Nothing was overwritten")
	n.answers(t, "www.gtm.example.net", "", "192.0.2.50")
	w.planChanges()
	w.apply()
	n.answers(t, "www.gtm.example.net", "", "192.0.2.20 192.0.2.31")
	w.planEmpty()
	base := strings.Replace(tfBase(checkPort, addressBlocks("192.0.2.20", "192.0.2.31")), `interval = "1s"`, `interval = "2s"`, 1)

	// Overrides: drain an address, a whole pool, pin the domain.
	w.write(base + `
resource "gtm_address_mode" "drain" {
  pool    = gtm_pool.us.name
  address = "192.0.2.20"
  mode    = "down"
}
`)
	w.apply()
	n.answers(t, "www.gtm.example.net", "", "192.0.2.31")
	w.planEmpty()
	// An address restored around Terraform is drift.
	n.api.must(200, "PUT", "/api/v1/pools/us/addresses/192.0.2.20/mode", `{"mode":"auto"}`)
	mustContain(t, w.planChanges(), `gtm_address_mode.drain will be updated in-place`, `"auto" -> "down"`)
	w.apply()
	n.answers(t, "www.gtm.example.net", "", "192.0.2.31")

	w.write(base + `
resource "gtm_pool_mode" "us" {
  pool = gtm_pool.us.name
  mode = "down"
}
`)
	w.apply()
	// The address's own override is gone (destroyed: mode auto) and the pool is drained:
	// the route fails over to eu.
	n.answers(t, "www.gtm.example.net", "", "127.0.0.1")
	w.planEmpty()

	w.write(base + `
resource "gtm_pin" "www" {
  domain = gtm_domain.www.name
  pool   = gtm_pool.eu.name
}
`)
	w.apply()
	n.answers(t, "www.gtm.example.net", "", "127.0.0.1")
	n.answers(t, "www.gtm.example.net", "10.9.0.0/16", "127.0.0.1")
	w.planEmpty()
	w.write(base + `
resource "gtm_pin" "www" {
  domain = gtm_domain.www.name
  pool   = gtm_pool.us.name
}
`)
	w.apply()
	n.answers(t, "www.gtm.example.net", "10.9.0.0/16", "192.0.2.20 192.0.2.31")
	w.planEmpty()
	w.write(base)
	w.apply()
	n.answers(t, "www.gtm.example.net", "10.9.0.0/16", "127.0.0.1")
	n.answers(t, "www.gtm.example.net", "", "192.0.2.20 192.0.2.31")

	// Import by name: a pool made through the API comes under Terraform with an empty plan.
	n.api.must(201, "PUT", "/api/v1/config/pools/imp", `{"addresses":[{"address":"192.0.2.60","weight":3}],"min_available":"50%"}`)
	imp := base + `
resource "gtm_pool" "imp" {
  name          = "imp"
  min_available = "50%"
  addresses {
    address = "192.0.2.60"
    weight  = 3
  }
}
`
	w.write(imp)
	if out, code := w.run("import", "-input=false", "-no-color", "gtm_pool.imp", "imp"); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	w.planEmpty()

	// A Corefile-defined resource: readable as a data source, refused (409) as a resource.
	w.write(imp + `
data "gtm_pool" "static" {
  name = "static"
}

data "gtm_status" "now" {}

data "gtm_explain" "eu_client" {
  domain = gtm_domain.www.name
  subnet = "10.1.2.0/24"
}

output "static_source" {
  value = data.gtm_pool.static.source
}

output "static_address" {
  value = jsondecode(data.gtm_pool.static.json).addresses[0].address
}

output "explain_pool" {
  value = data.gtm_explain.eu_client.pool
}

output "explain_answer" {
  value = join(",", data.gtm_explain.eu_client.answer)
}

output "status_pools" {
  value = join(",", sort([for p in data.gtm_status.now.pools : p.name]))
}
`)
	w.apply()
	outs, code := w.run("output", "-json")
	if code != 0 {
		t.Fatalf("output: exit %d\n%s", code, outs)
	}
	var got map[string]struct{ Value any }
	if err := json.Unmarshal([]byte(outs), &got); err != nil {
		t.Fatalf("output -json: %v\n%s", err, outs)
	}
	for k, want := range map[string]string{"static_source": "corefile", "static_address": "192.0.2.99", "explain_pool": "eu",
		"explain_answer": "127.0.0.1", "status_pools": "eu,imp,static,us"} {
		if v := fmt.Sprint(got[k].Value); v != want && (k != "explain_answer" || !strings.Contains(v, want)) {
			t.Errorf("output %s = %q, want %q", k, got[k].Value, want)
		}
	}
	w.write(imp + `
resource "gtm_pool" "static" {
  name = "static"
  addresses {
    address = "192.0.2.98"
  }
}
`)
	out = w.applyFails()
	mustContain(t, out, "409 Conflict", "pool static is defined in the Corefile", "read-only through the API", "data sources")
	n.answers(t, "static.gtm.example.net", "", "192.0.2.99")

	// A refused attribute: the server's 400 message, shown on the attribute.
	w.write(imp + `
resource "gtm_pool" "bad" {
  name = "bad"
  addresses {
    address = "300.1.1.1"
  }
}
`)
	out = w.applyFails()
	mustContain(t, out, "400 Bad Request", `pool bad: address "300.1.1.1": not an IP address or domain name`, `address = "300.1.1.1"`)

	// Destroy: every API resource goes, the Corefile's stay.
	w.write(imp)
	if out, code := w.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	n.answers(t, "www.gtm.example.net", "", "NXDOMAIN")
	n.answers(t, "static.gtm.example.net", "", "192.0.2.99")
	body, _ = n.api.must(200, "GET", "/api/v1/config", "")
	if strings.Contains(strings.ReplaceAll(string(body), " ", ""), `"source":"api"`) {
		t.Fatalf("API resources left after destroy: %s", body)
	}
}

// TestTerraformFleet applies through one node of a fleet (real etcd) and checks that the
// other answers the change, and that a plan made through the other node is empty.
func TestTerraformFleet(t *testing.T) {
	tofuBinary(t)
	providerBinary(t)
	f := newFleet(t, "a:eu", "b:us")
	a, b := f.node("a"), f.node("b")
	w := newWorkspace(t, "http://"+a.api, fleetToken)
	w.write(`
resource "gtm_pool" "p" {
  name = "p"
  addresses {
    address = "192.0.2.71"
  }
}

resource "gtm_domain" "app" {
  name = "app.gtm.example.net"
  routes {
    selector = "default"
    pools    = [gtm_pool.p.name]
  }
}
`)
	w.apply()
	answersOn(t, propagation+time.Second, "app.gtm.example.net", "192.0.2.71", a, b)
	// The same configuration planned through node b finds nothing to change.
	wb := newWorkspace(t, "http://"+b.api, fleetToken)
	wb.dir = w.dir
	wb.planEmpty()
	// A drain through Terraform on a is in force on b.
	w.write(`
resource "gtm_pool" "p" {
  name = "p"
  addresses {
    address = "192.0.2.71"
  }
  addresses {
    address = "192.0.2.72"
  }
  lb = "all"
}

resource "gtm_domain" "app" {
  name = "app.gtm.example.net"
  routes {
    selector = "default"
    pools    = [gtm_pool.p.name]
  }
}

resource "gtm_address_mode" "drain" {
  pool    = gtm_pool.p.name
  address = "192.0.2.71"
  mode    = "down"
}
`)
	w.apply()
	answersOn(t, propagation+time.Second, "app.gtm.example.net", "192.0.2.72", a, b)
	wb.planEmpty()
	if out, code := w.run("destroy", "-auto-approve", "-input=false", "-no-color"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, out)
	}
	answersOn(t, propagation+time.Second, "app.gtm.example.net", "NXDOMAIN", a, b)
}

// TestTerraformExamples validates the registry examples and the README's complete example
// with tofu and the built provider (names, types and blocks as the schemas have them).
func TestTerraformExamples(t *testing.T) {
	root := "../cmd/terraform-provider-gtm/examples"
	// Every resource's and data source's example, with the provider's, in one configuration.
	var all strings.Builder
	files, _ := filepath.Glob(filepath.Join(root, "*", "*", "*.tf"))
	prov, _ := filepath.Glob(filepath.Join(root, "provider", "*.tf"))
	if len(files) < 11 || len(prov) != 1 {
		t.Fatalf("examples: %v %v", files, prov)
	}
	for _, f := range append(prov, files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		all.WriteString("\n")
	}
	// The examples refer to each other's resources; one more pool makes them whole.
	all.WriteString(`resource "gtm_pool" "us" {
  name = "us"
  addresses {
    address = "198.51.100.10"
  }
}
`)
	complete, err := os.ReadFile(filepath.Join(root, "complete", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	ex := readmeHCL(t, "terraform {")
	for name, hcl := range map[string]string{"all": all.String(), "complete": string(complete), "README": ex} {
		t.Run(name, func(t *testing.T) {
			w := newWorkspace(t, "http://127.0.0.1:1", "unused")
			writeFile(t, filepath.Join(w.dir, "main.tf"), hcl)
			if out, code := w.run("validate", "-no-color"); code != 0 {
				t.Fatalf("tofu validate: exit %d\n%s\n%s", code, out, hcl)
			}
		})
	}
}

// readmeHCL is the ```hcl block of the README's provider section that starts with first.
func readmeHCL(t *testing.T, first string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(readme)
	i := strings.Index(sec, "## Terraform / OpenTofu provider")
	if i < 0 {
		t.Fatal("README has no Terraform / OpenTofu provider section")
	}
	sec = sec[i:]
	j := strings.Index(sec, "```hcl\n"+first)
	if j < 0 {
		t.Fatalf("README's provider section has no example starting ```hcl\\n%s", first)
	}
	ex := sec[j+len("```hcl\n"):]
	return ex[:strings.Index(ex, "```")]
}
