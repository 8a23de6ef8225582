package api

import (
	"crypto/tls"
	"net"
)

// SetTLS makes the listener serve HTTPS with cfg from the next connection on (nil: plain
// HTTP). The socket stays: a reload that turns TLS on, off, or reads renewed certificates
// swaps the configuration without a gap.
func (l *Listener) SetTLS(cfg *tls.Config) {
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"http/1.1"} // the handler is HTTP/1 only (hijack-free, one conn per stream)
	}
	l.tls.Store(cfg)
}

// TLS reports whether the listener serves HTTPS.
func (l *Listener) TLS() bool { return l.tls.Load() != nil }

// tlsListener wraps each accepted connection in TLS while the listener has a configuration.
// net/http sees the *tls.Conn, runs the handshake under its timeouts and fills r.TLS.
type tlsListener struct {
	net.Listener
	l *Listener
}

func (t tlsListener) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if cfg := t.l.tls.Load(); cfg != nil {
		return tls.Server(c, cfg), nil
	}
	return c, nil
}
