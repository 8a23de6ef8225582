package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdtest "github.com/coredns/coredns/test"

	gtm "github.com/gtm-dns/coredns-gtm/plugin"
)

func init() { gtm.EnsureDirective() }

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serve starts a real CoreDNS with a gtm block and its admin API; it returns the API URL
// and the token file.
func serve(t *testing.T) (string, string) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("ctl-token\n"), 0o600)
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	inst, _, _, err := cdtest.CoreDNSServerAndPorts(fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
            state %s
        }
        pool core {
            address 192.0.2.1
            address 192.0.2.2
            lb all
        }
        domain www.gtm.example.net {
            route default core
        }
    }
}`, api, token, filepath.Join(dir, "state.json")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.ShutdownCallbacks(); inst.Stop() })
	return "http://" + api, token
}

func ctl(t *testing.T, server, token string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"--server", server, "--token-file", token}, args...), &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), code
}

func must(t *testing.T, server, token string, args ...string) string {
	t.Helper()
	out, errs, code := ctl(t, server, token, args...)
	if code != 0 {
		t.Fatalf("gtmctl %v: exit %d: %s", args, code, errs)
	}
	return out
}

const desired = `healthchecks:
  tcp80: {protocol: tcp, port: 80, interval: 5s, timeout: 1s}
pools:
  eu:
    addresses: [{address: 198.51.100.1}, {address: 198.51.100.2, weight: 2}]
    lb: weighted
  us:
    addresses: [{address: 203.0.113.1}]
domains:
  api.gtm.example.net:
    ttl: 60
    routes: [{selector: default, pools: [eu, us]}]
