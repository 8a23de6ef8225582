// Command control measures the control layer at scale against the built binary: a generated
// Corefile of DOMAINS domains (two routes each) over POOLS pools of PER addresses, no health
// checks, an api block with token_file and state FILE. It reports the time from start to the
// first answer, RSS, the time from a PUT of one API pool to the answer changing, the PUT's own
// latency, and the time and peak RSS of reloads (SIGUSR1).
//
//	go run ./scripts/scale/control -bin ./coredns-gtm [-domains 10000 -pools 2000 -per 25]
//
// It is a benchmark, not a test: it prints numbers and fails only when something does not
// answer at all.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

var (
	bin     = flag.String("bin", "./coredns-gtm", "the coredns-gtm binary")
	domains = flag.Int("domains", 10000, "domains")
	pools   = flag.Int("pools", 2000, "pools")
	per     = flag.Int("per", 25, "addresses per pool")
	writes  = flag.Int("writes", 20, "API writes to time")
	reloads = flag.Int("reloads", 3, "reloads (SIGUSR1) to time")
	dnsPort = flag.Int("dns-port", 15353, "DNS port on 127.0.0.1")
	apiPort = flag.Int("api-port", 18553, "admin API port on 127.0.0.1")
	keep    = flag.Bool("keep", false, "keep the work directory")
	extra   = flag.String("extra", "", "extra Corefile lines inside the server block (e.g. pprof)")
)

