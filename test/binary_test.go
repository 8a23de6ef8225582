package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds ./cmd/coredns-gtm once per test run, exactly as the README says.
func binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GTM_COREDNS_BINARY"); p != "" {
		return p // a measurement of another build (TestFleetWriteLatency)
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "coredns-gtm-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "coredns-gtm")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/coredns-gtm")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Every broken config makes the binary exit non-zero with an error naming the file and line.
func TestBinaryRejectsBrokenConfigs(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	pool := "    pool a {\n        address 192.0.2.1\n    }\n"
	cases := map[string]struct {
		body string
		want string
	}{
		"unknown directive": {"    colour blue\n", `Corefile:3 - Error during parsing: unknown directive "colour"`},
		"unknown pool":      {pool + "    domain www.gtm.example.net {\n        route default b\n    }\n", `Corefile:7 - Error during parsing: route: unknown pool "b" (pools: a)`},
		"duplicate pool":    {pool + pool, `Corefile:6 - Error during parsing: pool: duplicate name "a"`},
		"bad address":       {"    pool a {\n        address 300.1.1.1\n    }\n", `Corefile:4 - Error during parsing: pool a: address "300.1.1.1"`},
		"bad selector":      {pool + "    domain www.gtm.example.net {\n        route continent:XX a\n    }\n", `Corefile:7 - Error during parsing: route: bad selector term "continent:XX"`},
		"zero weight":       {"    pool a {\n        address 192.0.2.1 weight 0\n    }\n", `Corefile:4 - Error during parsing: pool a: address 192.0.2.1: weight "0"`},
		"timeout>=interval": {"    healthcheck h {\n        protocol http\n        interval 1s\n        timeout 1s\n    }\n", `Corefile:6 - Error during parsing: healthcheck h: timeout 1s must be less than interval 1s`},
		"unknown template":  {"    pool a {\n        address 192.0.2.1\n        healthcheck nope\n    }\n", `Corefile:5 - Error during parsing: pool a: unknown healthcheck "nope"`},
		"missing geoip":     {"    geoip /nonexistent/city.mmdb\n", `Corefile:3 - Error during parsing: geoip: database /nonexistent/city.mmdb does not exist`},
		"state dir missing": {"    api 127.0.0.1:0 {\n        state /nonexistent/dir/state.json\n    }\n", `Corefile:4 - Error during parsing: api: state: state file directory /nonexistent/dir does not exist`},
		"corrupt state":     {"    api 127.0.0.1:0 {\n        state " + writeFile(t, filepath.Join(dir, "bad.json"), "{not json") + "\n    }\n", "Corefile:4 - Error during parsing: api: state: state file " + dir + "/bad.json is corrupt"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			conf := writeFile(t, filepath.Join(dir, "Corefile"), ".:0 {\n  gtm gtm.example.net {\n"+tc.body+"  }\n}\n")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "-conf", conf).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("exit: %v (ctx %v), output:\n%s", err, ctx.Err(), out)
			}
			if !strings.Contains(string(out), conf[:len(conf)-len("Corefile")]+tc.want) {
				t.Fatalf("output does not contain %q:\n%s", tc.want, out)
			}
		})
	}
}

// Configs that are valid but almost certainly not what the operator meant start, with a
// warning naming the file and line.
func TestBinaryWarns(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	conf := writeFile(t, filepath.Join(dir, "Corefile"), fmt.Sprintf(`.:%d {
  bind 127.0.0.1
  gtm gtm.example.net {
    pool a {
      address 192.0.2.1
      address 192.0.2.2 disabled
      min_available 2
    }
    domain www.gtm.example.net {
      route net:10.0.0.0/8 a
      route net:10.0.0.0/8 a
    }
    api 127.0.0.1:%d {
      public_read
    }
  }
}
`, freePort(t), freePort(t)))
	want := []string{
		conf + ":4: pool a has min_available 2 but 1 enabled addresses",
		conf + ":9: domain www.gtm.example.net. has no default route",
		conf + ":11: route in domain www.gtm.example.net. never answers",
		conf + ":13: api 127.0.0.1:",
		"has no token (token_file or token NAME FILE ROLE): reads are open (public_read), every write is refused (401)",
	}
	var out syncBuffer
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	eventually(t, 10*time.Second, func() string {
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				return fmt.Sprintf("no %q in the output:\n%s", w, out.String())
			}
		}
		return ""
	})
}

