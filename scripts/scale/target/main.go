// Command target is the HTTP health target of the scale test: one listener that answers every
// loopback address, counting requests per second.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("listen", ":18080", "address to listen on (a wildcard host answers all of 127.0.0.0/8)")
	flag.Parse()
	var n atomic.Int64
	go func() {
		var last int64
		for range time.Tick(time.Second) {
			cur := n.Load()
			fmt.Printf("%d %d\n", time.Now().Unix(), cur-last)
			last = cur
		}
	}()
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Write([]byte("ok\n"))
	})}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
