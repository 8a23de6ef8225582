package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// auditRec is a record as GET /api/v1/audit and the audit file carry it.
type auditRec struct {
	ID       uint64          `json:"id"`
	Time     time.Time       `json:"time"`
	Token    string          `json:"token"`
	Client   string          `json:"client"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Resource string          `json:"resource"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
	Status   int             `json:"status"`
	Error    string          `json:"error"`
	Node     string          `json:"node"`
}

// apiCall makes one request with an optional bearer token and returns status and body.
func apiCall(t *testing.T, c *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func auditFile(t *testing.T, path string) []auditRec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditRec
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r auditRec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit file line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestAccessBinary runs the built binary with three tokens (an on-call operator, a CI job
// scoped to *.shop, a read-only dashboard): what each may do, 403s naming token and right,
// the audit file (a SIGKILL right after an acknowledged write leaves its record), the audit
// listed after a restart, and no token value in any output.
func TestAccessBinary(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	values := map[string]string{"ops": "ops-6f1d0c9a2b", "ci": "ci-93be71aa04", "dash": "dash-2c7e55d1f8"}
	for n, v := range values {
		writeFile(t, filepath.Join(dir, n), v+"\n")
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dnsPort := freePort(t)
	audit := filepath.Join(dir, "audit.log")
	corefile := fmt.Sprintf(`.:%d {
  bind 127.0.0.1
  prometheus %s
  gtm gtm.example.net {
    api %s {
      token ops ops operate
      token ci ci admin domain:*.shop.gtm.example.net
      token dash dash read
      state state.json
      audit audit.log
    }
    pool a {
      address 192.0.2.1
      address 192.0.2.2
    }
    domain www.gtm.example.net {
      route default a
    }
  }
}
`, dnsPort, metrics, apiAddr)
	conf := writeFile(t, filepath.Join(dir, "Corefile"), corefile)
	var outs []*syncBuffer
	run := func() *exec.Cmd {
		out := &syncBuffer{}
		outs = append(outs, out)
		cmd := exec.Command(bin, "-conf", conf)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		eventually(t, 20*time.Second, func() string {
			resp, err := http.Get("http://" + apiAddr + "/api/v1/status")
			if err != nil {
				return err.Error() + "\n" + out.String()
			}
			resp.Body.Close()
			return ""
		})
		return cmd
	}
	cmd := run()
	base := "http://" + apiAddr
	steps := []struct {
		token, method, path, body string
		code                      int
		err                       string
	}{
		{"dash", "GET", "/api/v1/status", "", 200, ""},
		{"dash", "PUT", "/api/v1/pools/a/addresses/192.0.2.1/mode", `{"mode":"down"}`, 403, "token dash: role read cannot set address modes"},
		{"ops", "PUT", "/api/v1/pools/a/addresses/192.0.2.1/mode", `{"mode":"down"}`, 200, ""},
		{"ops", "PUT", "/api/v1/config/pools/b", `{"addresses":[{"address":"192.0.2.9"}]}`, 403, "token ops: role operate cannot write config"},
		{"ci", "PUT", "/api/v1/config/pools/b", `{"addresses":[{"address":"192.0.2.9"}]}`, 403, "token ci: scope domain:*.shop.gtm.example.net does not cover pool b"},
		{"ci", "PUT", "/api/v1/config/domains/www.shop.gtm.example.net", `{"routes":[{"selector":"default","pools":["a"]}]}`, 201, ""},
		{"ci", "PUT", "/api/v1/config/domains/www.shop.gtm.example.net", `{"routes":[{"selector":"default","pools":["nope"]}]}`, 400, "nope"},
		// A whole-configuration write (gtmctl apply) by a scoped token: allowed when every
		// change is in its scopes, refused naming the first that is not, nothing written.
		{"ci", "PUT", "/api/v1/config", `{"domains":{"www.shop.gtm.example.net":{"routes":[{"selector":"default","pools":["a"]}],"ttl":60}}}`, 200, `"action": "update"`},
		{"ci", "PUT", "/api/v1/config", `{"pools":{"c":{"addresses":[{"address":"192.0.2.7"}]}},"domains":{"www.shop.gtm.example.net":{"routes":[{"selector":"default","pools":["c"]}]}}}`, 403, "token ci: scope domain:*.shop.gtm.example.net does not cover pool c"},
		{"ci", "GET", "/api/v1/config/domains/www.shop.gtm.example.net", "", 200, `"ttl": 60`},
		{"ops", "PUT", "/api/v1/config", `{}`, 403, "token ops: role operate cannot write config"},
		{"ci", "PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"a"}`, 403, "token ci: scope domain:*.shop.gtm.example.net does not cover domain www.gtm.example.net"},
		{"ops", "PUT", "/api/v1/domains/www.shop.gtm.example.net/pin", `{"pool":"a"}`, 200, ""},
	}
	writes := 0
	for _, s := range steps {
		code, body := apiCall(t, nil, s.method, base+s.path, values[s.token], s.body)
		if code != s.code || !strings.Contains(body, s.err) {
			t.Fatalf("%s %s by %s: %d %s, want %d %q", s.method, s.path, s.token, code, body, s.code, s.err)
		}
		if s.method != "GET" {
			writes++
		}
	}
	// An acknowledged write, then SIGKILL at once: its record is in the file.
	code, body := apiCall(t, nil, "PUT", base+"/api/v1/pools/a/addresses/192.0.2.2/mode", values["ops"], `{"mode":"down"}`)
	if code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	writes++
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	recs := auditFile(t, audit)
	if len(recs) != writes {
		t.Fatalf("%d records in the audit file for %d write attempts", len(recs), writes)
	}
	last := recs[len(recs)-1]
	if last.Token != "ops" || last.Path != "/api/v1/pools/a/addresses/192.0.2.2/mode" || last.Status != 200 || string(last.After) != `{"mode":"down"}` || last.Resource != "modes/a/192.0.2.2" {
		t.Fatalf("the last acknowledged write's record: %+v", last)
	}
	for i, r := range recs {
		if r.ID != uint64(i+1) || r.Client == "" || r.Time.IsZero() {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if recs[0].Status != 403 || recs[0].Error != "token dash: role read cannot set address modes" || string(recs[0].Before) != "null" && recs[0].Before != nil {
		t.Errorf("refusal record: %+v", recs[0])
	}

	// Restarted: the API lists the file's records, oldest first, and numbering goes on.
	run()
	code, body = apiCall(t, nil, "PUT", base+"/api/v1/pools/a/addresses/192.0.2.2/mode", values["ops"], `{"mode":"auto"}`)
	if code != 200 {
		t.Fatalf("restore: %d %s", code, body)
	}
	writes++
	code, body = apiCall(t, nil, "GET", base+"/api/v1/audit?since=0", values["dash"], "")
	var doc struct{ Records []auditRec }
	if json.Unmarshal([]byte(body), &doc); code != 200 || len(doc.Records) != writes || doc.Records[writes-1].ID != uint64(writes) {
		t.Fatalf("audit after a restart: %d %s", code, body)
	}
	code, body = apiCall(t, nil, "GET", base+"/api/v1/events", values["dash"], "")
	if code != 200 || !strings.Contains(body, `"token": "ops"`) || !strings.Contains(body, `"token": "ci"`) && len(outs) == 1 {
		t.Errorf("events do not name the tokens: %s", body)
	}
	// No token value in logs, the audit, events, status, the page or metrics.
	var all strings.Builder
	for _, p := range []string{"/api/v1/status", "/api/v1/events", "/api/v1/audit?since=0", "/"} {
		_, b := apiCall(t, nil, "GET", base+p, values["dash"], "")
		all.WriteString(b)
	}
	_, m := apiCall(t, nil, "GET", "http://"+metrics+"/metrics", "", "")
	all.WriteString(m)
	b, _ := os.ReadFile(audit)
	all.Write(b)
	for _, o := range outs {
		all.WriteString(o.String())
	}
	for n, v := range values {
		if strings.Contains(all.String(), v) {
			t.Errorf("the value of token %s appears in an output", n)
		}
	}
}

// TestAuditUnwritable: when the audit cannot be written (a full disk: /dev/full) a write
// fails with 500 and changes nothing.
func TestAuditUnwritable(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatal("no /dev/full to stand for a full disk")
	}
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "full-disk-token")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, fmt.Sprintf(".:0 {\n bind 127.0.0.1\n gtm gtm.example.net {\n api %s {\n token_file %s\n state %s\n audit /dev/full\n }\n pool a {\n address 192.0.2.1\n }\n domain www.gtm.example.net {\n route default a\n }\n }\n}",
		apiAddr, token, filepath.Join(dir, "state.json")))
	base := "http://" + apiAddr
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/pools/a/addresses/192.0.2.1/mode", `{"mode":"down"}`},
		{"PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"a"}`},
		{"PUT", "/api/v1/config/pools/b", `{"addresses":[{"address":"192.0.2.2"}]}`},
		{"PUT", "/api/v1/pools/a/mode", `{"mode":"down"}`},
		{"PUT", "/api/v1/pools/nope/mode", `{"mode":"down"}`}, // refused anyway: still no answer without its record
	} {
		code, body := apiCall(t, nil, w.method, base+w.path, "full-disk-token", w.body)
		if code != 500 || !strings.Contains(body, "no space left on device") {
			t.Errorf("%s %s with a full audit disk: %d %s", w.method, w.path, code, body)
		}
	}
	_, status := apiCall(t, nil, "GET", base+"/api/v1/status", "full-disk-token", "")
	_, cfg := apiCall(t, nil, "GET", base+"/api/v1/config", "full-disk-token", "")
	if strings.Contains(status, `"mode": "down"`) || strings.Contains(status, `"pinned": "a"`) || strings.Contains(cfg, `"b"`) || !strings.Contains(cfg, `"revision": 0`) {
		t.Errorf("a write without its record changed the state:\n%s\n%s", status, cfg)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil && strings.Contains(string(b), "modes/") {
		t.Errorf("state file changed: %s", b)
	}
}