// TestBinaryExample runs Corefile.example as the README says, in a copy of the repository's
// demo directory, and restarts it to show overrides persist.
func TestBinaryExample(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "demo"), 0o755)
	example, err := os.ReadFile("../Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Corefile.example"), string(example))
	// The committed demo files, as a fresh clone has them.
	for _, f := range []string{"api-token", "geo-city.mmdb", "geo-asn.mmdb"} {
		b, err := os.ReadFile("../demo/" + f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "demo", f), string(b))
	}

	var outs []*syncBuffer
	run := func() func() {
		out := &syncBuffer{}
		outs = append(outs, out)
		cmd := exec.Command(bin, "-conf", "Corefile.example")
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("coredns-gtm did not stop on SIGTERM; output:\n%s", out.String())
			}
		}
		t.Cleanup(stop)
		s := &server{t: t, udp: "127.0.0.1:1053", tcp: "127.0.0.1:1053"}
		eventually(t, 20*time.Second, func() string {
			if _, err := s.exchange(query{name: "www.gtm.example.net", qtype: dns.TypeA}); err != nil {
				return "not answering: " + err.Error() + "\n" + out.String()
			}
			return ""
		})
		return stop
	}
	stop := run()
	s := &server{t: t, udp: "127.0.0.1:1053", tcp: "127.0.0.1:1053"}
	// The demo's pools are checked on the DNS port itself, which may not listen yet at the
	// first probe: allow for one more probe round.
	eventually(t, 15*time.Second, func() string {
		for subnet, want := range map[string]string{"1.0.16.0/24": "127.0.1.", "81.2.69.0/24": "127.0.2.", "8.8.8.0/24": "127.0.3."} {
			got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, subnet: subnet})))
			if !strings.HasPrefix(got, want) {
				return fmt.Sprintf("example from %s: %s, want %s*", subnet, got, want)
			}
		}
		return ""
	})
	eventually(t, 15*time.Second, func() string {
		if got := join(answers(s.ask(query{name: "dr.gtm.example.net", qtype: dns.TypeA}))); !strings.HasPrefix(got, "127.0.2.") {
			return "dr: " + got + ", want the standby pool europe"
		}
		return ""
	})
	if got := answers(s.ask(query{name: "cdn.gtm.example.net", qtype: dns.TypeA})); len(got) != 1 || !strings.HasSuffix(got[0], ".cdn.example.org.") {
		t.Errorf("cdn: %v", got)
	}

	// Pin through the API, restart, and the pin is still in force.
	token, err := os.ReadFile(filepath.Join(dir, "demo/api-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:8053/api/v1/domains/www.gtm.example.net/pin", strings.NewReader(`{"pool":"america"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pin: %v %v", resp, err)
	}
	resp.Body.Close()
	stop()
	run()
	if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA, subnet: "1.0.16.0/24"}))); !strings.HasPrefix(got, "127.0.3.") {
		t.Fatalf("after a restart the pin to america is lost: %s", got)
	}

	// A wrong token is refused, and neither it nor the real one ever reaches the logs.
	wrong := "wrong-token-8c1f2e"
	req, _ = http.NewRequest("PUT", "http://127.0.0.1:8053/api/v1/domains/www.gtm.example.net/pin", strings.NewReader(`{"pool":""}`))
	req.Header.Set("Authorization", "Bearer "+wrong)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", resp.StatusCode)
	}
	for i, out := range outs {
		for _, secret := range []string{strings.TrimSpace(string(token)), wrong} {
			if strings.Contains(out.String(), secret) {
				t.Errorf("run %d logged a token value %q:\n%s", i+1, secret, out.String())
			}
		}
	}
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
