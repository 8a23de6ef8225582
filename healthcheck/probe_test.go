package healthcheck

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseExpect(t *testing.T) {
	good := map[string][]CodeRange{
		"200":             {{200, 200}},
		"200-399":         {{200, 399}},
		"200,204":         {{200, 200}, {204, 204}},
		"200-299,304":     {{200, 299}, {304, 304}},
		" 200 , 301-302 ": {{200, 200}, {301, 302}},
	}
	for in, want := range good {
		got, err := ParseExpect(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParseExpect(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "700", "abc", "399-200", "200,", "99", "200-"} {
		if _, err := ParseExpect(in); err == nil {
			t.Errorf("ParseExpect(%q) accepted", in)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := Template{Name: "a", Protocol: HTTP, Path: "/h", Interval: time.Second, Timeout: time.Millisecond, Fall: 3, Rise: 2}
	renamed := base
	renamed.Name = "b"
	if base.Fingerprint() != renamed.Fingerprint() {
		t.Fatal("the name must not change the identity")
	}
	defaults := base
	defaults.Port = 80 // the default for http
	if base.Fingerprint() != defaults.Fingerprint() {
		t.Fatal("an explicit default port must not change the identity")
	}
	for name, change := range map[string]func(*Template){
		"port":     func(t *Template) { t.Port = 8080 },
		"path":     func(t *Template) { t.Path = "/other" },
		"expect":   func(t *Template) { t.Expect = []CodeRange{{200, 200}} },
		"body":     func(t *Template) { t.Body = regexp.MustCompile("ok") },
		"interval": func(t *Template) { t.Interval = 2 * time.Second },
		"fall":     func(t *Template) { t.Fall = 5 },
		"host":     func(t *Template) { t.Host = "x.example" },
		"insecure": func(t *Template) { t.TLSInsecure = true },
	} {
		c := base
		change(&c)
		if c.Fingerprint() == base.Fingerprint() {
			t.Errorf("changing %s must change the identity", name)
		}
	}
}

// selfSigned makes a certificate for www.example.test, as an operator's test backend has.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "www.example.test"},
		DNSNames: []string{"www.example.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestHTTPS(t *testing.T) {
	var sni, host atomic.Value
	ln, err := tls.Listen("tcp", "127.0.41.1:0", &tls.Config{
		Certificates: []tls.Certificate{selfSigned(t)},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni.Store(h.ServerName)
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) })}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// The first verification in the process loads the system's roots, which takes most of a
	// second under -race on a busy machine: the timeout is not what this test is about.
	tmpl := Template{Protocol: HTTPS, Port: port, Host: "www.example.test", Interval: time.Minute, Timeout: 10 * time.Second, Fall: 1, Rise: 1}
	if res, _, msg := firstVerdict(t, "127.0.41.1", &tmpl); res != ResultTLS {
		t.Fatalf("a self-signed certificate must fail verification: %s %s", res, msg)
	}
	tmpl.TLSInsecure = true
	if res, _, msg := firstVerdict(t, "127.0.41.1", &tmpl); res != ResultOK {
		t.Fatalf("tls_insecure: %s %s", res, msg)
	}
	if sni.Load() != "www.example.test" || host.Load() != "www.example.test" {
		t.Fatalf("SNI %v, Host %v; want both www.example.test", sni.Load(), host.Load())
	}
}

// A Host with a port keeps it in the Host header only: SNI and the certificate check use the
// name, so an HTTPS check of a trusted certificate for that name passes.
func TestHTTPSHostWithPort(t *testing.T) {
	cert := selfSigned(t)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	rootCAs = pool
	t.Cleanup(func() { rootCAs = nil })

	var sni, host atomic.Value
	ln, err := tls.Listen("tcp", "127.0.41.12:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni.Store(h.ServerName)
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) })}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	withPort := fmt.Sprintf("www.example.test:%d", port)
	tmpl := Template{Protocol: HTTPS, Port: port, Host: withPort, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
	if res, _, msg := firstVerdict(t, "127.0.41.12", &tmpl); res != ResultOK {
		t.Fatalf("host %s with a certificate for www.example.test: %s %s", withPort, res, msg)
	}
	if sni.Load() != "www.example.test" || host.Load() != withPort {
		t.Fatalf("SNI %v, Host %v; want www.example.test, %s", sni.Load(), host.Load(), withPort)
	}
}

