package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	refs    int // guarded by listeners.Mutex
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
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
