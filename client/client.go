// Package client is the Go client of coredns-gtm's admin API (docs/openapi.yaml), shared by
// gtmctl and terraform-provider-gtm so that both speak the API one way: the bearer token,
// TLS with a private CA, the ETag preconditions of configuration writes, and the API's
// errors (status, message and per-field validation errors) as one error type.
//
// It imports nothing of the server: its types are the JSON forms the API documents, so a
// field the server adds later passes through the raw calls and is ignored by the typed ones.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultServer is the API address a client uses when none is given (the Corefile example's).
const DefaultServer = "http://127.0.0.1:8053"

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// Server is the API's base URL, e.g. http://127.0.0.1:8053 (default DefaultServer).
	Server string
	// Token is sent as "Authorization: Bearer TOKEN" when not empty.
	Token string
	// CACert is PEM: the certificates that sign the server's (api `tls`); empty trusts the
	// system's roots.
	CACert []byte
	// CertFile and KeyFile are a client certificate for an api with `tls CERT KEY CLIENT_CA`.
	CertFile, KeyFile string
	// Timeout bounds one request (default 30 s).
	Timeout time.Duration
	// UserAgent names the caller in the server's logs.
	UserAgent string
	// WaitSynced makes every write (any method but GET, HEAD and OPTIONS) ask for
	// ?wait=synced: the server answers once every live node of its fleet applied the
	// write, or 504 naming the nodes that lag (the write stands; see Lagging).
	WaitSynced bool
	// WaitTimeout is the wait's timeout (&timeout=); 0: the server's (10 s).
	WaitTimeout time.Duration
}

// Client calls one server's admin API. It is safe for concurrent use.
type Client struct {
	server, token, agent string
	http                 *http.Client
	wait                 string // the query of a write: "" or "?wait=synced[&timeout=D]"
}

// New returns a client for o.
func New(o Options) (*Client, error) {
	server := strings.TrimSuffix(strings.TrimSpace(o.Server), "/")
	if server == "" {
		server = DefaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: expected a URL such as http://127.0.0.1:8053", o.Server)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if o.WaitTimeout < 0 {
		return nil, fmt.Errorf("wait timeout %v: expected a positive duration", o.WaitTimeout)
	}
	wait := ""
	if o.WaitSynced {
		wait = "?wait=synced"
		held := 10 * time.Second // the server's default
		if o.WaitTimeout > 0 {
			wait += "&timeout=" + url.QueryEscape(o.WaitTimeout.String())
			held = o.WaitTimeout
		}
		// A write is answered only after the wait: the request's own limit must outlast it.
		timeout += held
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(o.CACert) > 0 || o.CertFile != "" || o.KeyFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if len(o.CACert) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(o.CACert) {
				return nil, errors.New("CA certificate: no PEM certificate found")
			}
			tc.RootCAs = pool
		}
		if o.CertFile != "" || o.KeyFile != "" {
			if o.CertFile == "" || o.KeyFile == "" {
				return nil, errors.New("a client certificate needs both the certificate and the key file")
			}
			cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %v", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	agent := o.UserAgent
	if agent == "" {
		agent = "coredns-gtm-client"
	}
	return &Client{server: server, token: o.Token, agent: agent, wait: wait, http: &http.Client{Timeout: timeout, Transport: tr}}, nil
}

// Server is the base URL the client calls.
func (c *Client) Server() string { return c.server }

// ReadToken returns the token in a token file, surrounding whitespace trimmed (as the
// server reads its own token files).
func ReadToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Error is a call the API refused (a non-2xx answer): its status and its own message.
type Error struct {
	Method, Path string
	Status       int
	Message      string
	// Errors are a refused configuration write's validation errors, one per problem.
	Errors []FieldError
	// Revision and Lagging describe a write made with WaitSynced that the fleet did not
	// apply in time (a 504): the write stands at Revision, the nodes of Lagging had not
	// applied it yet.
	Revision int64
	Lagging  []Lag
}

// Lag is a node that had not applied a write's revision when the wait ended.
type Lag struct {
	Node     string `json:"node"`
	Revision int64  `json:"revision"`
}

// Lagging reports whether err is a write that stands but that some node of the fleet had
// not applied when the wait of WaitSynced ended (not an unknown outcome, also a 504).
func Lagging(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusGatewayTimeout && len(e.Lagging) > 0
}

// FieldError is one validation error of a refused configuration write.
type FieldError struct {
	Resource string `json:"resource,omitempty"` // "pool eu"; empty for the whole configuration
	Field    string `json:"field,omitempty"`    // "addresses[2].weight"
	Message  string `json:"message"`            // the whole sentence, as the Corefile error reads
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Response is a successful answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do makes one request. body is sent as JSON: []byte and json.RawMessage as they are,
// anything else marshalled; nil sends no body. A non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body any, hdr http.Header) (*Response, error) {
	var r io.Reader
	if body != nil {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(body); err != nil {
				return nil, err
			}
		}
		r = bytes.NewReader(b)
	}
	if c.wait != "" && method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions {
		if strings.Contains(path, "?") {
			path += "&" + strings.TrimPrefix(c.wait, "?")
		} else {
			path += c.wait
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, r)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	for k, v := range hdr {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Method: method, Path: path, Status: resp.StatusCode}
		var doc struct {
			Error    string       `json:"error"`
			Errors   []FieldError `json:"errors"`
			Revision int64        `json:"revision"`
			Lagging  []Lag        `json:"lagging"`
		}
		if json.Unmarshal(b, &doc) == nil && doc.Error != "" {
			e.Message, e.Errors, e.Revision, e.Lagging = doc.Error, doc.Errors, doc.Revision, doc.Lagging
		} else {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, e
	}
	// Every API answer with a body is JSON: a 200 page from a proxy's login, a captive
	// portal or a wrong --server is no success.
	if ct := resp.Header.Get("Content-Type"); len(bytes.TrimSpace(b)) > 0 && !isJSON(ct) {
		return nil, fmt.Errorf("%s %s: %d answered with %q, not JSON: is %s the gtm admin API?", method, path, resp.StatusCode, ct, c.server)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// getJSON GETs path and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	return decode(resp, v)
}

// sendJSON sends body with method and decodes the answer into v (when not nil).
func (c *Client) sendJSON(ctx context.Context, method, path string, body, v any) error {
	resp, err := c.Do(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return decode(resp, v)
}

func decode(resp *Response, v any) error {
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return fmt.Errorf("unexpected answer from the API (%d): %v", resp.Status, err)
	}
	return nil
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// isJSON reports whether a Content-Type is JSON (application/json, or a +json type).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
