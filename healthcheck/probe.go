package healthcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// Result is the outcome of one probe.
type Result string

// Probe outcomes.
const (
	ResultOK      Result = "ok"
	ResultTimeout Result = "timeout"
	ResultRefused Result = "refused"
	ResultStatus  Result = "status" // unexpected HTTP status
	ResultBody    Result = "body"   // body did not match
	ResultTLS     Result = "tls"
	ResultDNS     Result = "dns" // the address is a name that did not resolve
	ResultError   Result = "error"
)

// maxBody bounds what is read of a response body: enough for a status page, never an
// endless stream.
const maxBody = 64 << 10

// probe runs one check of the target within ctx's deadline. Only the target's prober
// goroutine calls it.
func (r *Registry) probe(ctx context.Context, p *prober) (Result, error) {
	addr := p.target()
	if p.tmpl.Protocol == Prometheus {
		// The query goes to the server at url; the address only names the sample.
		return r.probePrometheus(ctx, addr, p.tmpl)
	}
	if err := familyMismatch(addr, p.tmpl.Source); err != nil {
		return ResultError, err
	}
	switch p.tmpl.Protocol {
	case TCP:
		return probeTCP(ctx, addr, p.tmpl)
	case ICMP:
		return probeICMP(ctx, addr, p.tmpl)
	case DNS:
		return probeDNS(ctx, addr, p.tmpl)
	default:
		if p.client == nil {
			p.client = newHTTPClient(addr, p.tmpl)
		}
		return probeHTTP(ctx, p.client, addr, p.tmpl)
	}
}

// target is where the prober's probes go: the check address, or the address itself.
func (p *prober) target() string {
	if p.dest != "" {
		return p.dest
	}
	return p.addr
}

// family names an address's family the way errors do.
func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// networkOf is the network (tcp, ip) restricted to src's family when src is valid.
func networkOf(network string, src netip.Addr) string {
	switch {
	case !src.IsValid():
		return network
	case src.Is4():
		return network + "4"
	}
	return network + "6"
}

// familyMismatch is the error of a target IP address of the other family than the source:
// no probe can leave from one to the other. Names resolve to the source's family instead.
func familyMismatch(addr string, src netip.Addr) error {
	if !src.IsValid() {
		return nil
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil // a name
	}
	if ip = ip.Unmap(); ip.Is4() != src.Is4() {
		return fmt.Errorf("source %s is %s but the target %s is %s: a probe cannot leave from one family to the other", src, family(src), addr, family(ip))
	}
	return nil
}

// sourceError explains the errors a source address causes: one that is not this host's, and
// a name without an address of the source's family.
func sourceError(src netip.Addr, host string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case !src.IsValid() || err == nil:
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("source %s is not an address of this host: %w", src, err)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("%s has no %s address to probe from source %s: %w", host, family(src), src, err)
	}
	return err
}

// dial opens a TCP connection to address (HOST:PORT) from src when it is valid; a name then
// resolves to addresses of src's family only.
func dial(ctx context.Context, src netip.Addr, address string) (net.Conn, error) {
	var d net.Dialer
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.DialContext(ctx, networkOf("tcp", src), address)
	if err != nil {
		host, _, _ := net.SplitHostPort(address)
		return nil, sourceError(src, host, err)
	}
	return c, nil
}

func probeTCP(ctx context.Context, addr string, t *Template) (Result, error) {
	c, err := dial(ctx, t.Source, net.JoinHostPort(addr, strconv.Itoa(t.port())))
	if err != nil {
		return classify(ctx, err), err
	}
	c.Close()
	return ResultOK, nil
}

