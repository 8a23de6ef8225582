package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNamesAndScalar(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Names
		out  string
	}{
		{`"web"`, Names{"web"}, `"web"`},
		{`["a","b"]`, Names{"a", "b"}, `["a","b"]`},
		{`["a"]`, Names{"a"}, `"a"`},
		{`""`, nil, `null`},
	} {
		var n Names
		if err := json.Unmarshal([]byte(tc.in), &n); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if strings.Join(n, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %q, want %q", tc.in, n, tc.want)
		}
		b, _ := json.Marshal(n)
		if string(b) != tc.out {
			t.Errorf("%s: marshals %s, want %s", tc.in, b, tc.out)
		}
	}
	if err := json.Unmarshal([]byte(`3`), new(Names)); err == nil {
		t.Error("a number is not a healthcheck name")
	}
	for in, want := range map[string]string{`2`: "2", `"2"`: "2", `"50%"`: "50%", `"any"`: "any"} {
		var s Scalar
		if err := json.Unmarshal([]byte(in), &s); err != nil || string(s) != want {
			t.Errorf("%s: %q %v, want %q", in, s, err, want)
		}
	}
	for in, want := range map[Scalar]string{"2": `2`, "50%": `"50%"`, "any": `"any"`} {
		if b, _ := json.Marshal(in); string(b) != want {
			t.Errorf("%q marshals %s, want %s", in, b, want)
		}
	}
}