func TestServerName(t *testing.T) {
	for _, tc := range []struct{ addr, host, want string }{
		{"192.0.2.1", "", "192.0.2.1"},
		{"192.0.2.1", "www.example.com", "www.example.com"},
		{"192.0.2.1", "www.example.com:8443", "www.example.com"},
		{"2001:db8::1", "[2001:db8::2]:8443", "2001:db8::2"},
		{"2001:db8::1", "[2001:db8::2]", "2001:db8::2"},
	} {
		if got := serverName(tc.addr, tc.host); got != tc.want {
			t.Errorf("serverName(%q, %q) = %q, want %q", tc.addr, tc.host, got, tc.want)
		}
	}
}

func TestHTTPStatusAndRedirect(t *testing.T) {
	var followed atomic.Int64
	ln, _ := net.Listen("tcp", "127.0.41.2:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/elsewhere":
			followed.Add(1)
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		path   string
		expect []CodeRange
		want   Result
	}{
		{"/moved", nil, ResultOK}, // default 200-399 takes the 302 itself
		{"/moved", []CodeRange{{200, 200}}, ResultStatus},
		{"/fail", nil, ResultStatus},
	} {
		tmpl := Template{Protocol: HTTP, Port: port, Path: tc.path, Expect: tc.expect, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
		if res, _, msg := firstVerdict(t, "127.0.41.2", &tmpl); res != tc.want {
			t.Errorf("%s expect %v: %s (%s), want %s", tc.path, tc.expect, res, msg, tc.want)
		}
	}
	if followed.Load() != 0 {
		t.Fatal("a redirect was followed")
	}
}

func TestTCPRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.41.3:0")
	port := ln.Addr().(*net.TCPAddr).Port
	tmpl := Template{Protocol: TCP, Port: port, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
	if res, _, msg := firstVerdict(t, "127.0.41.3", &tmpl); res != ResultOK {
		t.Fatalf("listening: %s %s", res, msg)
	}
	ln.Close()
	if res, _, _ := firstVerdict(t, "127.0.41.3", &tmpl); res != ResultRefused {
		t.Fatalf("closed port: %s", res)
	}
}

// flappy is an HTTP server whose status the test sets, counting requests.
type flappy struct {
	code atomic.Int32
	hits atomic.Int64
	port int
}

func newFlappy(t *testing.T, ip string) *flappy {
	f := &flappy{}
	f.code.Store(200)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		w.WriteHeader(int(f.code.Load()))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.port = ln.Addr().(*net.TCPAddr).Port
	return f
}

func waitFor(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Rise and fall count consecutive probes; OnChange reports the first verdict and each flip.
func TestRiseFall(t *testing.T) {
	f := newFlappy(t, "127.0.41.4")
	var changes []Change
	var mu sync.Mutex
	r := NewRegistry(Options{OnChange: func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() }})
	defer r.Close()
	tmpl := &Template{Protocol: HTTP, Port: f.port, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Fall: 3, Rise: 2}
	tg := r.Acquire("127.0.41.4", tmpl)
	waitFor(t, 2*time.Second, tg.Ready, "first verdict")
	if !tg.Healthy() {
		t.Fatal("first verdict of a healthy server")
	}
	waitFor(t, 2*time.Second, func() bool { return tg.RTT() > 0 }, "an RTT")

	f.code.Store(500)
	start := f.hits.Load()
	waitFor(t, 3*time.Second, func() bool { return !tg.Healthy() }, "down")
	if n := f.hits.Load() - start; n < 3 {
		t.Fatalf("down after %d failed probes, fall is 3", n)
	}
	f.code.Store(200)
	start = f.hits.Load()
	waitFor(t, 3*time.Second, tg.Healthy, "up again")
	if n := f.hits.Load() - start; n < 2 {
		t.Fatalf("up after %d good probes, rise is 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 3 || !changes[0].First || !changes[0].Healthy || changes[1].Healthy || changes[1].First || !changes[2].Healthy {
		t.Fatalf("changes: %+v", changes)
	}
	if st := tg.Status(); st.Failures < 3 || st.LastResult != ResultOK || st.LastChange.IsZero() {
		t.Fatalf("status: %+v", st)
	}
}

// A new target counts healthy until its first verdict, and a failing first probe decides down
// at once (one probe, not fall probes).
func TestFirstVerdict(t *testing.T) {
	f := newFlappy(t, "127.0.41.5")
	f.code.Store(503)
	r := NewRegistry(Options{})
	defer r.Close()
	tg := r.Acquire("127.0.41.5", &Template{Protocol: HTTP, Port: f.port, Interval: time.Minute, Timeout: time.Second, Fall: 5, Rise: 5})
	if !tg.Healthy() && !tg.Ready() {
		t.Fatal("a new target must count healthy before its first verdict")
	}
	waitFor(t, 2*time.Second, tg.Ready, "first verdict")
	if tg.Healthy() || f.hits.Load() != 1 {
		t.Fatalf("first verdict after %d probes: healthy %v", f.hits.Load(), tg.Healthy())
	}
}

// Equal templates under different names share one prober; the last release stops it.
func TestSharedAndReleased(t *testing.T) {
	f := newFlappy(t, "127.0.41.6")
	r := NewRegistry(Options{})
	defer r.Close()
	a := &Template{Name: "a", Protocol: HTTP, Port: f.port, Interval: 30 * time.Millisecond, Timeout: 20 * time.Millisecond, Fall: 1, Rise: 1}
	b := *a
	b.Name = "b"
	t1, t2 := r.Acquire("127.0.41.6", a), r.Acquire("127.0.41.6", &b)
	if !t1.Shares(t2) || r.Len() != 1 {
		t.Fatalf("not shared: %d targets", r.Len())
	}
	r.Release(t1)
	n := f.hits.Load()
	waitFor(t, time.Second, func() bool { return f.hits.Load() > n+2 }, "still probing with one reference left")
	r.Release(t2)
	time.Sleep(100 * time.Millisecond) // a probe in flight may still land
	n = f.hits.Load()
	time.Sleep(200 * time.Millisecond)
	if m := f.hits.Load(); m != n || r.Len() != 0 {
		t.Fatalf("probing goes on after the last release: %d more hits, %d targets", m-n, r.Len())
	}
}

// Probe metrics and events carry the names of the templates in force: after a rename the new
// name, with two identical templates the most recently acquired one still held.
func TestNamesInForce(t *testing.T) {
	f := newFlappy(t, "127.0.41.10")
	var mu sync.Mutex
	var probed, changed []string // template names reported by OnProbe and OnChange
	r := NewRegistry(Options{
		OnProbe: func(tg *Target, _ Result, _ time.Duration) {
			mu.Lock()
			probed = append(probed, tg.Template().Name)
			mu.Unlock()
		},
		OnChange: func(c Change) { mu.Lock(); changed = append(changed, c.Target.Template().Name); mu.Unlock() },
	})
	defer r.Close()
	lastProbe := func() string { mu.Lock(); defer mu.Unlock(); return probed[len(probed)-1] }
	nextProbe := func() string {
		mu.Lock()
		n := len(probed)
		mu.Unlock()
		waitFor(t, 2*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(probed) > n+1 }, "two more probes")
		return lastProbe()
	}
	old := &Template{Name: "old", Protocol: HTTP, Port: f.port, Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond, Fall: 1, Rise: 1}
	renamed := *old
	renamed.Name = "new"
	twin := *old
	twin.Name = "twin"

	o := r.Acquire("127.0.41.10", old)
	if got := nextProbe(); got != "old" {
		t.Fatalf("probes labelled %q, want old", got)
	}
	// A reload renames the template: the new configuration acquires, then the old releases.
	n := r.Acquire("127.0.41.10", &renamed)
	r.Release(o)
	r.Release(o) // a second release of one reference changes nothing
	if !n.Ready() || r.Len() != 1 {
		t.Fatalf("the renamed template did not keep the prober: ready %v, %d targets", n.Ready(), r.Len())
	}
	if got := nextProbe(); got != "new" {
		t.Fatalf("probes after the rename labelled %q, want new", got)
	}
	if got := n.Names(); fmt.Sprint(got) != "[new]" {
		t.Fatalf("Names() = %v, want [new]", got)
	}
	f.code.Store(500)
	waitFor(t, 2*time.Second, func() bool { return !n.Healthy() }, "down")
	mu.Lock()
	if last := changed[len(changed)-1]; last != "new" {
		t.Fatalf("the down event names template %q, want new", last)
	}
	mu.Unlock()

	// Two identical templates in force: both names are reported; the label follows the
	// most recently acquired one, and the other when that one goes.
	w := r.Acquire("127.0.41.10", &twin)
	if got := w.Names(); fmt.Sprint(got) != "[new twin]" {
		t.Fatalf("Names() = %v, want [new twin]", got)
	}
	if got := nextProbe(); got != "twin" {
		t.Fatalf("probes labelled %q, want twin", got)
	}
	r.Release(w)
	if got := nextProbe(); got != "new" {
		t.Fatalf("probes after twin's release labelled %q, want new", got)
	}
	r.Release(n)
}

func TestNoGoroutineLeak(t *testing.T) {
	f := newFlappy(t, "127.0.41.7")
	closed, _ := net.Listen("tcp", "127.0.41.8:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	r := NewRegistry(Options{})
	defer r.Close()
	base := runtime.NumGoroutine()
	for round := range 50 {
		var tgs []*Target
		for i := range 20 {
			tmpl := &Template{Protocol: HTTP, Port: f.port, Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond, Fall: 1, Rise: 1}
			addr := fmt.Sprintf("127.0.42.%d", i+1)
			if i%2 == 1 {
				tmpl = &Template{Protocol: TCP, Port: closedPort, Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond, Fall: 1, Rise: 1}
				addr = "127.0.41.8"
				tmpl.Path = fmt.Sprint(i) // distinct targets
			}
			tgs = append(tgs, r.Acquire(addr, tmpl))
		}
		if round%10 == 0 {
			time.Sleep(30 * time.Millisecond) // let probes run
		}
		for _, tg := range tgs {
			r.Release(tg)
		}
	}
	waitFor(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base+5 },
		fmt.Sprintf("goroutines back to %d (now %d)", base, runtime.NumGoroutine()))
}

// Targets acquired together spread their second probes over the interval.
func TestJitter(t *testing.T) {
	f := newFlappy(t, "127.0.41.9")
	var mu sync.Mutex
	second := map[*Target]time.Time{}
	count := map[*Target]int{}
	r := NewRegistry(Options{OnProbe: func(tg *Target, _ Result, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if count[tg]++; count[tg] == 2 {
			second[tg] = time.Now()
		}
	}})
	defer r.Close()
	for i := range 50 {
		r.Acquire("127.0.41.9", &Template{Protocol: HTTP, Port: f.port, Path: fmt.Sprint("/", i), Interval: 400 * time.Millisecond, Timeout: 200 * time.Millisecond, Fall: 1, Rise: 1})
	}
	waitFor(t, 3*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(second) == 50 }, "second probes")
	mu.Lock()
	defer mu.Unlock()
	var lo, hi time.Time
	for _, at := range second {
		if lo.IsZero() || at.Before(lo) {
			lo = at
		}
		if at.After(hi) {
			hi = at
		}
	}
	if spread := hi.Sub(lo); spread < 150*time.Millisecond {
		t.Fatalf("second probes of 50 targets within %s: no jitter", spread)
	}
}

