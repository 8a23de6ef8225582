package test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

// TestPutLatencyAudited measures the latency of PUT /api/v1/.../mode (one commit each) with
// and without the audit, on a single node (state FILE; audit FILE fsynced per write) and in
// a fleet (etcd; the record in the write's transaction). It is a measurement, not a check:
// run it with GTM_BENCH=1 (GTM_BENCH_BASE=BINARY adds a binary built from before the audit,
// GTM_BENCH_N the number of writes) and copy the table into docs/BENCHMARKS.md.
func TestPutLatencyAudited(t *testing.T) {
	if os.Getenv("GTM_BENCH") != "1" {
		t.Skip("a measurement: GTM_BENCH=1 runs it")
	}
	n := 300
	fmt.Sscan(os.Getenv("GTM_BENCH_N"), &n)
	bins := [][2]string{{"this", binary(t)}}
	if base := os.Getenv("GTM_BENCH_BASE"); base != "" {
		bins = append([][2]string{{"base", base}}, bins...)
	}
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "bench-token")
	type scenario struct{ name, api, cluster string }
	var rows []string
	for i, b := range bins {
		scenarios := []scenario{
			{"single node, state FILE, audit in memory", "state state.json", ""},
			{"single node, state FILE, audit FILE", "state state.json\n audit audit.log", ""},
			{"fleet (etcd), audit in the write's transaction", "", fmt.Sprintf("cluster {\n endpoint %s\n node n1\n path /bench%d\n }", srv.Endpoint(), i)},
		}
		if b[0] == "base" {
			scenarios = []scenario{
				{"single node, state FILE, no audit", "state state.json", ""},
				{"fleet (etcd), no audit", "", fmt.Sprintf("cluster {\n endpoint %s\n node n1\n path /bench%d\n }", srv.Endpoint(), i)},
			}
		}
		for j, sc := range scenarios {
			wd := filepath.Join(dir, fmt.Sprintf("%d-%d", i, j))
			os.MkdirAll(wd, 0o755)
			apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			conf := writeFile(t, filepath.Join(wd, "Corefile"), fmt.Sprintf(".:%d {\n bind 127.0.0.1\n gtm gtm.example.net {\n api %s {\n token_file %s\n %s\n }\n %s\n pool a {\n address 192.0.2.1\n }\n domain www.gtm.example.net {\n route default a\n }\n }\n}\n",
				freePort(t), apiAddr, token, sc.api, sc.cluster))
			cmd := exec.Command(b[1], "-conf", conf)
			cmd.Dir = wd
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			base := "http://" + apiAddr
			eventually(t, 20*time.Second, func() string {
				code, body := 0, ""
				resp, err := http.Get(base + "/api/v1/status")
				if err != nil {
					return err.Error() + out.String()
				}
				resp.Body.Close()
				if code = resp.StatusCode; code != 401 && code != 200 {
					return body
				}
				return ""
			})
			client := &http.Client{}
			lat := make([]time.Duration, 0, n)
			for k := range n + 20 {
				body := []string{`{"mode":"down"}`, `{"mode":"auto"}`}[k%2]
				t0 := time.Now()
				code, resp := apiCall(t, client, "PUT", base+"/api/v1/pools/a/addresses/192.0.2.1/mode", "bench-token", body)
				d := time.Since(t0)
				if code != 200 {
					t.Fatalf("%s: %d %s", sc.name, code, resp)
				}
				if k >= 20 {
					lat = append(lat, d)
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			slices.Sort(lat)
			p := func(q float64) string {
				return fmt.Sprintf("%.2f", float64(lat[int(q*float64(len(lat)-1))].Microseconds())/1000)
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %d | %s | %s | %s |", b[0], sc.name, n, p(0.5), p(0.9), p(0.99)))
		}
	}
	t.Logf("\n| binary | scenario | writes | p50 (ms) | p90 (ms) | p99 (ms) |\n|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
