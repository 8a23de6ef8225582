package test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func reloadCorefile(addr string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        pool p {
            address %s
        }
        domain www.gtm.example.net {
            route default p
        }
    }
}`, addr)
}

// TestReloadUnderLoad reloads the Corefile 20 times while clients query as fast as they can:
// no SERVFAIL, every answer is one of the configurations in force, and lost UDP answers are
// reported (they are bounded, not zero: a reload swaps the handler under packets in flight).
func TestReloadUnderLoad(t *testing.T) {
	s := start(t, reloadCorefile("192.0.2.1"))
	var sent, answered, servfail, wrong, lost atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: 500 * time.Millisecond}
			m := new(dns.Msg)
			m.SetQuestion("www.gtm.example.net.", dns.TypeA)
			deadline := time.Now().Add(20 * time.Second) // bounded whatever happens
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				r, _, err := c.Exchange(m, s.udp)
				switch {
				case err != nil:
					lost.Add(1)
				case r.Rcode == dns.RcodeServerFailure:
					servfail.Add(1)
				case len(r.Answer) != 1:
					wrong.Add(1)
				default:
					if a := r.Answer[0].(*dns.A).A.String(); a != "192.0.2.1" && a != "192.0.2.2" {
						wrong.Add(1)
					} else {
						answered.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	for i := range 20 {
		addr := []string{"192.0.2.2", "192.0.2.1"}[i%2]
		if err := s.reload(reloadCorefile(addr)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("queries %d, answered %d, SERVFAIL %d, wrong %d, lost (UDP timeouts) %d", sent.Load(), answered.Load(), servfail.Load(), wrong.Load(), lost.Load())
	if servfail.Load() != 0 || wrong.Load() != 0 {
		t.Fatalf("%d SERVFAIL and %d wrong answers during reloads", servfail.Load(), wrong.Load())
	}
	if lost.Load()*100 > sent.Load() {
		t.Fatalf("more than 1%% of queries lost during reloads: %d of %d", lost.Load(), sent.Load())
	}
	if answered.Load() < 1000 {
		t.Fatalf("only %d answers: the load did not run", answered.Load())
	}
	// The last configuration is in force (20 reloads end on 192.0.2.1).
	if got := join(answers(s.ask(query{name: "www.gtm.example.net", qtype: dns.TypeA}))); got != "192.0.2.1" {
		t.Fatalf("after the reloads: %s", got)
	}
}
