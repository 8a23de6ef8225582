package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gtm-dns/coredns-gtm/webhook"
)

// The example accepts what coredns-gtm signs and refuses everything else.
func TestReceiverExample(t *testing.T) {
	secret := []byte("whsec-example")
	body := `{"id":7,"time":"2026-12-01T10:00:00Z","kind":"health","address":"192.0.2.1","healthy":false,"message":"192.0.2.1 is down","node":"dns1"}`
	var got []event
	h := handler(secret, func(_ string, e event) { got = append(got, e) })
	for _, tc := range []struct {
		name, body, sig string
		want            int
	}{
		{"signed by coredns-gtm", body, webhook.Sign(secret, []byte(body)), http.StatusNoContent},
		{"other secret", body, webhook.Sign([]byte("other"), []byte(body)), http.StatusUnauthorized},
		{"body changed", strings.Replace(body, "false", "true", 1), webhook.Sign(secret, []byte(body)), http.StatusUnauthorized},
		{"unsigned", body, "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			req.Header.Set("X-GTM-Signature", tc.sig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
	if len(got) != 1 || got[0].Kind != "health" || got[0].Node != "dns1" || got[0].Healthy == nil || *got[0].Healthy {
		t.Fatalf("events handled: %+v", got)
	}
}