// The client sends the token and the preconditions, and a refusal is an *Error with the
// server's message and its field errors.
func TestClientCalls(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" auth="+r.Header.Get("Authorization")+
			" if-match="+r.Header.Get("If-Match")+" if-none-match="+r.Header.Get("If-None-Match")+" body="+string(body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "GET":
			w.Header().Set("ETag", `"7"`)
			w.Write([]byte(`{"addresses":[{"address":"192.0.2.1","weight":1,"priority":0,"disabled":false}],"lb":"weighted","min_available":1,"weight":1,"healthcheck":["a","b"],"source":"api","members":[]}`))
		case r.Header.Get("If-Match") == `"6"`:
			w.WriteHeader(412)
			w.Write([]byte(`{"error":"If-Match: the resource is not at that version (it changed or does not exist)"}`))
		case strings.Contains(string(body), "300.1.1.1"):
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"pool eu: address \"300.1.1.1\": bad","errors":[{"resource":"pool eu","field":"addresses[0].address","message":"pool eu: address \"300.1.1.1\": bad"}]}`))
		default:
			w.Header().Set("ETag", `"8"`)
			w.WriteHeader(201)
			w.Write(body)
		}
	}))
	defer srv.Close()
	c, err := New(Options{Server: srv.URL + "/", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var p Pool
	tag, err := c.Get(ctx, KindPool, "eu", &p)
	if err != nil || tag != `"7"` || p.Source != "api" || strings.Join(p.HealthCheck, ",") != "a,b" || p.MinAvailable != "1" {
		t.Fatalf("Get: %q %+v %v", tag, p, err)
	}
	_, err = c.Put(ctx, KindPool, "eu", Pool{Addresses: []PoolAddress{{Address: "192.0.2.1"}}}, nil, Precondition{IfMatch: `"6"`})
	if StatusOf(err) != 412 || !strings.Contains(err.Error(), "PUT /api/v1/config/pools/eu: 412 Precondition Failed: If-Match") {
		t.Fatalf("stale If-Match: %v", err)
	}
	_, err = c.Put(ctx, KindPool, "eu", Pool{Addresses: []PoolAddress{{Address: "300.1.1.1"}}}, nil, Precondition{Create: true})
	var e *Error
	if StatusOf(err) != 400 || !errorsAs(err, &e) || len(e.Errors) != 1 || e.Errors[0].Field != "addresses[0].address" {
		t.Fatalf("invalid: %v", err)
	}
	var out Domain
	ttl := int64(0)
	tag, err = c.Put(ctx, KindDomain, "www.gtm.example.net.", Domain{TTL: &ttl, Routes: []Route{{Selector: "default", Pools: []string{"eu"}}}}, &out, Precondition{Create: true})
	if err != nil || tag != `"8"` || out.TTL == nil || *out.TTL != 0 {
		t.Fatalf("create: %q %+v %v", tag, out, err)
	}
	want := []string{
		`GET /api/v1/config/pools/eu auth=Bearer tok if-match= if-none-match= body=`,
		`PUT /api/v1/config/pools/eu auth=Bearer tok if-match="6" if-none-match= body={"addresses":[{"address":"192.0.2.1","priority":0,"disabled":false}]}`,
		`PUT /api/v1/config/pools/eu auth=Bearer tok if-match= if-none-match=* body={"addresses":[{"address":"300.1.1.1","priority":0,"disabled":false}]}`,
		`PUT /api/v1/config/domains/www.gtm.example.net. auth=Bearer tok if-match= if-none-match=* body={"ttl":0,"routes":[{"selector":"default","pools":["eu"]}]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func errorsAs(err error, e **Error) bool {
	v, ok := err.(*Error)
	*e = v
	return ok
}

func TestNewRejectsBadServer(t *testing.T) {
	for _, s := range []string{"127.0.0.1:8053", "ftp://x", "http://"} {
		if _, err := New(Options{Server: s}); err == nil {
			t.Errorf("server %q accepted", s)
		}
	}
	if _, err := New(Options{CACert: []byte("not pem")}); err == nil {
		t.Error("a CA certificate without PEM accepted")
	}
}

// A 2xx whose body is not JSON (a proxy's login page, a wrong server) is an error, not a
// success with an empty result; an empty 204 is fine, and so is a +json type.
func TestNonJSONSuccessIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<html>sign in</html>"))
		case "/problem":
			w.Header().Set("Content-Type", "application/problem+json")
			w.Write([]byte(`{}`))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	c, err := New(Options{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), "GET", "/page", nil, nil); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("a 200 HTML page: %v", err)
	}
	for _, p := range []string{"/problem", "/empty"} {
		if _, err := c.Do(context.Background(), "GET", p, nil, nil); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// WaitSynced asks every write (not a read) for ?wait=synced with the timeout, and a 504 of
// the wait is an *Error that says the write stands and which nodes lag; a 504 of an
// unknown outcome is not.
func TestWaitSynced(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet:
			w.Write([]byte(`{"protocol":"tcp","port":1}`))
		case strings.Contains(r.URL.Path, "/lag"):
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"error":"the write is applied (revision 9) but not yet in force on every node after 1.5s: b (revision 8) lag","revision":9,"lagging":[{"node":"b","revision":8}]}`))
		case strings.Contains(r.URL.Path, "/unknown"):
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"error":"outcome unknown"}`))
		default:
			w.Write([]byte(`{"protocol":"tcp","port":1}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := New(Options{Server: srv.URL, WaitSynced: true, WaitTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var h HealthCheck
	if _, err := c.Get(ctx, KindHealthCheck, "a", &h); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, KindHealthCheck, "a", HealthCheck{Protocol: "tcp", Port: 1}, nil, Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPoolMode(ctx, "eu", ModeRequest{Mode: "down"}); err != nil {
		t.Fatal(err)
	}
	err = c.Delete(ctx, KindPool, "lag", "")
	var e *Error
	if !Lagging(err) || !errors.As(err, &e) || e.Revision != 9 || len(e.Lagging) != 1 || e.Lagging[0] != (Lag{Node: "b", Revision: 8}) {
		t.Fatalf("a lagging write: %#v", err)
	}
	if err := c.Delete(ctx, KindPool, "unknown", ""); err == nil || Lagging(err) {
		t.Fatalf("an unknown outcome is not a lagging write: %v", err)
	}
	want := []string{
		"GET /api/v1/config/healthchecks/a",
		"PUT /api/v1/config/healthchecks/a?wait=synced&timeout=1.5s",
		"PUT /api/v1/pools/eu/mode?wait=synced&timeout=1.5s",
		"DELETE /api/v1/config/pools/lag?wait=synced&timeout=1.5s",
		"DELETE /api/v1/config/pools/unknown?wait=synced&timeout=1.5s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without WaitSynced nothing is added; a wait without its own timeout takes the server's.
	got = nil
	for _, o := range []Options{{Server: srv.URL}, {Server: srv.URL, WaitSynced: true}} {
		c, _ := New(o)
		c.SetPoolMode(ctx, "eu", ModeRequest{Mode: "down"})
	}
	if strings.Join(got, "\n") != "PUT /api/v1/pools/eu/mode\nPUT /api/v1/pools/eu/mode?wait=synced" {
		t.Fatalf("requests: %q", got)
	}
	if _, err := New(Options{WaitSynced: true, WaitTimeout: -time.Second}); err == nil {
		t.Fatal("a negative wait timeout accepted")
	}
}
