// Command load sends DNS queries at a fixed rate for a bounded time and reports answers,
// errors and timeouts. It is the soak test's client; it only talks to the address given.
package main

import (
	"flag"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:1053", "DNS server")
	name := flag.String("name", "www.gtm.example.net.", "name to ask")
	rate := flag.Int("rate", 2000, "queries per second")
	dur := flag.Duration("duration", time.Minute, "how long")
	flag.Parse()

	subnets := []string{"1.0.16.0", "81.2.69.0", "8.8.8.0", "85.214.0.0", "1.1.1.0", "200.160.0.0"}
	var ok, servfail, other, timeouts atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	end := time.After(*dur)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	i := 0
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
		}
		i++
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			m := new(dns.Msg)
			m.SetQuestion(*name, dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP(subnets[i%len(subnets)])}}
			c := &dns.Client{Timeout: 2 * time.Second}
			r, _, err := c.Exchange(m, *server)
			switch {
			case err != nil:
				timeouts.Add(1)
			case r.Rcode == dns.RcodeServerFailure:
				servfail.Add(1)
			case r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0:
				ok.Add(1)
			default:
				other.Add(1)
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("sent %d answered %d servfail %d other %d timeouts %d\n", i, ok.Load(), servfail.Load(), other.Load(), timeouts.Load())
}