// newHTTPClient builds the client of one target once: making a Transport per probe costs
// more than the probe itself at thousands of targets. Keep-alives stay off, so every probe
// still opens a fresh connection, which is what detects a dead server.
func newHTTPClient(addr string, t *Template) *http.Client {
	tlsConf := &tls.Config{InsecureSkipVerify: t.TLSInsecure, RootCAs: rootCAs} //nolint:gosec // operator's choice: tls_insecure
	if host := serverName(addr, t.Host); net.ParseIP(host) == nil {
		tlsConf.ServerName = host
	}
	tr := &http.Transport{
		Proxy:                  nil, // never through a proxy: we judge the server itself
		DialContext:            func(ctx context.Context, _, address string) (net.Conn, error) { return dial(ctx, t.Source, address) },
		TLSClientConfig:        tlsConf,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// rootCAs verifies HTTPS targets; nil is the system's pool. Tests trust their own CA here.
var rootCAs *x509.CertPool

// serverName is the name an HTTPS probe sends in SNI and checks the certificate against: the
// Host header's name without its port (a port belongs in Host, never in SNI or a certificate
// name), or the address.
func serverName(addr, host string) string {
	if host == "" {
		return addr
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // [v6] without a port
}

func probeHTTP(ctx context.Context, client *http.Client, addr string, t *Template) (Result, error) {
	scheme := "http"
	if t.Protocol == HTTPS {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(addr, strconv.Itoa(t.port())) + t.path()
	req, err := http.NewRequestWithContext(ctx, t.method(), url, nil)
	if err != nil {
		return ResultError, err
	}
	if t.Host != "" {
		req.Host = t.Host
	}
	req.Header.Set("User-Agent", "coredns-gtm healthcheck")
	for _, h := range t.Headers {
		if strings.EqualFold(h.Name, "User-Agent") {
			req.Header.Del("User-Agent") // the template's replaces ours
			break
		}
	}
	for _, h := range t.Headers {
		// net/http sends req.Host, never a Host in req.Header.
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := client.Do(req)
	if err != nil {
		return classify(ctx, err), err
	}
	defer resp.Body.Close()
	if !t.accepts(resp.StatusCode) {
		return ResultStatus, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if t.Body == nil {
		return ResultOK, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil && len(body) < maxBody {
		return classify(ctx, err), err
	}
	if !t.Body.Match(body) {
		return ResultBody, fmt.Errorf("body does not match %q", t.Body.String())
	}
	return ResultOK, nil
}

// icmpPrivileged says whether to use raw sockets: unprivileged ping sockets need the
// process's group in net.ipv4.ping_group_range; root can always use raw sockets.
var icmpPrivileged = os.Geteuid() == 0

func probeICMP(ctx context.Context, addr string, t *Template) (Result, error) {
	p := probing.New(addr)
	if src := t.Source; src.IsValid() {
		p.Source = src.String()
		p.SetNetwork(networkOf("ip", src))
	}
	if err := p.Resolve(); err != nil {
		err = sourceError(t.Source, addr, err)
		return classify(ctx, err), err
	}
	count := t.count()
	p.Count = count
	p.SetPrivileged(icmpPrivileged)
	if dl, ok := ctx.Deadline(); ok {
		p.Timeout = time.Until(dl)
		// Send every request within the first half of the timeout, so the last one has
		// the other half for its reply.
		p.Interval = min(time.Second, max(p.Timeout/time.Duration(2*count), time.Millisecond))
	}
	if err := p.RunWithContext(ctx); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return ResultError, fmt.Errorf("icmp needs root or net.ipv4.ping_group_range covering this process's group: %v", err)
		}
		err = sourceError(t.Source, addr, err)
		return classify(ctx, err), err
	}
	return icmpVerdict(count, p.Statistics().PacketsRecv, t.Loss)
}

// icmpVerdict judges a probe of count echo requests of which recv were answered: up while
// the loss is at most maxLoss percent (requests never sent before the timeout count as lost).
func icmpVerdict(count, recv, maxLoss int) (Result, error) {
	recv = min(recv, count) // duplicates are not replies to more requests
	lost := count - recv
	switch {
	case recv == 0:
		if count == 1 {
			return ResultTimeout, errors.New("no echo reply")
		}
		return ResultTimeout, fmt.Errorf("no echo reply to %d requests", count)
	case lost*100 > maxLoss*count:
		return ResultTimeout, fmt.Errorf("%d of %d echo requests lost (%d%%, more than loss %d%%)", lost, count, lost*100/count, maxLoss)
	}
	return ResultOK, nil
}

// classify maps an error to a Result.
func classify(ctx context.Context, err error) Result {
	var dnsErr *net.DNSError
	var tlsErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return ResultTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ResultRefused
	case errors.As(err, &dnsErr):
		return ResultDNS
	case errors.As(err, &tlsErr), errors.As(err, &recErr), errors.As(err, &alert):
		return ResultTLS
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ResultTimeout
	}
	// Handshake failures below the typed errors (a stalled or garbled handshake) only say
	// so in their text.
	if msg := err.Error(); strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") {
		return ResultTLS
	}
	return ResultError
}
