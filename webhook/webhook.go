// Package webhook delivers events to HTTP receivers: one queue and one delivery goroutine per
// receiver, each request signed with HMAC-SHA256 of its body, retried with exponential
// backoff and jitter, and dropped (and counted) when the queue is full or the retries are
// spent. Enqueue never blocks, so a slow or dead receiver cannot delay its caller.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Headers of a delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the exact body bytes,
	// keyed with the secret (GitHub's X-Hub-Signature-256 format).
	SignatureHeader = "X-GTM-Signature"
	// EventHeader carries the event's kind.
	EventHeader = "X-GTM-Event"
	// DeliveryHeader carries an id unique to the delivery, the same on every retry of it.
	DeliveryHeader = "X-GTM-Delivery"
)

// Defaults of Config.
const (
	DefaultQueue    = 1000
	DefaultAttempts = 6
	DefaultTimeout  = 5 * time.Second
	DefaultBackoff  = 500 * time.Millisecond
	DefaultMaxWait  = 30 * time.Second
)

// Results label deliveries (one per attempt).
const (
	ResultOK      = "ok"      // a 2xx answer
	ResultStatus  = "status"  // any other answer
	ResultTimeout = "timeout" // no answer within the per-request timeout
	ResultError   = "error"   // the connection failed (refused, reset, TLS, DNS)
)

// Reasons label drops.
const (
	DropQueueFull = "queue_full" // the queue held Queue events already
	DropRetries   = "retries"    // Attempts attempts failed
	DropRejected  = "rejected"   // the receiver answered 4xx other than 408 and 429: no retry
	DropShutdown  = "shutdown"   // still queued when the hook stopped
)

// Observer counts what a hook does; its methods must not block.
type Observer interface {
	Delivered(hook, result string)
	Dropped(hook, reason string)
}

// Config describes one receiver.
type Config struct {
	Name     string        // labels metrics and status; never the URL, which may hold a token
	URL      string        // http or https
	Secret   []byte        // HMAC key; nil: requests are not signed
	Kinds    []string      // event kinds to deliver; empty: all
	Queue    int           // events waiting at most (DefaultQueue)
	Attempts int           // tries per event before it is dropped (DefaultAttempts)
	Timeout  time.Duration // per request (DefaultTimeout)
	Backoff  time.Duration // wait after the first failure, doubled after each (DefaultBackoff)
	MaxWait  time.Duration // cap of the wait (DefaultMaxWait)
	Observer Observer
	Client   *http.Client // nil: one of the hook's own, following no redirects
}

// ValidURL checks that s is an absolute http or https URL with a host.
func ValidURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("bad URL %q: expected http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("bad URL %q: no host", s)
	}
	return nil
}

