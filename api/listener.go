package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is an HTTP listener shared by every plugin instance that names its address. A
// CoreDNS reload starts the new instance before it stops the old one, so the listener is
// reference counted and the new instance swaps in its handler: no port conflict, no gap.
type Listener struct {
	addr    string
	ln      net.Listener
	srv     *http.Server
	handler atomic.Pointer[http.Handler]
	tls     atomic.Pointer[tls.Config] // nil: plain HTTP (tls.go)
	refs    int                        // guarded by listeners.Mutex
	done    chan struct{}
}

var listeners struct {
	sync.Mutex
	m map[string]*Listener
}

// Acquire returns the listener for addr, binding it on first use.
func Acquire(addr string) (*Listener, error) {
	listeners.Lock()
	defer listeners.Unlock()
	if l, ok := listeners.m[addr]; ok {
		l.refs++
		return l, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %v", addr, err)
	}
	l := &Listener{addr: addr, ln: ln, refs: 1, done: make(chan struct{})}
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(l.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		// "OPTIONS *" goes to the handler, which authorizes it and sets the security
		// headers, instead of net/http's bare 200.
		DisableGeneralOptionsHandler: true,
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(tlsListener{jsonErrorListener{ln}, l}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener was closed under us; Release reports nothing more useful
		}
	}()
	if listeners.m == nil {
		listeners.m = map[string]*Listener{}
	}
	listeners.m[addr] = l
	return l, nil
}

func (l *Listener) serve(w http.ResponseWriter, r *http.Request) {
	h := l.handler.Load()
	if h == nil {
		setSecurityHeaders(w.Header())
		writeError(w, http.StatusServiceUnavailable, "starting")
		return
	}
	(*h).ServeHTTP(w, r)
}

// SetHandler puts h in charge of every later request.
func (l *Listener) SetHandler(h http.Handler) { l.handler.Store(&h) }

// Addr is the bound address (useful with port 0).
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Release drops one reference; the last one shuts the server down.
func (l *Listener) Release() {
	listeners.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(listeners.m, l.addr)
	}
	listeners.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
	}
	<-l.done
}

// maxHeaderBytes bounds a request's header block (net/http allows 4 KiB more).
const maxHeaderBytes = 16 << 10

// securityHeaders go on every answer of the listener, JSON errors included.
var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"Cache-Control", "no-store"},
	{"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
}

func setSecurityHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
}

// jsonErrorListener makes net/http's own answers to requests it cannot parse (400 for a
// malformed request line or header, 431 for oversized headers, 501 for an unknown transfer
// encoding) JSON like every other error of the API. net/http writes them on the connection
// before any handler runs and offers no hook, so the connection rewrites them.
type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return jsonErrorConn{c}, nil
}

// jsonErrorConn rewrites net/http's canned error answers.
type jsonErrorConn struct{ net.Conn }

// cannedError is how net/http writes them, in one Write each: the status line, exactly
// these headers (a handler's answer always has a Date header and sorts Connection before
// Content-Type), then "CODE TEXT" (or only a text) as the body. JSON bodies never hold a raw CR or LF, so an
// answer of the API cannot look like this.
var cannedError = regexp.MustCompile(`^HTTP/1\.1 ([0-9]{3}) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n(?:[0-9]{3} )?([^\r\n]*)$`)

func (c jsonErrorConn) Write(p []byte) (int, error) {
	m := cannedError.FindSubmatch(p)
	if m == nil {
		return c.Conn.Write(p)
	}
	code, _ := strconv.Atoi(string(m[1]))
	// "Bad Request: malformed Host header" -> "bad request: malformed Host header"
	text := http.StatusText(code)
	msg := strings.ToLower(text) + strings.TrimPrefix(string(m[2]), text)
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		msg = fmt.Sprintf("request header fields too large: at most %d bytes", maxHeaderBytes)
	case http.StatusNotImplemented:
		msg = "unsupported transfer encoding"
	}
	body, _ := json.MarshalIndent(map[string]string{"error": msg}, "", "  ")
	body = append(body, '\n')
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	h := http.Header{}
	setSecurityHeaders(h)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	h.Write(&b)
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := io.WriteString(c.Conn, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets net/http half-close after a 431 as it does on a bare TCP connection, so the
// client reads the answer before the connection goes.
func (c jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
