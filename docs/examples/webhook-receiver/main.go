// Command webhook-receiver is an example receiver of coredns-gtm webhooks: it checks each
// request's X-GTM-Signature against the shared secret and logs the event. Copy it freely;
// it needs only the standard library.
//
//	go run ./docs/examples/webhook-receiver -listen 127.0.0.1:9000 -secret-file /etc/coredns/webhook.secret
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
)

// event is the body of a delivery: the event as GET /api/v1/events returns it, plus the node.
type event struct {
	ID      uint64 `json:"id"`
	Time    string `json:"time"`
	Kind    string `json:"kind"`
	Node    string `json:"node"`
	Domain  string `json:"domain"`
	Pool    string `json:"pool"`
	Address string `json:"address"`
	Healthy *bool  `json:"healthy"`
	Message string `json:"message"`
}

// validSignature reports whether header ("sha256=" + hex HMAC-SHA256 of the body, keyed
// with the secret) signs body. The comparison takes constant time.
func validSignature(secret, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// handler verifies and decodes deliveries, passing each event to handle. Answer 2xx quickly:
// coredns-gtm waits at most 5 s and retries anything else (4xx other than 408 and 429 are
// not retried).
func handler(secret []byte, handle func(delivery string, e event)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		// Verify the exact bytes received, before decoding them.
		if !validSignature(secret, body, r.Header.Get("X-GTM-Signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e event
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		// X-GTM-Delivery is the same on every retry of one delivery: use it to drop duplicates.
		handle(r.Header.Get("X-GTM-Delivery"), e)
		w.WriteHeader(http.StatusNoContent)
	})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	secretFile := flag.String("secret-file", "", "the file the Corefile's `secret` names")
	flag.Parse()
	raw, err := os.ReadFile(*secretFile)
	if err != nil {
		log.Fatal(err)
	}
	secret := []byte(strings.TrimRight(string(raw), "\r\n")) // as coredns-gtm reads it
	log.Fatal(http.ListenAndServe(*listen, handler(secret, func(id string, e event) {
		log.Printf("delivery %s: %s event %d from node %s: %s", id, e.Kind, e.ID, e.Node, e.Message)
	})))
}
