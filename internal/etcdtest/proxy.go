package etcdtest

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a server that a test can cut, to partition one client
// while others still reach etcd.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	hole  bool // blackholed: bytes are held, connections stay open
	stall bool // stalled: bytes wait, and go through on Restore
	moved *sync.Cond
	conns map[net.Conn]bool
}

// NewProxy listens on 127.0.0.1 and forwards to target (an http://host:port URL or a
// host:port), until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	p := &Proxy{ln: ln, target: strings.TrimPrefix(target, "http://"), conns: map[net.Conn]bool{}}
	p.moved = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// Endpoint is the proxy's client URL.
func (p *Proxy) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Endpoints is the proxy's client URL as a list.
func (p *Proxy) Endpoints() []string { return []string{p.Endpoint()} }

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.moved.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Blackhole holds every byte in both directions and keeps connections open: a silent
// partition, seen only through timeouts (unlike Cut, which closes them).
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hole = true
}

// Stall holds every byte in both directions and keeps connections open, like Blackhole,
// but Restore then delivers what was held: a link that stalls and comes back, where a
// request sent during the stall still reaches etcd late.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stall = true
}

// Restore lets connections through again (after Cut, Blackhole or Stall; bytes held by a
// blackhole are dropped, bytes held by a stall go through).
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.hole, p.stall = false, false, false
	p.moved.Broadcast()
}

// waitStall blocks while the proxy is stalled; false if it was cut meanwhile.
func (p *Proxy) waitStall() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.stall && !p.cut {
		p.moved.Wait()
	}
	return !p.cut
}

func (p *Proxy) holed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hole
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.waitStall() {
				return
			}
			if n > 0 && !p.holed() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(u, c)
	go pipe(c, u)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}
