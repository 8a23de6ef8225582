package healthcheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// A prometheus check asks a Prometheus server an instant query and compares the value of the
// address's sample with `expect OP VALUE` (k8gb and users of every self-hosted GSLB ask to
// decide from data they already collect). With {{address}} in the query each address asks
// its own query; without, one query per interval serves every address of the (url, query),
// each taking the sample whose `address` label is its own (or the only sample there is).

// AddressPlaceholder is replaced by the probed address in a prometheus query.
const AddressPlaceholder = "{{address}}"

// Prometheus probe outcomes.
const (
	ResultQuery Result = "query" // the query failed (HTTP, PromQL) or had no usable sample
	ResultValue Result = "value" // the sample's value does not meet expect
	ResultSlow  Result = "slow"  // the probe succeeded slower than max_rtt
	ResultPush  Result = "push"  // a pushed verdict of unhealthy, or none in force any more
)

// Comparison is a prometheus check's `expect OP VALUE`.
type Comparison struct {
	Op    string // <, <=, >, >=, ==, !=
	Value float64
}

// ParseComparison reads `expect OP VALUE` as "< 0.05", "<0.05" or ">= 1".
func ParseComparison(s string) (Comparison, error) {
	s = strings.TrimSpace(s)
	var op string
	for _, o := range []string{"<=", ">=", "==", "!=", "<", ">"} { // two-character ones first
		if strings.HasPrefix(s, o) {
			op = o
			break
		}
	}
	if op == "" {
		return Comparison{}, fmt.Errorf("expect %q: expected OP VALUE with OP one of <, <=, >, >=, ==, != (such as \"< 0.05\")", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s[len(op):]), 64)
	if err != nil || math.IsNaN(v) {
		return Comparison{}, fmt.Errorf("expect %q: %q is not a number (expected OP VALUE such as \"< 0.05\")", s, strings.TrimSpace(s[len(op):]))
	}
	return Comparison{Op: op, Value: v}, nil
}

// String is the comparison as written: "< 0.05".
func (c Comparison) String() string {
	if c.Op == "" {
		return ""
	}
	return c.Op + " " + strconv.FormatFloat(c.Value, 'g', -1, 64)
}

// Holds reports whether v OP Value; NaN never holds.
func (c Comparison) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch c.Op {
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "==":
		return v == c.Value
	case "!=":
		return v != c.Value
	}
	return false
}

// IsComparison reports whether an `expect` argument starts like OP VALUE rather than like
// HTTP codes or rcodes (the Corefile parser joins the two forms differently).
func IsComparison(s string) bool { return s != "" && strings.ContainsRune("<>=!", rune(s[0])) }

// promQuery is the query the prober of addr asks.
func (t *Template) promQuery(addr string) string {
	return strings.ReplaceAll(t.PromQL, AddressPlaceholder, addr)
}

// perAddress reports whether each address asks its own query.
func (t *Template) perAddress() bool { return strings.Contains(t.PromQL, AddressPlaceholder) }

// promClients are the Prometheus API clients and the shared query results of a registry.
type promClients struct {
	mu      sync.Mutex
	clients map[string]promv1.API       // by url|source|tls_insecure
	shared  map[string]*sharedPromQuery // by client key|query: queries without {{address}}
}

// sharedPromQuery is the latest result of a query that serves several addresses.
type sharedPromQuery struct {
	mu  sync.Mutex // held while the query runs: the others wait for its result
	at  time.Time
	vec model.Vector
	err error
}

func (pc *promClients) client(t *Template) (promv1.API, string, error) {
	key := t.URL + "|" + t.source() + "|" + strconv.FormatBool(t.TLSInsecure)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c, ok := pc.clients[key]; ok {
		return c, key, nil
	}
	src := t.Source
	tr := &http.Transport{
		Proxy:                  nil, // the server as configured, never a proxy from the environment
		DialContext:            func(ctx context.Context, _, address string) (net.Conn, error) { return dial(ctx, src, address) },
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: t.TLSInsecure, RootCAs: rootCAs}, //nolint:gosec // operator's choice: tls_insecure
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        time.Minute,
		MaxResponseHeaderBytes: 64 << 10,
	}
	c, err := promapi.NewClient(promapi.Config{Address: t.URL, RoundTripper: tr})
	if err != nil {
		return nil, key, err
	}
	api := promv1.NewAPI(c)
	if pc.clients == nil {
		pc.clients = map[string]promv1.API{}
	}
	pc.clients[key] = api
	return api, key, nil
}

// sharedQuery returns the result of q, asked at most once per maxAge for every prober.
func (pc *promClients) sharedQuery(ctx context.Context, api promv1.API, key, q string, maxAge time.Duration) (model.Vector, error) {
	pc.mu.Lock()
	if pc.shared == nil {
		pc.shared = map[string]*sharedPromQuery{}
	}
	sq := pc.shared[key+"|"+q]
	if sq == nil {
		sq = &sharedPromQuery{}
		pc.shared[key+"|"+q] = sq
	}
	pc.mu.Unlock()
	sq.mu.Lock()
	defer sq.mu.Unlock()
	if !sq.at.IsZero() && time.Since(sq.at) < maxAge {
		return sq.vec, sq.err
	}
	vec, err := instantQuery(ctx, api, q)
	if ctx.Err() != nil {
		return nil, err // this prober's deadline, not the query's result: do not share it
	}
	sq.at, sq.vec, sq.err = time.Now(), vec, err
	return vec, err
}