// gated is an HTTP server whose answer per path the test sets; requests to a path wait while
// its gate is closed, so the test can look at a target before its first probe ends.
type gated struct {
	mu    sync.Mutex
	codes map[string]int
	gates map[string]chan struct{}
	hits  atomic.Int64
	port  int
}

func newGated(t *testing.T, ip string) *gated {
	g := &gated{codes: map[string]int{}, gates: map[string]chan struct{}{}}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.hits.Add(1)
		g.mu.Lock()
		gate, code := g.gates[r.URL.Path], g.codes[r.URL.Path]
		g.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { g.openAll(); srv.Close() })
	g.port = ln.Addr().(*net.TCPAddr).Port
	return g
}

func (g *gated) set(path string, code int) { g.mu.Lock(); g.codes[path] = code; g.mu.Unlock() }

func (g *gated) close(path string) {
	g.mu.Lock()
	g.gates[path] = make(chan struct{})
	g.mu.Unlock()
}

func (g *gated) open(path string) {
	g.mu.Lock()
	if c := g.gates[path]; c != nil {
		close(c)
		delete(g.gates, path)
	}
	g.mu.Unlock()
}

func (g *gated) openAll() {
	g.mu.Lock()
	for p, c := range g.gates {
		close(c)
		delete(g.gates, p)
	}
	g.mu.Unlock()
}

