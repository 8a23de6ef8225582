package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSign(t *testing.T) {
	// RFC 4231, test case 2.
	const want = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?")); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	body := []byte(`{"kind":"health"}`)
	good := Sign([]byte("s3cret"), body)
	for _, tc := range []struct {
		name   string
		secret string
		body   string
		header string
		want   bool
	}{
		{"right", "s3cret", string(body), good, true},
		{"other secret", "s3cret2", string(body), good, false},
		{"body changed", "s3cret", string(body) + " ", good, false},
		{"no prefix", "s3cret", string(body), strings.TrimPrefix(good, "sha256="), false},
		{"sha1 prefix", "s3cret", string(body), "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"not hex", "s3cret", string(body), "sha256=zz", false},
		{"empty", "s3cret", string(body), "", false},
		{"truncated", "s3cret", string(body), good[:len(good)-2], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify([]byte(tc.secret), []byte(tc.body), tc.header); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	base, limit := 500*time.Millisecond, 4*time.Second
	for _, tc := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{2, 0, time.Second},
		{3, 0, 2 * time.Second},
		{4, 0, 4 * time.Second},
		{5, 0, 4 * time.Second}, // capped
		{40, 0, 4 * time.Second},
		{1, 0.5, 375 * time.Millisecond}, // jitter takes up to half off
		{3, 0.999, 1001 * time.Millisecond},
	} {
		if got := Backoff(tc.attempt, base, limit, tc.r); got != tc.want {
			t.Errorf("Backoff(%d, r=%v) = %v, want %v", tc.attempt, tc.r, got, tc.want)
		}
	}
}

func TestValidURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:9000/hook", true},
		{"https://hooks.example.com/x?token=1", true},
		{"ftp://example.com/", false},
		{"example.com/hook", false},
		{"http:///path", false},
		{"://", false},
	} {
		if err := ValidURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("ValidURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}

// counter is an Observer that counts.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) Delivered(hook, result string) { c.add("delivered:" + result) }
func (c *counter) Dropped(hook, reason string)   { c.add("dropped:" + reason) }
func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}
func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

type received struct {
	kind, delivery, sig, ctype string
	body                       []byte
}

// receiver answers each request with the next status of codes (the last one repeats) and
// sends what it got on a channel.
func receiver(t *testing.T, codes ...int) (*httptest.Server, chan received) {
	ch := make(chan received, 100)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{r.Header.Get(EventHeader), r.Header.Get(DeliveryHeader), r.Header.Get(SignatureHeader), r.Header.Get("Content-Type"), b}
		i := int(n.Add(1)) - 1
		w.WriteHeader(codes[min(i, len(codes)-1)])
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliverySignedAndRetried(t *testing.T) {
	srv, got := receiver(t, 500, 503, 200)
	obs := &counter{}
	secret := []byte("topsecret")
	h, err := New(Config{Name: "1", URL: srv.URL, Secret: secret, Backoff: 10 * time.Millisecond, Attempts: 5, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	h.Start()
	defer h.Stop()
	if !h.Enqueue("health", map[string]any{"kind": "health", "address": "192.0.2.1"}) {
		t.Fatal("Enqueue refused an event on an empty queue")
	}
	var ids []string
	var start time.Time
	var gaps []time.Duration
	for i := 0; i < 3; i++ {
		select {
		case r := <-got:
			if !start.IsZero() {
				gaps = append(gaps, time.Since(start))
			}
			start = time.Now()
			if r.kind != "health" || r.ctype != "application/json" {
				t.Errorf("attempt %d: X-GTM-Event %q, Content-Type %q", i+1, r.kind, r.ctype)
			}
			if !Verify(secret, r.body, r.sig) {
				t.Errorf("attempt %d: signature %q does not verify body %s", i+1, r.sig, r.body)
			}
			var doc map[string]any
			if err := json.Unmarshal(r.body, &doc); err != nil || doc["address"] != "192.0.2.1" {
				t.Errorf("attempt %d: body %s (%v)", i+1, r.body, err)
			}
			ids = append(ids, r.delivery)
		case <-time.After(5 * time.Second):
			t.Fatalf("attempt %d never came", i+1)
		}
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("delivery ids %q: want one non-empty id on every retry", ids)
	}
	// Waits of 10 ms, then 20 ms, less up to half of jitter.
	if gaps[0] < 5*time.Millisecond || gaps[1] < 10*time.Millisecond {
		t.Errorf("retries came after %v: want the backoff waited", gaps)
	}
	waitFor(t, "the delivery to count", func() bool { return h.Status().Delivered == 1 })
	if obs.get("delivered:status") != 2 || obs.get("delivered:ok") != 1 {
		t.Errorf("observed %v, want 2 status and 1 ok", obs.m)
	}
	st := h.Status()
	if st.Dropped != 0 || st.LastDelivery == nil || !strings.Contains(st.LastError, "503") {
		t.Errorf("status %+v: want no drop, a last delivery, the last error naming 503", st)
	}
}

func TestDeliveryGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     int
		attempts int
		reason   string
	}{
		{"server errors exhaust the attempts", 500, 3, DropRetries},
		{"too many requests are retried", 429, 3, DropRetries},
		{"a client error is not retried", 400, 1, DropRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := receiver(t, tc.code)
			obs := &counter{}
			h, _ := New(Config{Name: "x", URL: srv.URL, Backoff: time.Millisecond, Attempts: 3, Observer: obs})
			h.Start()
			defer h.Stop()
			h.Enqueue("pin", map[string]string{"kind": "pin"})
			waitFor(t, "the drop", func() bool { return h.Status().Dropped == 1 })
			if n := len(got); n != tc.attempts {
				t.Errorf("%d requests, want %d", n, tc.attempts)
			}
			if obs.get("dropped:"+tc.reason) != 1 {
				t.Errorf("observed %v, want one drop for %s", obs.m, tc.reason)
			}
		})
	}
}

func TestQueueFullDrops(t *testing.T) {
	obs := &counter{}
	h, _ := New(Config{Name: "q", URL: "http://127.0.0.1:1/", Queue: 3, Observer: obs})
	// Not started: nothing takes events off the queue.
	queued := 0
	for i := 0; i < 10; i++ {
		if h.Enqueue("health", i) {
			queued++
		}
	}
	if queued != 3 || obs.get("dropped:queue_full") != 7 || h.Status().Dropped != 7 || h.Status().Queued != 3 {
		t.Errorf("queued %d, observed %v, status %+v: want 3 queued and 7 dropped", queued, obs.m, h.Status())
	}
	h.Stop()
	if obs.get("dropped:shutdown") != 3 || h.Enqueue("health", 0) {
		t.Errorf("after Stop: observed %v; want the 3 queued dropped and new events refused", obs.m)
	}
}

func TestKinds(t *testing.T) {
	h, _ := New(Config{Name: "k", URL: "http://127.0.0.1:1/", Kinds: []string{"health", "failover"}})
	defer h.Stop()
	for kind, want := range map[string]bool{"health": true, "failover": true, "pin": false, "config": false} {
		if got := h.Enqueue(kind, kind); got != want {
			t.Errorf("Enqueue(%s) = %v, want %v", kind, got, want)
		}
	}
}

// TestStopCancelsInFlight: a receiver that never answers holds a request open; Stop must
// cancel it and leave no goroutine behind, and Enqueue must not wait meanwhile.
func TestStopCancelsInFlight(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices the client leaving only once the body is read
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	before := runtime.NumGoroutine()
	obs := &counter{}
	h, _ := New(Config{Name: "hang", URL: srv.URL, Timeout: time.Minute, Queue: 10, Observer: obs})
	h.Start()
	h.Enqueue("health", 1)
	waitFor(t, "the request to be in flight", func() bool { return len(h.queue) == 0 })
	t0 := time.Now()
	for i := 0; i < 100; i++ {
		h.Enqueue("health", i)
	}
	if d := time.Since(t0); d > 50*time.Millisecond {
		t.Errorf("100 Enqueue calls took %v with a hung receiver", d)
	}
	t0 = time.Now()
	h.Stop()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	h.client.CloseIdleConnections()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if obs.get("dropped:queue_full") != 90 || obs.get("dropped:shutdown") != 11 {
		t.Errorf("observed %v, want 90 queue_full and 11 shutdown (10 queued, 1 in flight)", obs.m)
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	obs := &counter{}
	h, _ := New(Config{Name: "t", URL: srv.URL, Timeout: 50 * time.Millisecond, Attempts: 2, Backoff: time.Millisecond, Observer: obs})
	h.Start()
	defer h.Stop()
	h.Enqueue("config", 1)
	waitFor(t, "the drop", func() bool { return h.Status().Dropped == 1 })
	if obs.get("delivered:timeout") != 2 || !strings.Contains(h.Status().LastError, "no answer within 50ms") {
		t.Errorf("observed %v, last error %q", obs.m, h.Status().LastError)
	}
	if strings.Contains(h.Status().LastError, srv.URL) {
		t.Errorf("last error %q names the URL", h.Status().LastError)
	}
}
