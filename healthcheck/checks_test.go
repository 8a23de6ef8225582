package healthcheck

import (
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsTarget is a real DNS server on a loopback address: it answers every question with the
// rcode and records it is set to.
type dnsTarget struct {
	mu      sync.Mutex
	rcode   int
	answer  []string // records in zone-file form
	asked   []dns.Question
	addr    string
	udpPort int
}

func newDNSTarget(t *testing.T, ip string) *dnsTarget {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsTarget{addr: ip, udpPort: pc.LocalAddr().(*net.UDPAddr).Port}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.asked = append(d.asked, q.Question...)
		m := new(dns.Msg)
		m.SetRcode(q, d.rcode)
		for _, s := range d.answer {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *dnsTarget) set(rcode int, answer ...string) {
	d.mu.Lock()
	d.rcode, d.answer = rcode, answer
	d.mu.Unlock()
}

func TestParseRcodes(t *testing.T) {
	for in, want := range map[string][]int{
		"NOERROR":              {0},
		"noerror,nxdomain":     {0, 3},
		" SERVFAIL , REFUSED ": {2, 5},
		"0,3,3":                {0, 3},
		"BADCOOKIE":            {23},
	} {
		got, err := ParseRcodes(in)
		if err != nil || !slicesEqual(got, want) {
			t.Errorf("ParseRcodes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "OK", "NOERROR,", "4096", "-1", "NOERROR NXDOMAIN"} {
		if _, err := ParseRcodes(in); err == nil {
			t.Errorf("ParseRcodes(%q) accepted", in)
		}
	}
}

func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		in    string
		name  string
		qtype uint16
		bad   bool
	}{
		{in: "www.example.com", name: "www.example.com.", qtype: dns.TypeA},
		{in: "www.example.com. aaaa", name: "www.example.com.", qtype: dns.TypeAAAA},
		{in: "example.com TXT", name: "example.com.", qtype: dns.TypeTXT},
		{in: "", bad: true},
		{in: "example.com BOGUS", bad: true},
		{in: "example.com A extra", bad: true},
		{in: "bad..name", bad: true},
	} {
		name, qtype, err := ParseQuery(c.in)
		if c.bad != (err != nil) || !c.bad && (name != c.name || qtype != c.qtype) {
			t.Errorf("ParseQuery(%q) = %q, %d, %v", c.in, name, qtype, err)
		}
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A dns check asks the address its question and is up when the rcode is accepted and, with
// answer, some record matches (its whole text or its rdata).
func TestDNSCheck(t *testing.T) {
	srv := newDNSTarget(t, "127.0.61.1")
	base := Template{Protocol: DNS, Port: srv.udpPort, Query: "www.example.com.", Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
	const rr = "www.example.com. 60 IN A 192.0.2.7"
	for _, c := range []struct {
		name   string
		rcode  int
		answer []string
		tmpl   func(*Template)
		want   Result
		msg    string
	}{
		{name: "noerror", rcode: dns.RcodeSuccess, want: ResultOK},
		{name: "servfail", rcode: dns.RcodeServerFailure, want: ResultStatus, msg: "rcode SERVFAIL"},
		{name: "nxdomain accepted", rcode: dns.RcodeNameError, tmpl: func(t *Template) { t.Rcodes = []int{0, 3} }, want: ResultOK},
		{name: "noerror not accepted", rcode: dns.RcodeSuccess, tmpl: func(t *Template) { t.Rcodes = []int{3} }, want: ResultStatus, msg: "rcode NOERROR"},
		{name: "rdata anchored", answer: []string{rr}, tmpl: func(t *Template) { t.Answer = regexp.MustCompile(`^192\.0\.2\.7$`) }, want: ResultOK},
		{name: "whole text", answer: []string{rr}, tmpl: func(t *Template) { t.Answer = regexp.MustCompile(`^www\.example\.com\.\s+60\s+IN\s+A\s`) }, want: ResultOK},
		{name: "second record", answer: []string{"www.example.com. 60 IN A 192.0.2.1", rr}, tmpl: func(t *Template) { t.Answer = regexp.MustCompile(`2\.7$`) }, want: ResultOK},
		{name: "no match", answer: []string{rr}, tmpl: func(t *Template) { t.Answer = regexp.MustCompile(`^192\.0\.2\.8$`) }, want: ResultBody, msg: "no answer record matches"},
		{name: "empty answer", tmpl: func(t *Template) { t.Answer = regexp.MustCompile(`.`) }, want: ResultBody, msg: "0 in the answer section"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv.set(c.rcode, c.answer...)
			tmpl := base
			if c.tmpl != nil {
				c.tmpl(&tmpl)
			}
			res, _, msg := firstVerdict(t, srv.addr, &tmpl)
			if res != c.want || !strings.Contains(msg, c.msg) {
				t.Fatalf("%s: %s (%q); want %s (%q)", c.name, res, msg, c.want, c.msg)
			}
		})
	}
	srv.mu.Lock()
	q := srv.asked[len(srv.asked)-1]
	srv.mu.Unlock()
	if q.Name != "www.example.com." || q.Qtype != dns.TypeA {
		t.Fatalf("asked %v; want www.example.com. A", q)
	}
}

// The question's type is the template's; nothing listening is a refused probe, and a silent
// server a timeout within the probe's timeout.
func TestDNSCheckTypeAndFailures(t *testing.T) {
	srv := newDNSTarget(t, "127.0.61.2")
	srv.set(dns.RcodeSuccess, "example.com. 60 IN TXT \"v=ok\"")
	tmpl := Template{Protocol: DNS, Port: srv.udpPort, Query: "example.com.", QType: dns.TypeTXT, Answer: regexp.MustCompile(`^"v=ok"$`), Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
	if res, _, msg := firstVerdict(t, srv.addr, &tmpl); res != ResultOK {
		t.Fatalf("TXT: %s (%s)", res, msg)
	}
	srv.mu.Lock()
	q := srv.asked[len(srv.asked)-1]
	srv.mu.Unlock()
	if q.Qtype != dns.TypeTXT {
		t.Fatalf("asked type %d; want TXT", q.Qtype)
	}

	closed := Template{Protocol: DNS, Port: 1, Query: "example.com.", Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
	if res, _, msg := firstVerdict(t, "127.0.61.3", &closed); res != ResultRefused {
		t.Fatalf("nothing listening: %s (%s); want refused", res, msg)
	}

	silent, err := net.ListenPacket("udp", "127.0.61.4:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	mute := Template{Protocol: DNS, Port: silent.LocalAddr().(*net.UDPAddr).Port, Query: "example.com.", Interval: time.Minute, Timeout: 300 * time.Millisecond, Fall: 1, Rise: 1}
	res, took, _ := firstVerdict(t, "127.0.61.4", &mute)
	if res != ResultTimeout || took > 2*time.Second {
		t.Fatalf("silent server: %s after %s; want a timeout after about 300ms", res, took)
	}
}

// An http check sends its method and headers; a Host header becomes the request's Host.
func TestHTTPMethodAndHeaders(t *testing.T) {
	type seen struct {
		method, host string
		hdr          http.Header
	}
	got := make(chan seen, 16)
	ln, err := net.Listen("tcp", "127.0.61.5:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.Host, r.Header.Clone()}
		if r.Method == http.MethodPost && r.Header.Get("X-Token") != "s3cret" {
			w.WriteHeader(http.StatusForbidden)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, c := range []struct {
		name    string
		method  string
		headers []Header
		want    Result
		check   func(seen) string
	}{
		{name: "default GET", want: ResultOK, check: func(s seen) string {
			if s.method != "GET" || s.host != "127.0.61.5:"+strconv.Itoa(port) {
				return "want GET to the address"
			}
			return ""
		}},
		{name: "HEAD", method: "HEAD", want: ResultOK, check: func(s seen) string {
			if s.method != "HEAD" {
				return "want HEAD"
			}
			return ""
		}},
		{name: "POST with headers", method: "POST", headers: []Header{{"X-Token", "s3cret"}, {"X-Multi", "a"}, {"X-Multi", "b"}, {"Host", "www.example.test"}, {"user-agent", "probe/1"}}, want: ResultOK, check: func(s seen) string {
			if s.method != "POST" || s.host != "www.example.test" || s.hdr.Get("X-Token") != "s3cret" || strings.Join(s.hdr.Values("X-Multi"), ",") != "a,b" || strings.Join(s.hdr.Values("User-Agent"), ",") != "probe/1" {
				return "want POST, Host www.example.test, X-Token, both X-Multi and only our User-Agent"
			}
			return ""
		}},
		{name: "POST without the token", method: "POST", want: ResultStatus},
	} {
		t.Run(c.name, func(t *testing.T) {
			for len(got) > 0 {
				<-got
			}
			tmpl := Template{Protocol: HTTP, Port: port, Method: c.method, Headers: c.headers, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1}
			res, _, msg := firstVerdict(t, "127.0.61.5", &tmpl)
			if res != c.want {
				t.Fatalf("%s (%s); want %s", res, msg, c.want)
			}
			s := <-got
			if c.check != nil {
				if why := c.check(s); why != "" {
					t.Fatalf("server saw %s Host %q headers %v: %s", s.method, s.host, s.hdr, why)
				}
			}
		})
	}
}

func TestICMPVerdict(t *testing.T) {
	for _, c := range []struct {
		count, recv, loss int
		want              Result
	}{
		{1, 1, 0, ResultOK},
		{1, 0, 0, ResultTimeout},
		{1, 0, 99, ResultTimeout},
		{3, 3, 0, ResultOK},
		{3, 2, 0, ResultTimeout},
		{3, 2, 33, ResultTimeout}, // 33.3% lost is more than 33
		{3, 2, 34, ResultOK},
		{4, 3, 25, ResultOK},
		{4, 2, 25, ResultTimeout},
		{4, 2, 50, ResultOK},
		{5, 6, 0, ResultOK}, // duplicates
		{5, 0, 90, ResultTimeout},
	} {
		res, err := icmpVerdict(c.count, c.recv, c.loss)
		if res != c.want {
			t.Errorf("icmpVerdict(%d, %d, %d) = %s (%v); want %s", c.count, c.recv, c.loss, res, err, c.want)
		}
	}
}

// An icmp check with count N sends N echo requests per probe; as root the test counts them
// on a raw socket bound to the target.
func TestICMPCount(t *testing.T) {
	if !icmpAllowed() {
		t.Skip("not root and net.ipv4.ping_group_range is closed: ICMP probes are not possible here")
	}
	const target = "127.0.61.6"
	requests := make(chan struct{}, 64)
	if os.Geteuid() == 0 {
		c, err := net.ListenPacket("ip4:icmp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				if n > 0 && buf[0] == 8 {
					requests <- struct{}{}
				}
			}
		}()
	}
	res, took, msg := firstVerdict(t, target, &Template{Protocol: ICMP, Count: 4, Loss: 0, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1})
	if res != ResultOK {
		t.Fatalf("4 echo requests to %s: %s (%s)", target, res, msg)
	}
	t.Logf("4 echo replies in %s", took)
	if os.Geteuid() != 0 {
		return
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(requests); n != 4 {
		t.Fatalf("the raw socket saw %d echo requests; want 4", n)
	}
	// A name that does not resolve loses every request, whatever loss allows.
	res, _, _ = firstVerdict(t, "no-such-host.invalid", &Template{Protocol: ICMP, Count: 3, Loss: 90, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1})
	if res == ResultOK {
		t.Fatal("ICMP to an unresolvable name succeeded")
	}
}

// The new settings are part of the identity only when they are set: templates that do not use
// them keep the fingerprint they had.
func TestFingerprintNewSettings(t *testing.T) {
	base := Template{Protocol: HTTP, Interval: time.Second, Timeout: time.Millisecond}
	if strings.Contains(base.Fingerprint(), "method") || base.extra() != "" {
		t.Fatalf("defaults changed the fingerprint: %s", base.Fingerprint())
	}
	get := base
	get.Method = "GET"
	if get.Fingerprint() != base.Fingerprint() {
		t.Fatal("an explicit GET must not change the identity")
	}
	for name, change := range map[string]func(*Template){
		"method": func(t *Template) { t.Method = "HEAD" },
		"header": func(t *Template) { t.Headers = []Header{{"X-A", "1"}} },
	} {
		c := base
		change(&c)
		if c.Fingerprint() == base.Fingerprint() || c.checkKey() == base.checkKey() {
			t.Errorf("changing %s must change the identity and the check", name)
		}
	}
	d := Template{Protocol: DNS, Query: "a.example.", Interval: time.Second, Timeout: time.Millisecond}
	for name, change := range map[string]func(*Template){
		"query":  func(t *Template) { t.Query = "b.example." },
		"type":   func(t *Template) { t.QType = dns.TypeAAAA },
		"rcodes": func(t *Template) { t.Rcodes = []int{0, 3} },
		"answer": func(t *Template) { t.Answer = regexp.MustCompile("x") },
	} {
		c := d
		change(&c)
		if c.Fingerprint() == d.Fingerprint() {
			t.Errorf("changing %s must change the identity", name)
		}
	}
	i := Template{Protocol: ICMP, Interval: time.Second, Timeout: time.Millisecond}
	one := i
	one.Count = 1
	if one.Fingerprint() != i.Fingerprint() {
		t.Fatal("an explicit count 1 must not change the identity")
	}
	three := i
	three.Count = 3
	lossy := i
	lossy.Loss = 10
	if three.Fingerprint() == i.Fingerprint() || lossy.Fingerprint() == i.Fingerprint() {
		t.Fatal("count and loss must change the identity")
	}
}

func TestRequire(t *testing.T) {
	for _, c := range []struct {
		in              string
		checks, passing int
		met, bad        bool
	}{
		{in: "", checks: 2, passing: 2, met: true},
		{in: "", checks: 2, passing: 1},
		{in: "all", checks: 3, passing: 3, met: true},
		{in: "all", checks: 3, passing: 2},
		{in: "any", checks: 3, passing: 1, met: true},
		{in: "any", checks: 3, passing: 0},
		{in: "2", checks: 3, passing: 2, met: true},
		{in: "2", checks: 3, passing: 1},
		{in: "3", checks: 3, passing: 3, met: true},
		{in: "4", checks: 3, bad: true},
		{in: "0", checks: 3, bad: true},
		{in: "-1", checks: 3, bad: true},
		{in: "most", checks: 3, bad: true},
	} {
		r, err := ParseRequire(c.in, c.checks)
		if c.bad != (err != nil) {
			t.Errorf("ParseRequire(%q, %d): %v", c.in, c.checks, err)
			continue
		}
		if !c.bad && r.Met(c.passing, c.checks) != c.met {
			t.Errorf("require %q: %d of %d passing: met = %v", c.in, c.passing, c.checks, !c.met)
		}
	}
}