// A changed template starts its addresses in their old verdict: a dead server does not count
// healthy again because the interval changed, whichever order the reload acquires and
// releases in. With the same check, rise goes on counting; with a changed check of the same
// template name, the first probe decides.
func TestVerdictCarriedOver(t *testing.T) {
	const addr = "127.0.41.11"
	g := newGated(t, addr)
	g.set("/", 503)
	var changes atomic.Int64
	r := NewRegistry(Options{OnChange: func(Change) { changes.Add(1) }})
	defer r.Close()
	tmpl := func(name, path string, iv time.Duration, rise int) *Template {
		return &Template{Name: name, Protocol: HTTP, Port: g.port, Path: path, Interval: iv, Timeout: time.Second, Fall: 3, Rise: rise}
	}
	down := func(tg *Target, what string) {
		t.Helper()
		if !tg.Ready() || tg.Healthy() || tg.Status().Healthy || !tg.Status().Ready {
			t.Fatalf("%s: ready %v healthy %v status %+v; want the old down verdict", what, tg.Ready(), tg.Healthy(), tg.Status())
		}
	}

	old := r.Acquire(addr, tmpl("web", "/", 10*time.Second, 2))
	waitFor(t, 2*time.Second, old.Ready, "first verdict")
	if old.Healthy() {
		t.Fatal("a server answering 503 is healthy")
	}
	// Live predecessor: the new configuration acquires before the old one releases.
	g.close("/")
	g.set("/", 200) // the server recovers, but one good probe is less than rise 2
	hits := g.hits.Load()
	nine := r.Acquire(addr, tmpl("web", "/", 9*time.Second, 2))
	if nine.Shares(old) {
		t.Fatal("a changed interval must make a new prober")
	}
	down(nine, "interval 10s→9s")
	r.Release(old)
	g.open("/")
	waitFor(t, 2*time.Second, func() bool { return nine.Status().Probes > old.Status().Probes }, "the new prober's first probe")
	if nine.Healthy() || g.hits.Load() <= hits {
		t.Fatal("one good probe brought a down address up although rise is 2")
	}

	// Released predecessor: the old configuration releases before the new one acquires.
	g.set("/", 503)
	r.Release(nine)
	eight := r.Acquire(addr, tmpl("renamed", "/", 8*time.Second, 2))
	down(eight, "released, then acquired with interval 8s and another name")

	// The same name with a changed check: the old verdict until the first probe, which
	// then decides alone (rise 5 does not apply to it).
	g.close("/health")
	changed := r.Acquire(addr, tmpl("renamed", "/health", 8*time.Second, 5))
	down(changed, "path changed")
	before := changes.Load()
	g.open("/health")
	waitFor(t, 2*time.Second, changed.Healthy, "the changed check's first probe decides")
	if changes.Load() != before+1 {
		t.Fatalf("%d changes reported for down→up, want 1", changes.Load()-before)
	}

	// Another name and another check: nothing to carry over.
	g.close("/other")
	other := r.Acquire(addr, tmpl("other", "/other", 8*time.Second, 1))
	if other.Ready() || !other.Healthy() {
		t.Fatalf("an unrelated template inherited a verdict: ready %v healthy %v", other.Ready(), other.Healthy())
	}
}

// Released verdicts are kept for a bounded number of probers and a bounded time.
func TestRecentBounded(t *testing.T) {
	r := NewRegistry(Options{})
	tmpl := &Template{Name: "t", Protocol: TCP, Port: 1}
	names := []string{"t"}
	for i := range maxRecent + 10 {
		p := &prober{addr: fmt.Sprintf("10.0.%d.%d", i/256, i%256), tmpl: tmpl}
		p.names.Store(&names)
		p.ready.Store(true)
		r.mu.Lock()
		r.remember(p)
		r.mu.Unlock()
	}
	if len(r.recent) != maxRecent || r.recent[0].addr != "10.0.0.10" {
		t.Fatalf("%d verdicts kept, oldest %s; want %d, oldest 10.0.0.10", len(r.recent), r.recent[0].addr, maxRecent)
	}
	r.expire(time.Now().Add(recentFor + time.Second))
	if len(r.recent) != 0 {
		t.Fatalf("%d verdicts kept after %s", len(r.recent), recentFor)
	}
}