// Sign returns the signature header value of body: "sha256=" + hex HMAC-SHA256(secret, body).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature with secret, in constant time.
func Verify(secret, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Status is what a hook reports about itself.
type Status struct {
	Name          string     `json:"name"`
	Queued        int        `json:"queued"`
	Delivered     uint64     `json:"delivered"`
	Dropped       uint64     `json:"dropped"`
	LastDelivery  *time.Time `json:"last_delivery,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorTime *time.Time `json:"last_error_time,omitempty"`
}

type item struct {
	kind    string
	payload any
}

// Hook is one receiver's queue and delivery goroutine.
type Hook struct {
	cfg    Config
	kinds  map[string]bool
	queue  chan item
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	start  sync.Once
	stop   sync.Once

	launched atomic.Bool

	delivered, dropped atomic.Uint64
	mu                 sync.Mutex // guards the last* fields
	lastDelivery       time.Time
	lastError          string
	lastErrorTime      time.Time
}

// New makes a hook; Start starts its goroutine.
func New(cfg Config) (*Hook, error) {
	if err := ValidURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	h := &Hook{cfg: cfg, queue: make(chan item, cfg.Queue), done: make(chan struct{})}
	if len(cfg.Kinds) > 0 {
		h.kinds = map[string]bool{}
		for _, k := range cfg.Kinds {
			h.kinds[k] = true
		}
	}
	h.client = cfg.Client
	if h.client == nil {
		h.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   cfg.Timeout,
				ResponseHeaderTimeout: cfg.Timeout,
				MaxIdleConns:          2,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       90 * time.Second,
			},
			// A receiver answers; a redirect is not an answer, and following one would
			// send the signed body somewhere not configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// Name is the hook's name.
func (h *Hook) Name() string { return h.cfg.Name }

// Wants reports whether the hook delivers events of kind.
func (h *Hook) Wants(kind string) bool { return h.kinds == nil || h.kinds[kind] }

// Enqueue queues payload (JSON-encoded when delivered) as an event of kind, unless the hook
// does not want the kind. It never blocks: with the queue full the event is dropped and
// counted. It reports whether the event was queued.
func (h *Hook) Enqueue(kind string, payload any) bool {
	if !h.Wants(kind) {
		return false
	}
	select {
	case <-h.ctx.Done():
		h.drop(DropShutdown)
		return false
	default:
	}
	select {
	case h.queue <- item{kind, payload}:
		return true
	default:
		h.drop(DropQueueFull)
		return false
	}
}

// Start starts the delivery goroutine (once).
func (h *Hook) Start() {
	h.start.Do(func() {
		h.launched.Store(true)
		go h.run()
	})
}

// Stop cancels the request in flight, drops what is queued and waits for the goroutine to
// end. It is safe to call more than once, and on a hook never started.
func (h *Hook) Stop() {
	h.stop.Do(func() {
		h.cancel()
		h.start.Do(func() {}) // after this, Start has either run or never will
		if h.launched.Load() {
			<-h.done
		}
		for {
			select {
			case <-h.queue:
				h.drop(DropShutdown)
			default:
				return
			}
		}
	})
}

// Status reports the hook's counters and last error.
func (h *Hook) Status() Status {
	s := Status{Name: h.cfg.Name, Queued: len(h.queue), Delivered: h.delivered.Load(), Dropped: h.dropped.Load()}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastDelivery.IsZero() {
		t := h.lastDelivery
		s.LastDelivery = &t
	}
	if h.lastError != "" {
		t := h.lastErrorTime
		s.LastError, s.LastErrorTime = h.lastError, &t
	}
	return s
}

func (h *Hook) run() {
	defer close(h.done)
	for {
		select {
		case <-h.ctx.Done():
			return
		case it := <-h.queue:
			h.deliver(it)
		}
	}
}

// deliver sends one event, retrying until it is accepted, refused for good, out of
// attempts, or the hook stops.
func (h *Hook) deliver(it item) {
	body, err := json.Marshal(it.payload)
	if err != nil {
		h.fail(fmt.Sprintf("encoding a %s event: %v", it.kind, err))
		h.drop(DropRejected)
		return
	}
	id := deliveryID()
	for attempt := 1; ; attempt++ {
		retry, err := h.send(it.kind, id, body)
		if err == nil {
			h.delivered.Add(1)
			h.mu.Lock()
			h.lastDelivery = time.Now().UTC()
			h.mu.Unlock()
			return
		}
		if h.ctx.Err() != nil {
			h.drop(DropShutdown)
			return
		}
		h.fail(fmt.Sprintf("delivery %s (%s event), attempt %d of %d: %v", id, it.kind, attempt, h.cfg.Attempts, err))
		if !retry {
			h.drop(DropRejected)
			return
		}
		if attempt >= h.cfg.Attempts {
			h.drop(DropRetries)
			return
		}
		t := time.NewTimer(Backoff(attempt, h.cfg.Backoff, h.cfg.MaxWait, mrand.Float64()))
		select {
		case <-h.ctx.Done():
			t.Stop()
			h.drop(DropShutdown)
			return
		case <-t.C:
		}
	}
}

// Backoff is the wait after the attempt-th failure: base doubled attempt-1 times, capped at
// limit, less a random share of up to half of it (r in [0,1)), so that receivers coming
// back are not hit by every sender at once.
func Backoff(attempt int, base, limit time.Duration, r float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d - time.Duration(r*float64(d)/2)
}

// send makes one attempt; retry says whether a failure is worth another.
func (h *Hook) send(kind, id string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "coredns-gtm-webhook")
	req.Header.Set(EventHeader, kind)
	req.Header.Set(DeliveryHeader, id)
	if h.cfg.Secret != nil {
		req.Header.Set(SignatureHeader, Sign(h.cfg.Secret, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		result := ResultError
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			result = ResultTimeout
			err = fmt.Errorf("no answer within %s", h.cfg.Timeout)
		}
		h.observe(result)
		return true, sanitize(err)
	}
	// Drain a little so the connection can be reused; never read an endless body.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		h.observe(ResultOK)
		return false, nil
	}
	h.observe(ResultStatus)
	c := resp.StatusCode
	return c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests, fmt.Errorf("receiver answered %s", resp.Status)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sanitize strips the URL from a client error: it may hold a token, and the error is shown
// in the status.
func sanitize(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (h *Hook) observe(result string) {
	if h.cfg.Observer != nil {
		h.cfg.Observer.Delivered(h.cfg.Name, result)
	}
}

func (h *Hook) drop(reason string) {
	h.dropped.Add(1)
	if h.cfg.Observer != nil {
		h.cfg.Observer.Dropped(h.cfg.Name, reason)
	}
}

func (h *Hook) fail(msg string) {
	h.mu.Lock()
	h.lastError, h.lastErrorTime = msg, time.Now().UTC()
	h.mu.Unlock()
}

func deliveryID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