// instantQuery asks q now and returns its vector (a scalar is a vector of one sample).
func instantQuery(ctx context.Context, api promv1.API, q string) (model.Vector, error) {
	v, _, err := api.Query(ctx, q, time.Now())
	if err != nil {
		return nil, promError(err)
	}
	switch r := v.(type) {
	case model.Vector:
		return r, nil
	case *model.Scalar:
		return model.Vector{{Value: r.Value, Timestamp: r.Timestamp}}, nil
	}
	return nil, fmt.Errorf("query %q returned a %s, expected an instant vector or a scalar", q, v.Type())
}

// promError says which kind of failure a Prometheus API error is, with its message.
func promError(err error) error {
	var pe *promv1.Error
	if errors.As(err, &pe) {
		msg := "prometheus: " + string(pe.Type) + ": " + pe.Msg
		if pe.Detail != "" && pe.Detail != pe.Msg {
			msg += " (" + pe.Detail + ")"
		}
		return errors.New(msg)
	}
	return fmt.Errorf("prometheus: %w", err)
}

// probePrometheus judges addr by its sample of the template's query.
func (r *Registry) probePrometheus(ctx context.Context, addr string, t *Template) (Result, error) {
	api, key, err := r.prom.client(t)
	if err != nil {
		return ResultError, fmt.Errorf("prometheus url %q: %w", t.URL, err)
	}
	q := t.promQuery(addr)
	var vec model.Vector
	if t.perAddress() {
		vec, err = instantQuery(ctx, api, q)
	} else {
		// One query per interval for all: a prober that comes later in the same interval
		// takes the result of the one that asked.
		vec, err = r.prom.sharedQuery(ctx, api, key, q, t.interval()/2)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ResultTimeout, err
		}
		return ResultQuery, err
	}
	s, err := sampleFor(vec, addr, t.perAddress())
	if err != nil {
		return ResultQuery, fmt.Errorf("query %q: %w", q, err)
	}
	v := float64(s.Value)
	if math.IsNaN(v) {
		return ResultQuery, fmt.Errorf("query %q: the value is NaN", q)
	}
	if !t.Cmp.Holds(v) {
		return ResultValue, fmt.Errorf("value %s does not meet expect %s", strconv.FormatFloat(v, 'g', -1, 64), t.Cmp)
	}
	return ResultOK, nil
}

// sampleFor picks addr's sample: the only one of a per-address query, else the one whose
// `address` label is addr (an IP address compares in its canonical form), else the only
// sample when none carries an address label.
func sampleFor(vec model.Vector, addr string, perAddress bool) (*model.Sample, error) {
	if len(vec) == 0 {
		return nil, errors.New("no sample")
	}
	if perAddress {
		if len(vec) > 1 {
			return nil, fmt.Errorf("%d samples, expected one (aggregate the query, e.g. with max())", len(vec))
		}
		return vec[0], nil
	}
	labelled := 0
	for _, s := range vec {
		v, ok := s.Metric["address"]
		if !ok {
			continue
		}
		labelled++
		if sameAddress(string(v), addr) {
			return s, nil
		}
	}
	if labelled == 0 && len(vec) == 1 {
		return vec[0], nil
	}
	if labelled == 0 {
		return nil, fmt.Errorf("%d samples and none has an address label: use {{address}} in the query or keep the address label", len(vec))
	}
	return nil, fmt.Errorf("no sample with address=%q (%d samples)", addr, len(vec))
}

func sameAddress(label, addr string) bool {
	if label == addr {
		return true
	}
	a, err1 := netip.ParseAddr(label)
	b, err2 := netip.ParseAddr(addr)
	return err1 == nil && err2 == nil && a.Unmap() == b.Unmap()
}

func (t *Template) interval() time.Duration {
	if t.Interval <= 0 {
		return 10 * time.Second
	}
	return t.Interval
}

// outside is the identity of the settings of health from outside (prometheus, push, max_rtt,
// vantage), empty when none is used, so templates without them keep their fingerprint.
func (t *Template) outside() string {
	var b strings.Builder
	switch t.Protocol {
	case Prometheus:
		fmt.Fprintf(&b, "|url=%q|promql=%q|cmp=%s", t.URL, t.PromQL, t.Cmp)
	case Push:
		fmt.Fprintf(&b, "|push=%q", t.Name) // a pushed verdict names its check
	}
	if t.MaxRTT > 0 {
		fmt.Fprintf(&b, "|max_rtt=%s", t.MaxRTT)
	}
	if len(t.Vantage) > 0 {
		fmt.Fprintf(&b, "|vantage=%s", strings.Join(t.Vantage, ","))
	}
	if t.Follow {
		b.WriteString("|follow")
	}
	return b.String()
}
