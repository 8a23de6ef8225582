package test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestReadyWaitsForFirstVerdicts: with CoreDNS's ready plugin, the server is not ready while a
// health target has no first verdict (here a server that accepts and never answers, probed
// with a 1.5 s timeout), and becomes ready once it has one.
func TestReadyWaitsForFirstVerdicts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.22.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answer
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	readyAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    ready %s
    gtm gtm.example.net {
        healthcheck slow {
            protocol http
            port %d
            interval 5s
            timeout 1500ms
        }
        pool p {
            address 127.0.22.1
            healthcheck slow
        }
        domain www.gtm.example.net {
            route default p
        }
    }
}`, readyAddr, port))
	status := func() int {
		resp, err := http.Get("http://" + readyAddr + "/ready")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	begin := time.Now()
	if code := status(); code == 200 {
		t.Fatal("ready before the first verdict")
	}
	took := eventually(t, 10*time.Second, func() string {
		if code := status(); code != 200 {
			return fmt.Sprintf("/ready is %d", code)
		}
		return ""
	})
	if since := time.Since(begin); since < time.Second {
		t.Fatalf("ready after %s, before the probe could time out", since)
	}
	t.Logf("ready after %s", took)
}