`

func TestApplyDiffDryRun(t *testing.T) {
	server, token := serve(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "gtm.yaml")
	os.WriteFile(f, []byte(desired), 0o600)

	out := must(t, server, token, "diff", "-f", f)
	for _, want := range []string{"+ healthchecks/tcp80 (create)", "+ pools/eu (create)", "+ pools/us (create)", "+ domains/api.gtm.example.net. (create)"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	must(t, server, token, "apply", "-f", f, "--dry-run")
	if got := must(t, server, token, "get", "pools"); strings.Contains(got, `"eu"`) {
		t.Fatalf("--dry-run wrote: %s", got)
	}
	out = must(t, server, token, "apply", "-f", f)
	if !strings.Contains(out, "applied 4 changes") {
		t.Errorf("apply: %s", out)
	}
	if got := must(t, server, token, "get", "pools", "eu"); !strings.Contains(got, "198.51.100.2") || !strings.Contains(got, `"source": "api"`) {
		t.Errorf("get pools eu: %s", got)
	}
	// Applied again: nothing to do.
	if out := must(t, server, token, "apply", "-f", f); !strings.Contains(out, "no changes") {
		t.Errorf("second apply: %s", out)
	}
	// The output of get applies as a no-op too (Corefile resources left alone).
	all := filepath.Join(dir, "all.json")
	os.WriteFile(all, []byte(must(t, server, token, "get")), 0o600)
	if out := must(t, server, token, "diff", "-f", all); !strings.Contains(out, "no changes") {
		t.Errorf("diff of get's output: %s", out)
	}
	// A change and a removal: update the pool, delete the health check and us in order.
	changed := strings.Replace(desired, "weight: 2", "weight: 5", 1)
	changed = strings.Replace(changed, "healthchecks:\n  tcp80: {protocol: tcp, port: 80, interval: 5s, timeout: 1s}\n", "", 1)
	changed = strings.Replace(changed, "  us:\n    addresses: [{address: 203.0.113.1}]\n", "", 1)
	changed = strings.Replace(changed, "[eu, us]", "[eu]", 1)
	os.WriteFile(f, []byte(changed), 0o600)
	out = must(t, server, token, "apply", "-f", f)
	for _, want := range []string{"~ pools/eu (update)", `"weight":2`, `"weight":5`, "~ domains/api.gtm.example.net. (update)", "- pools/us (delete)", "- healthchecks/tcp80 (delete)", "applied 4 changes"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply of the change lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "~ domains/") > strings.Index(out, "- pools/us") {
		t.Errorf("the domain must stop using us before us is deleted:\n%s", out)
	}
	if got := must(t, server, token, "get", "pools"); strings.Contains(got, `"us"`) || !strings.Contains(got, `"core"`) {
		t.Errorf("after apply: %s", got)
	}
	// An invalid file: the API's error, non-zero exit, nothing written.
	os.WriteFile(f, []byte("pools:\n  bad:\n    addresses: [{address: 300.1.1.1}]\n"), 0o600)
	if _, errs, code := ctl(t, server, token, "apply", "-f", f); code == 0 || !strings.Contains(errs, "300.1.1.1") {
		t.Errorf("invalid apply: exit %d: %s", code, errs)
	}
}

func TestOperate(t *testing.T) {
	server, token := serve(t)
	if out := must(t, server, token, "drain", "192.0.2.1"); !strings.Contains(out, "pool core address 192.0.2.1: mode down") {
		t.Errorf("drain: %s", out)
	}
	out := must(t, server, token, "explain", "www.gtm.example.net", "--client", "127.0.0.1")
	if !strings.Contains(out, `"chosen": [`) || strings.Contains(out, `"answer": [
    "192.0.2.1"`) || !strings.Contains(out, "mode down") {
		t.Errorf("explain after drain: %s", out)
	}
	if out := must(t, server, token, "status"); !strings.Contains(out, "192.0.2.1") || !strings.Contains(out, "DOWN mode down") {
		t.Errorf("status: %s", out)
	}
	must(t, server, token, "restore", "192.0.2.1", "--pool", "core")
	if out := must(t, server, token, "status"); strings.Contains(out, "DOWN") {
		t.Errorf("status after restore: %s", out)
	}
	if out := must(t, server, token, "pin", "www.gtm.example.net", "core"); !strings.Contains(out, "pinned to pool core") {
		t.Errorf("pin: %s", out)
	}
	if out := must(t, server, token, "explain", "www.gtm.example.net", "--client", "127.0.0.1"); !strings.Contains(out, `"pinned": "core"`) {
		t.Errorf("explain pinned: %s", out)
	}
	must(t, server, token, "unpin", "www.gtm.example.net")
	if out := must(t, server, token, "events"); !strings.Contains(out, "unpinned") || !strings.Contains(out, "mode down") {
		t.Errorf("events: %s", out)
	}
	// Failures: the API's message and a non-zero exit.
	if _, errs, code := ctl(t, server, token, "pin", "www.gtm.example.net", "nope"); code != 1 || !strings.Contains(errs, `no pool \"nope\"`) && !strings.Contains(errs, `no pool "nope"`) {
		t.Errorf("pin to a missing pool: exit %d: %s", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	if _, errs, code := ctl(t, server, bad, "status"); code != 1 || !strings.Contains(errs, "401") || !strings.Contains(errs, "missing or wrong bearer token") {
		t.Errorf("wrong token: exit %d: %s", code, errs)
	}
}

// TestBinary runs the built gtmctl: environment variables and the exit status.
func TestBinary(t *testing.T) {
	server, token := serve(t)
	bin := filepath.Join(t.TempDir(), "gtmctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tok, _ := os.ReadFile(token)
	cmd := exec.Command(bin, "get", "domains")
	cmd.Env = append(os.Environ(), "GTM_SERVER="+server, "GTM_TOKEN="+strings.TrimSpace(string(tok)))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "www.gtm.example.net.") {
		t.Errorf("gtmctl get domains: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "drain", "192.0.2.9", "--pool", "core")
	cmd.Env = append(os.Environ(), "GTM_SERVER="+server, "GTM_TOKEN="+strings.TrimSpace(string(tok)))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "404") || !strings.Contains(string(out), "has no address") {
		t.Errorf("drain of a missing address: %v\n%s", err, out)
	}
}
