package healthcheck

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestParseComparison(t *testing.T) {
	good := map[string]Comparison{
		"< 0.05": {"<", 0.05}, "<0.05": {"<", 0.05}, "<= 1": {"<=", 1}, "> -3": {">", -3},
		">= 1e3": {">=", 1000}, "== 1": {"==", 1}, "!= 0": {"!=", 0}, "  >   2 ": {">", 2},
	}
	for in, want := range good {
		got, err := ParseComparison(in)
		if err != nil || got != want {
			t.Errorf("ParseComparison(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0.05", "=< 1", "< x", "<", "~ 1", "< NaN", "<> 1"} {
		if _, err := ParseComparison(in); err == nil {
			t.Errorf("ParseComparison(%q) accepted", in)
		}
	}
	holds := []struct {
		c    string
		v    float64
		want bool
	}{{"< 1", 0.5, true}, {"< 1", 1, false}, {"<= 1", 1, true}, {"> 1", 1, false}, {">= 1", 1, true},
		{"== 1", 1, true}, {"!= 1", 1, false}, {"!= 1", 2, true}}
	for _, h := range holds {
		c, _ := ParseComparison(h.c)
		if c.Holds(h.v) != h.want {
			t.Errorf("%s holds for %v: got %v", h.c, h.v, !h.want)
		}
	}
	if c, _ := ParseComparison("!= 1"); c.Holds(nanValue()) {
		t.Error("NaN must never meet expect")
	}
}

func nanValue() float64 { var z float64; return z / z }

// fakePrometheus answers /api/v1/query the way Prometheus does (the client library parses
// it): values per address, an error per query, and it counts the queries.
type fakePrometheus struct {
	mu      sync.Mutex
	values  map[string]string // address -> sample value text ("" : no sample)
	labels  bool              // answer shared queries with an address label per sample
	fail    string            // a bad_data error for every query
	queries atomic.Int32
	last    atomic.Value // the last query text
	srv     *httptest.Server
}

func newFakePrometheus(t *testing.T) *fakePrometheus {
	f := &fakePrometheus{values: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePrometheus) set(addr, v string) { f.mu.Lock(); f.values[addr] = v; f.mu.Unlock() }

func (f *fakePrometheus) serve(w http.ResponseWriter, r *http.Request) {
	f.queries.Add(1)
	_ = r.ParseForm()
	q := r.Form.Get("query")
	f.last.Store(q)
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if f.fail != "" {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": f.fail})
		return
	}
	var result []map[string]any
	now := float64(time.Now().UnixMilli()) / 1000
	for addr, v := range f.values {
		if v == "" {
			continue
		}
		if f.labels {
			result = append(result, map[string]any{"metric": map[string]string{"address": addr}, "value": []any{now, v}})
		} else if strings.Contains(q, `"`+addr+`"`) {
			result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{now, v}})
		}
	}
	if result == nil {
		result = []map[string]any{}
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
}

func promTemplate(url, query, expect string) *Template {
	c, err := ParseComparison(expect)
	if err != nil {
		panic(err)
	}
	return &Template{Name: "prom", Protocol: Prometheus, URL: url, PromQL: query, Cmp: c, Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 1, Rise: 1}
}

func TestPrometheusCheck(t *testing.T) {
	f := newFakePrometheus(t)
	f.set("192.0.2.1", "0.01")
	tmpl := promTemplate(f.srv.URL, `err_ratio{address="{{address}}"}`, "< 0.05")
	res, _, errText := firstVerdict(t, "192.0.2.1", tmpl)
	if res != ResultOK || f.last.Load() != `err_ratio{address="192.0.2.1"}` {
		t.Fatalf("a value meeting expect: %s %q (query %v)", res, errText, f.last.Load())
	}
	f.set("192.0.2.1", "0.5")
	if res, _, errText = firstVerdict(t, "192.0.2.1", tmpl); res != ResultValue || !strings.Contains(errText, "0.5 does not meet expect < 0.05") {
		t.Fatalf("a value beyond expect: %s %q", res, errText)
	}
	f.set("192.0.2.1", "NaN")
	if res, _, errText = firstVerdict(t, "192.0.2.1", tmpl); res != ResultQuery || !strings.Contains(errText, "NaN") {
		t.Fatalf("NaN: %s %q", res, errText)
	}
	f.set("192.0.2.1", "")
	if res, _, errText = firstVerdict(t, "192.0.2.1", tmpl); res != ResultQuery || !strings.Contains(errText, "no sample") {
		t.Fatalf("no sample: %s %q", res, errText)
	}
	f.fail = `1:5: parse error: unexpected "}"`
	if res, _, errText = firstVerdict(t, "192.0.2.1", tmpl); res != ResultQuery || !strings.Contains(errText, "bad_data") || !strings.Contains(errText, "parse error") {
		t.Fatalf("a PromQL error: %s %q", res, errText)
	}
	dead := promTemplate("http://127.0.0.1:1", "up", "== 1")
	if res, _, errText = firstVerdict(t, "192.0.2.1", dead); res == ResultOK || !strings.Contains(errText, "prometheus") {
		t.Fatalf("no server: %s %q", res, errText)
	}
}

// A query without {{address}} is asked once per interval for every address, each taking
// the sample with its address label.
func TestPrometheusSharedQuery(t *testing.T) {
	f := newFakePrometheus(t)
	f.labels = true
	addrs := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}
	for _, a := range addrs {
		f.set(a, "1")
	}
	f.set("192.0.2.3", "0")
	tmpl := promTemplate(f.srv.URL, `up{job="web"}`, "== 1")
	tmpl.Interval, tmpl.Timeout = time.Second, 500*time.Millisecond
	r := NewRegistry(Options{})
	t.Cleanup(r.Close)
	targets := map[string]*Target{}
	for _, a := range addrs {
		targets[a] = r.Acquire(a, tmpl)
	}
	other := r.Acquire("192.0.2.9", tmpl) // no sample with its label
	waitFor(t, 5*time.Second, func() bool {
		for _, tg := range targets {
			if !tg.Ready() {
				return false
			}
		}
		return other.Ready()
	}, "every address judged")
	for a, tg := range targets {
		if want := a != "192.0.2.3"; tg.Healthy() != want {
			t.Errorf("%s: healthy %v, want %v (%s)", a, tg.Healthy(), want, tg.Status().LastError)
		}
	}
	if other.Healthy() || !strings.Contains(other.Status().LastError, `no sample with address="192.0.2.9"`) {
		t.Errorf("an address without a sample: %v %q", other.Healthy(), other.Status().LastError)
	}
	// 5 first probes within one interval: one query (the first probes are immediate and
	// share it), at most two if the first finished before a later prober started.
	if n := f.queries.Load(); n > 2 {
		t.Errorf("5 addresses asked %d queries in their first round, want 1 or 2", n)
	}
}

func TestMaxRTT(t *testing.T) {
	if res, _, err := judgeRTT(ResultOK, nil, 30*time.Millisecond, 20*time.Millisecond); res != ResultSlow || !strings.Contains(err.Error(), "slow") || !strings.Contains(err.Error(), "max_rtt 20ms") {
		t.Fatalf("slow: %s %v", res, err)
	}
	if res, _, err := judgeRTT(ResultOK, nil, 10*time.Millisecond, 20*time.Millisecond); res != ResultOK || err != nil {
		t.Fatalf("fast: %s %v", res, err)
	}
	if res, _, _ := judgeRTT(ResultRefused, nil, 30*time.Millisecond, 20*time.Millisecond); res != ResultRefused {
		t.Fatalf("a failure stays what it is: %s", res)
	}
	// A server that answers after 60ms, under a max_rtt of 30ms and then of 500ms.
	var delay atomic.Int64
	delay.Store(int64(60 * time.Millisecond))
	ln, err := net.Listen("tcp", "127.0.41.20:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Duration(delay.Load()))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	slow := &Template{Name: "h", Protocol: HTTP, Port: port, Interval: time.Second, Timeout: 900 * time.Millisecond, MaxRTT: 30 * time.Millisecond}
	if res, _, errText := firstVerdict(t, "127.0.41.20", slow); res != ResultSlow || !strings.Contains(errText, "more than max_rtt 30ms") {
		t.Fatalf("a 60ms server under max_rtt 30ms: %s %q", res, errText)
	}
	slow.MaxRTT = 500 * time.Millisecond
	if res, _, errText := firstVerdict(t, "127.0.41.20", slow); res != ResultOK {
		t.Fatalf("a 60ms server under max_rtt 500ms: %s %q", res, errText)
	}
}

// Probes of an address with a check address go there; the target speaks for the address.
func TestCheckAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.41.31:0")
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
	port := ln.Addr().(*net.TCPAddr).Port
	tmpl := &Template{Name: "tcp", Protocol: TCP, Port: port, Interval: time.Second, Timeout: 500 * time.Millisecond, Fall: 1, Rise: 1}
	// Two registries: in one, the direct prober would start in the verdict of the other
	// (same address, same template name) until its own first probe.
	r, r2 := NewRegistry(Options{}), NewRegistry(Options{})
	t.Cleanup(r.Close)
	t.Cleanup(r2.Close)
	via := r.AcquireVia("127.0.41.30", "127.0.41.31", tmpl)
	direct := r2.Acquire("127.0.41.30", tmpl) // nothing listens on the address itself
	waitFor(t, 5*time.Second, func() bool { return via.Status().Probes > 0 && direct.Status().Probes > 0 }, "both probed")
	if !via.Healthy() || direct.Healthy() {
		t.Fatalf("via check address healthy=%v (%s), direct healthy=%v", via.Healthy(), via.Status().LastError, direct.Healthy())
	}
	if via.Addr() != "127.0.41.30" || via.CheckAddr() != "127.0.41.31" || direct.CheckAddr() != "" || via.Shares(direct) {
		t.Fatalf("addr %s check %s, direct check %q, shared %v", via.Addr(), via.CheckAddr(), direct.CheckAddr(), via.Shares(direct))
	}
	if same := r2.AcquireVia("127.0.41.30", "127.0.41.30", tmpl); !same.Shares(direct) {
		t.Fatal("a check address equal to the address is no check address")
	}
}

func TestPushVerdicts(t *testing.T) {
	var mu sync.Mutex
	var changes []Change
	r := NewRegistry(Options{OnChange: func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() }})
	t.Cleanup(r.Close)
	tmpl := &Template{Name: "deploy", Protocol: Push, Interval: 10 * time.Second, Timeout: time.Second, Fall: 3, Rise: 2}
	tg := r.Acquire("192.0.2.7", tmpl)
	other := r.Acquire("192.0.2.8", tmpl)
	time.Sleep(50 * time.Millisecond)
	if !tg.Healthy() || tg.Ready() {
		t.Fatal("before the first push an address counts healthy, without a verdict")
	}
	now := time.Now()
	if err := r.Push("192.0.2.7", "deploy", Pushed{Healthy: false, Reason: "rolling out v2", At: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool { return tg.Ready() && !tg.Healthy() }, "a pushed down verdict applies at once (no fall)")
	if st := tg.Status(); st.LastResult != ResultPush || !strings.Contains(st.LastError, "rolling out v2") {
		t.Fatalf("status %+v", st)
	}
	if !other.Healthy() || other.Ready() {
		t.Fatal("a push to one address changed another")
	}
	now = time.Now()
	r.Push("192.0.2.7", "deploy", Pushed{Healthy: true, At: now, Expires: now.Add(300 * time.Millisecond)})
	waitFor(t, 2*time.Second, tg.Healthy, "a pushed up verdict applies at once (no rise)")
	waitFor(t, 3*time.Second, func() bool { return !tg.Healthy() }, "the verdict expires after its ttl")
	if st := tg.Status(); !strings.Contains(st.LastError, "expired") {
		t.Fatalf("expired status %+v", st)
	}
	// An older verdict arriving late (a fleet's watch) does not replace a newer one.
	r.Push("192.0.2.7", "deploy", Pushed{Healthy: true, At: now.Add(-time.Minute), Expires: now.Add(time.Hour)})
	time.Sleep(50 * time.Millisecond)
	if tg.Healthy() {
		t.Fatal("an older push replaced a newer one")
	}
	// A prober acquired later (a reload with another interval) starts from the pushed verdict.
	now = time.Now()
	r.Push("192.0.2.7", "deploy", Pushed{Healthy: false, Reason: "drain", At: now, Expires: now.Add(time.Hour)})
	waitFor(t, 2*time.Second, func() bool { return !tg.Healthy() && strings.Contains(tg.Status().LastError, "drain") }, "down again")
	t2 := *tmpl
	t2.Interval = 20 * time.Second
	r.Release(tg)
	later := r.Acquire("192.0.2.7", &t2)
	waitFor(t, 2*time.Second, func() bool { return later.Ready() && !later.Healthy() }, "a new prober takes the pushed verdict")
	if err := r.Push("192.0.2.7", "deploy", Pushed{At: now, Expires: now.Add(48 * time.Hour)}); err == nil {
		t.Fatal("a ttl beyond the bound was accepted")
	}
	if fmt.Sprint(changes) == "" {
		t.Fatal("no change reported")
	}
}

// FuzzParseComparison: any text parses or is refused with an error; what parses prints back
// to something that parses to the same comparison.
func FuzzParseComparison(f *testing.F) {
	for _, s := range []string{"< 0.05", ">=1", "== 1e3", "!= -0", "<", "< NaN", "<= +Inf", "=> 1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseComparison(s)
		if err != nil {
			return
		}
		back, err := ParseComparison(c.String())
		if err != nil || back.Op != c.Op || back.Value != c.Value && !(back.Value != back.Value && c.Value != c.Value) {
			t.Fatalf("%q parsed to %v, which prints as %q and parses to %v, %v", s, c, c.String(), back, err)
		}
	})
}

// FuzzSampleFor: any vector and address give a sample of the vector or an error, never a panic.
func FuzzSampleFor(f *testing.F) {
	f.Add("192.0.2.1", "192.0.2.1", "1", true)
	f.Add("::1", "0:0::1", "NaN", false)
	f.Fuzz(func(t *testing.T, label, addr, value string, perAddress bool) {
		v, _ := strconv.ParseFloat(value, 64)
		vec := model.Vector{{Metric: model.Metric{"address": model.LabelValue(label)}, Value: model.SampleValue(v)}, {Metric: model.Metric{}, Value: 1}}
		for _, n := range []int{0, 1, 2} {
			s, err := sampleFor(vec[:n], addr, perAddress)
			if err == nil && s != vec[0] && s != vec[1] {
				t.Fatal("a sample from nowhere")
			}
		}
	})
}