const token = "scale-token"

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("", "gtm-scale-")
	check(err)
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintln(os.Stderr, "work directory:", work)
	}
	check(os.WriteFile(filepath.Join(work, "token"), []byte(token+"\n"), 0o600))
	corefile := filepath.Join(work, "Corefile")
	check(os.WriteFile(corefile, generate(work), 0o644))

	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", *dnsPort), fmt.Sprintf("127.0.0.1:%d", *apiPort)} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			check(fmt.Errorf("%s is taken (another server running?): %v", addr, err))
		}
		l.Close()
	}
	cmd := exec.Command(*bin, "-conf", corefile)
	logs := &logTail{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go logs.read(pr)
	t0 := time.Now()
	check(cmd.Start())
	pid := cmd.Process.Pid
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	first := waitAnswer("d0.scale.test.", "", 60*time.Second, logs)
	firstAnswer := first.Sub(t0)
	waitAnswer(fmt.Sprintf("d%d.scale.test.", *domains-1), "", 10*time.Second, logs)
	time.Sleep(3 * time.Second)
	rss0, hwm0 := mem(pid)
	st0 := status(pid)

	// One API pool and one API domain using it.
	clearPeak(pid)
	put("pools", "api-pool", `{"addresses":[{"address":"198.51.100.1"}]}`)
	put("domains", "api.scale.test", `{"routes":[{"selector":"default","pools":["api-pool"]}]}`)
	waitAnswer("api.scale.test.", "198.51.100.1", 5*time.Second, logs)

	var w2a, lat []time.Duration
	for i := range *writes {
		want := fmt.Sprintf("198.51.100.%d", 2+i%250)
		start := time.Now()
		put("pools", "api-pool", fmt.Sprintf(`{"addresses":[{"address":%q}]}`, want))
		lat = append(lat, time.Since(start))
		waitAnswer("api.scale.test.", want, 10*time.Second, logs)
		w2a = append(w2a, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	rss1, hwm1 := mem(pid)

	type reload struct {
		took      time.Duration
		peak, rss int64
	}
	var rls []reload
	for range *reloads {
		time.Sleep(2 * time.Second)
		before, _ := mem(pid)
		clearPeak(pid)
		n := logs.count("admin API listening on")
		start := time.Now()
		check(cmd.Process.Signal(syscall.SIGUSR1))
		for logs.count("admin API listening on") == n {
			if time.Since(start) > 60*time.Second {
				fail("reload did not finish in 60s", logs)
			}
			time.Sleep(2 * time.Millisecond)
		}
		took := time.Since(start)
		waitAnswer("api.scale.test.", "", 5*time.Second, logs)
		time.Sleep(1 * time.Second)
		rss, peak := mem(pid)
		_ = before
		rls = append(rls, reload{took, peak, rss})
	}

	fmt.Printf("domains %d (2 routes each), pools %d x %d addresses = %d addresses, no health checks\n\n", *domains, *pools, *per, *pools**per)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| start to first answer | %s |\n", ms(firstAnswer))
	fmt.Printf("| RSS after start (VmRSS / VmHWM) | %s / %s |\n", mib(rss0), mib(hwm0))
	fmt.Printf("| ... of which anonymous / file (the binary's pages) | %s / %s |\n", mib(st0["RssAnon:"]), mib(st0["RssFile:"]))
	fmt.Printf("| PUT pool: write to answer, median / p90 / max of %d | %s / %s / %s |\n", len(w2a), ms(pct(w2a, 50)), ms(pct(w2a, 90)), ms(pct(w2a, 100)))
	fmt.Printf("| PUT pool: HTTP latency, median / p90 / max | %s / %s / %s |\n", ms(pct(lat, 50)), ms(pct(lat, 90)), ms(pct(lat, 100)))
	fmt.Printf("| RSS after the writes / peak during them | %s / %s |\n", mib(rss1), mib(hwm1))
	for i, r := range rls {
		fmt.Printf("| reload %d (SIGUSR1 to API serving): time / peak RSS / RSS after | %s / %s / %s |\n", i+1, ms(r.took), mib(r.peak), mib(r.rss))
	}
}

func generate(work string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "scale.test:%d {\n  bind 127.0.0.1\n%s\n  gtm {\n", *dnsPort, *extra)
	fmt.Fprintf(&b, "    api 127.0.0.1:%d {\n      token_file %s\n      state %s\n    }\n", *apiPort, filepath.Join(work, "token"), filepath.Join(work, "state.json"))
	n := 0
	for p := range *pools {
		fmt.Fprintf(&b, "    pool p%d {\n", p)
		for range *per {
			fmt.Fprintf(&b, "      address 10.%d.%d.%d\n", n>>16&255, n>>8&255, n&255)
			n++
		}
		b.WriteString("    }\n")
	}
	for d := range *domains {
		fmt.Fprintf(&b, "    domain d%d.scale.test {\n      route net:192.0.2.0/24 p%d p%d\n      route default p%d\n    }\n", d, d%*pools, (d+1)%*pools, (d+2)%*pools)
	}
	b.WriteString("  }\n}\n")
	return b.Bytes()
}

var client = &dns.Client{Timeout: 500 * time.Millisecond}

// answer returns the first A record of name, or "".
func answer(name string) string {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := client.Exchange(m, fmt.Sprintf("127.0.0.1:%d", *dnsPort))
	if err != nil || r == nil {
		return ""
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// waitAnswer queries name until it answers (want "": any A record) and returns when.
func waitAnswer(name, want string, limit time.Duration, logs *logTail) time.Time {
	deadline := time.Now().Add(limit)
	for {
		got := answer(name)
		if got != "" && (want == "" || got == want) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			fail(fmt.Sprintf("%s: answer %q, want %q", name, got, want), logs)
		}
		time.Sleep(time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func put(kind, name, body string) {
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/api/v1/config/%s/%s", *apiPort, kind, name), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	check(err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		fmt.Fprintf(os.Stderr, "PUT %s/%s: %d %s\n", kind, name, resp.StatusCode, b)
		os.Exit(1)
	}
}

// mem reads VmRSS and VmHWM in KiB.
func mem(pid int) (rss, hwm int64) {
	m := status(pid)
	return m["VmRSS:"], m["VmHWM:"]
}

// status reads the KiB fields of /proc/PID/status.
func status(pid int) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		out[f[0]] = v
	}
	return out
}

// clearPeak resets VmHWM to the current RSS (Linux clear_refs 5).
func clearPeak(pid int) {
	check(os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o200))
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func mib(kib int64) string      { return fmt.Sprintf("%d MiB", kib/1024) }

type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) read(r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, s.Text())
		l.mu.Unlock()
	}
}

func (l *logTail) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func fail(msg string, logs *logTail) {
	logs.mu.Lock()
	tail := logs.lines[max(0, len(logs.lines)-20):]
	logs.mu.Unlock()
	fmt.Fprintf(os.Stderr, "%s\nserver log (last lines):\n%s\n", msg, strings.Join(tail, "\n"))
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
