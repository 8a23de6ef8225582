package healthcheck

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostile serves raw TCP on a loopback address with a handler that misbehaves.
func hostile(t *testing.T, ip string, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
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
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// firstVerdict probes addr once and returns the result and how long the probe took.
func firstVerdict(t *testing.T, addr string, tmpl *Template) (Result, time.Duration, string) {
	t.Helper()
	type probe struct {
		res  Result
		took time.Duration
	}
	probes := make(chan probe, 16)
	changes := make(chan Change, 16)
	r := NewRegistry(Options{
		OnProbe:  func(_ *Target, res Result, took time.Duration) { probes <- probe{res, took} },
		OnChange: func(c Change) { changes <- c },
	})
	t.Cleanup(r.Close)
	r.Acquire(addr, tmpl)
	select {
	case p := <-probes:
		c := <-changes
		return p.res, p.took, c.Err
	case <-time.After(10 * time.Second):
		t.Fatal("no probe within 10s")
	}
	return "", 0, ""
}

func readRequest(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// Probes against misbehaving servers end within their timeout (plus scheduling slack), are
// judged unhealthy, and read a bounded amount.
func TestHostileTargets(t *testing.T) {
	const timeout = 400 * time.Millisecond
	const slack = 600 * time.Millisecond
	var redirects atomic.Int64
	cases := []struct {
		name   string
		handle func(net.Conn)
		tmpl   Template
		want   Result
	}{
		{"slowloris headers", func(c net.Conn) {
			readRequest(c)
			for _, b := range []byte("HTTP/1.1 200 OK\r\nX-Slow: " + strings.Repeat("a", 100)) {
				c.Write([]byte{b})
				time.Sleep(50 * time.Millisecond)
			}
		}, Template{Protocol: HTTP}, ResultTimeout},
		{"endless body", func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"))
			chunk := []byte(strings.Repeat("x", 32<<10))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}, Template{Protocol: HTTP, Body: regexp.MustCompile("healthy")}, ResultBody},
		{"reset mid-response", func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Le"))
			c.(*net.TCPConn).SetLinger(0) // close sends RST
		}, Template{Protocol: HTTP}, ResultError},
		{"stalled TLS handshake", func(c net.Conn) {
			time.Sleep(3 * time.Second)
		}, Template{Protocol: HTTPS, TLSInsecure: true}, ResultTimeout},
		{"huge headers", func(c net.Conn) {
			readRequest(c)
			c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			line := []byte("X-Big: " + strings.Repeat("b", 8000) + "\r\n")
			for range 200 { // 1.6 MB of headers
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}, Template{Protocol: HTTP}, ResultError},
		{"redirect loop", func(c net.Conn) {
			readRequest(c)
			redirects.Add(1)
			c.Write([]byte("HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n"))
		}, Template{Protocol: HTTP, Expect: []CodeRange{{200, 200}}}, ResultStatus},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ip := fmt.Sprintf("127.0.40.%d", i+1)
			port := hostile(t, ip, tc.handle)
			tmpl := tc.tmpl
			tmpl.Port, tmpl.Interval, tmpl.Timeout, tmpl.Fall, tmpl.Rise = port, time.Minute, timeout, 1, 1
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			res, took, msg := firstVerdict(t, ip, &tmpl)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if res != tc.want {
				t.Errorf("result %s (%s), want %s", res, msg, tc.want)
			}
			if took > timeout+slack {
				t.Errorf("probe took %s, timeout %s", took, timeout)
			}
			if grown := int64(after.TotalAlloc) - int64(before.TotalAlloc); grown > 8<<20 {
				t.Errorf("probe allocated %d MiB", grown>>20)
			}
			t.Logf("%s in %s: %s", res, took.Round(time.Millisecond), msg)
		})
	}
	if n := redirects.Load(); n != 1 {
		t.Errorf("the redirect was followed: %d requests", n)
	}
}
