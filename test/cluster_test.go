package test

// End-to-end tests of a fleet (`cluster`): a real etcd (internal/etcdtest) and several
// built coredns-gtm binaries, each its own process with its own Corefile, talking to etcd
// through a proxy of its own so that one node can be partitioned while the others are not.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

// propagation is the contract's bound: a write on one node is in force on every connected
// node within 2 s, and a node that reconnects catches up within 2 s.
const propagation = 2 * time.Second

const fleetToken = "fleet-token-5d1a"

type fleet struct {
	t         *testing.T
	etcd      *etcdtest.Server
	cli       *clientv3.Client
	dir       string
	tokenFile string
	nodes     []*fleetNode
	// endpoints, when set, are the etcd endpoints every node names directly (a cluster of
	// members, no proxy); else each node reaches etcd through its own proxy.
	endpoints []string
}

type fleetNode struct {
	f            *fleet
	name, region string
	ip           string
	dns, api     string // host:port
	metrics      string // host:port
	proxy        *etcdtest.Proxy
	conf, cache  string
	q            *server

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	outs []*syncBuffer
}

// newFleet starts etcd and one node per "NAME:REGION", and waits until every node answers
// and lists every other.
func newFleet(t *testing.T, specs ...string) *fleet {
	t.Helper()
	binary(t) // build before etcd starts: the build is the slow part on a cold cache
	srv := etcdtest.Start(t)
	return startFleet(t, &fleet{etcd: srv}, srv.Endpoints(), specs)
}

// startFleet starts one node of f per "NAME:REGION" spec against etcd at endpoints (a client
// of f's), and waits until every node answers and lists every other.
func startFleet(t *testing.T, f *fleet, endpoints []string, specs []string) *fleet {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	f.t, f.cli, f.dir = t, cli, t.TempDir()
	f.tokenFile = writeFile(t, filepath.Join(f.dir, "token"), fleetToken+"\n")
	for _, s := range specs {
		name, region, _ := strings.Cut(s, ":")
		f.add(name, region)
	}
	for _, n := range f.nodes {
		n.launch()
	}
	for _, n := range f.nodes {
		n.waitUp(true)
	}
	f.waitListed(10*time.Second, f.nodes...)
	return f
}

// add prepares a node (its addresses, proxy, Corefile); launch starts it.
func (f *fleet) add(name, region string) *fleetNode {
	t := f.t
	t.Helper()
	i := len(f.nodes) + 1
	ip := fmt.Sprintf("127.0.41.%d", i)
	n := &fleetNode{
		f: f, name: name, region: region, ip: ip,
		dns:     fmt.Sprintf("%s:%d", ip, freePort(t)),
		api:     fmt.Sprintf("%s:%d", ip, freePort(t)),
		metrics: fmt.Sprintf("%s:%d", ip, freePort(t)),
		cache:   filepath.Join(f.dir, name+"-cache.json"),
	}
	endpoint := strings.Join(f.endpoints, " ")
	if f.endpoints == nil {
		n.proxy = etcdtest.NewProxy(t, f.etcd.Endpoint())
		endpoint = n.proxy.Endpoint()
	}
	n.q = &server{t: t, udp: n.dns, tcp: n.dns}
	_, port, _ := strings.Cut(n.dns, ":")
	n.conf = writeFile(t, filepath.Join(f.dir, "Corefile-"+name), fmt.Sprintf(`.:%s {
    bind %s
    prometheus %s
    gtm gtm.example.net {
        pool base {
            address 192.0.2.100
        }
        domain base.gtm.example.net {
            route default base
        }
        api %s {
            token_file %s
        }
        cluster {
            endpoint %s
            node %s
            region %s
            cache %s
        }
    }
}
`, port, ip, n.metrics, n.api, f.tokenFile, endpoint, name, region, n.cache))
	f.nodes = append(f.nodes, n)
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			for i, o := range n.outs {
				s := o.String()
				if len(s) > 6000 {
					s = "…" + s[len(s)-6000:]
				}
				t.Logf("node %s, run %d, output:\n%s", n.name, i+1, s)
			}
		}
	})
	return n
}

func (f *fleet) node(name string) *fleetNode {
	for _, n := range f.nodes {
		if n.name == name {
			return n
		}
	}
	f.t.Fatalf("no node %s", name)
	return nil
}

// launch starts the node's process (without waiting for it to answer).
func (n *fleetNode) launch() {
	n.f.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.f.t.Fatalf("node %s started twice", n.name)
	}
	out := &syncBuffer{}
	n.outs = append(n.outs, out)
	cmd := exec.Command(binary(n.f.t), "-conf", n.conf)
	cmd.Dir, cmd.Stdout, cmd.Stderr = n.f.dir, out, out
	if err := cmd.Start(); err != nil {
		n.f.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
}

// waitUp waits until the node answers its Corefile's domain over DNS and its API answers
// /api/v1/cluster (connected as wanted).
func (n *fleetNode) waitUp(connected bool) {
	n.f.t.Helper()
	eventually(n.f.t, 15*time.Second, func() string {
		select {
		case <-n.done:
			return "node " + n.name + " exited"
		default:
		}
		if got := n.answer("base.gtm.example.net"); got != "192.0.2.100" {
			return "node " + n.name + " not answering: " + got
		}
		doc, err := n.cluster()
		if err != nil {
			return err.Error()
		}
		if doc.Connected != connected {
			return fmt.Sprintf("node %s connected: %v, want %v", n.name, doc.Connected, connected)
		}
		return ""
	})
}

// stop ends the node with SIGTERM (its lease is revoked); kill with SIGKILL.
func (n *fleetNode) stop() { n.signal(syscall.SIGTERM) }
func (n *fleetNode) kill() { n.signal(syscall.SIGKILL) }

func (n *fleetNode) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.f.t.Errorf("node %s did not end on %v", n.name, sig)
		cmd.Process.Kill()
		<-done
	}
}

// answer is the node's A answer for name, sorted, or a description of the failure.
func (n *fleetNode) answer(name string) string {
	m, err := n.q.exchange(query{name: name, qtype: dns.TypeA})
	if err != nil {
		return "error: " + err.Error()
	}
	if m.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[m.Rcode]
	}
	a := answers(m)
	slices.Sort(a)
	return join(a)
}

// call makes an API request with the token; hdr is header name, value pairs.
func (n *fleetNode) call(method, path, body string, hdr ...string) (int, map[string]any, http.Header, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+n.api+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &v); err != nil {
			return resp.StatusCode, nil, resp.Header, fmt.Errorf("%s %s: bad JSON %q", method, path, b)
		}
	}
	return resp.StatusCode, v, resp.Header, nil
}

// must makes an API request that must answer want; it returns the body and headers.
func (n *fleetNode) must(want int, method, path, body string, hdr ...string) (map[string]any, http.Header) {
	n.f.t.Helper()
	code, v, h, err := n.call(method, path, body, hdr...)
	if err != nil {
		n.f.t.Fatalf("node %s: %s %s: %v", n.name, method, path, err)
	}
	if code != want {
		n.f.t.Fatalf("node %s: %s %s: %d %v, want %d", n.name, method, path, code, v, want)
	}
	return v, h
}

type clusterDoc struct {
	Node      string `json:"node"`
	Region    string `json:"region"`
	Connected bool   `json:"connected"`
	Revision  int64  `json:"revision"`
	Nodes     []struct {
		Name     string    `json:"name"`
		Region   string    `json:"region"`
		Revision int64     `json:"revision"`
		Version  string    `json:"version"`
		LastSeen time.Time `json:"last_seen"`
	} `json:"nodes"`
	ConfigError string `json:"config_error"`
}

func (n *fleetNode) cluster() (*clusterDoc, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+n.api+"/api/v1/cluster", nil)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %s: /api/v1/cluster: %v", n.name, err)
	}
	defer resp.Body.Close()
	var doc clusterDoc
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("node %s: /api/v1/cluster: %s", n.name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("node %s: /api/v1/cluster: %v", n.name, err)
	}
	return &doc, nil
}

func (n *fleetNode) mustCluster() *clusterDoc {
	n.f.t.Helper()
	doc, err := n.cluster()
	if err != nil {
		n.f.t.Fatal(err)
	}
	return doc
}

func (d *clusterDoc) names() []string {
	var out []string
	for _, x := range d.Nodes {
		out = append(out, x.Name)
	}
	return out
}

// metric is the value of an unlabelled series on the node's /metrics.
func (n *fleetNode) metric(name string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + n.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("node %s: no %s in /metrics", n.name, name)
}

// metricIs is "" when the node's metric has value want, else why not.
func (n *fleetNode) metricIs(name string, want float64) string {
	v, err := n.metric(name)
	if err != nil {
		return err.Error()
	}
	if v != want {
		return fmt.Sprintf("node %s: %s %v, want %v", n.name, name, v, want)
	}
	return ""
}

// event is the first event of kind whose message contains text, "" if none.
func (n *fleetNode) event(kind, text string) string {
	code, v, _, err := n.call("GET", "/api/v1/events", "")
	if err != nil || code != 200 {
		return ""
	}
	evs, _ := v["events"].([]any)
	for _, e := range evs {
		m, _ := e.(map[string]any)
		if m["kind"] == kind {
			if msg, _ := m["message"].(string); strings.Contains(msg, text) {
				return msg
			}
		}
	}
	return ""
}

// waitListed waits until every node of want (running, connected) lists exactly want.
func (f *fleet) waitListed(within time.Duration, want ...*fleetNode) time.Duration {
	f.t.Helper()
	var names []string
	for _, n := range want {
		names = append(names, n.name)
	}
	slices.Sort(names)
	return eventually(f.t, within, func() string {
		for _, n := range want {
			doc, err := n.cluster()
			if err != nil {
				return err.Error()
			}
			if got := doc.names(); !slices.Equal(got, names) {
				return fmt.Sprintf("node %s lists %v, want %v", n.name, got, names)
			}
		}
		return ""
	})
}

// answersOn waits until every node answers name with want (sorted answers, space-joined);
// it returns how long that took.
func answersOn(t *testing.T, within time.Duration, name, want string, nodes ...*fleetNode) time.Duration {
	t.Helper()
	return eventually(t, within, func() string {
		for _, n := range nodes {
			if got := n.answer(name); got != want {
				return fmt.Sprintf("node %s answers %s with %q, want %q", n.name, name, got, want)
			}
		}
		return ""
	})
}

const (
	webPool  = `{"addresses":[{"address":"192.0.2.1"},{"address":"192.0.2.2"}],"answers":2}`
	drPool   = `{"addresses":[{"address":"198.51.100.1"}]}`
	wwwRoute = `{"routes":[{"selector":"default","pools":["web","dr"]}]}`
)

// TestClusterWritesReachEveryNode: a resource written on a, a mode set on b and a pin set
// on c are in force on every node within 2 s; every node lists the fleet.
func TestClusterWritesReachEveryNode(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us", "c:eu")
	a, b, c := f.node("a"), f.node("b"), f.node("c")

	// The node list on every node: name, region, revision, last_seen; connected.
	regions := map[string]string{"a": "eu", "b": "us", "c": "eu"}
	for _, n := range f.nodes {
		doc := n.mustCluster()
		if doc.Node != n.name || !doc.Connected {
			t.Fatalf("node %s: /api/v1/cluster %+v", n.name, doc)
		}
		for _, x := range doc.Nodes {
			if x.Region != regions[x.Name] || x.LastSeen.IsZero() || time.Since(x.LastSeen) > 10*time.Second || x.Version == "" {
				t.Errorf("node %s lists %+v", n.name, x)
			}
		}
	}

	a.must(201, "PUT", "/api/v1/config/pools/web", webPool)
	a.must(201, "PUT", "/api/v1/config/pools/dr", drPool)
	_, h := a.must(201, "PUT", "/api/v1/config/domains/www.gtm.example.net", wwwRoute)
	if h.Get("ETag") == "" {
		t.Error("no ETag on a create")
	}
	if got := a.answer("www.gtm.example.net"); got != "192.0.2.1 192.0.2.2" {
		t.Fatalf("a, right after its own write: %q", got)
	}
	d := answersOn(t, propagation, "www.gtm.example.net", "192.0.2.1 192.0.2.2", b, c)
	t.Logf("create on a answered by b and c after %v", d)
	for _, n := range []*fleetNode{b, c} {
		v, _ := n.must(200, "GET", "/api/v1/config/domains/www.gtm.example.net", "")
		if v["source"] != "api" {
			t.Errorf("node %s: domain source %v", n.name, v["source"])
		}
	}

	// A drain on b holds on a and c.
	b.must(200, "PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", `{"mode":"down"}`)
	if got := b.answer("www.gtm.example.net"); got != "192.0.2.2" {
		t.Fatalf("b, right after its drain: %q", got)
	}
	d = answersOn(t, propagation, "www.gtm.example.net", "192.0.2.2", a, c)
	t.Logf("drain on b in force on a and c after %v", d)

	// A pin on c holds on a and b; unpinned on a, back on b and c.
	c.must(200, "PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"dr"}`)
	d = answersOn(t, propagation, "www.gtm.example.net", "198.51.100.1", a, b, c)
	t.Logf("pin on c in force on a and b after %v", d)
	a.must(200, "PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":""}`)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.2", a, b, c)

	// Every node has applied the same revision and the node list says so.
	var rev int64
	eventually(t, 5*time.Second, func() string {
		rev = 0
		for _, n := range f.nodes {
			doc, err := n.cluster()
			if err != nil {
				return err.Error()
			}
			if rev == 0 {
				rev = doc.Revision
			}
			if doc.Revision != rev || rev == 0 {
				return fmt.Sprintf("node %s applied revision %d, another %d", n.name, doc.Revision, rev)
			}
			if len(doc.Nodes) != 3 {
				return fmt.Sprintf("node %s lists %v", n.name, doc.names())
			}
			for _, x := range doc.Nodes {
				if x.Revision != rev {
					return fmt.Sprintf("node %s lists %s at revision %d, want %d", n.name, x.Name, x.Revision, rev)
				}
			}
		}
		return ""
	})
	v, _ := c.must(200, "GET", "/api/v1/config", "")
	if int64(v["revision"].(float64)) != rev {
		t.Errorf("GET /api/v1/config on c: revision %v, the cluster document says %d", v["revision"], rev)
	}
}

// TestClusterStateWrittenAroundTheAPI: a valid write straight into etcd is in force
// everywhere within 2 s; an invalid one is not applied, every node keeps its last good
// configuration and reports config_error (cluster document, event, metric) until fixed.
func TestClusterStateWrittenAroundTheAPI(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us", "c:eu")
	ctx := context.Background()

	if _, err := f.cli.Txn(ctx).Then(
		clientv3.OpPut("/gtm/config/pools/x", `{"addresses":[{"address":"203.0.113.7"}]}`),
		clientv3.OpPut("/gtm/config/domains/x.gtm.example.net.", `{"routes":[{"selector":"default","pools":["x"]}]}`),
	).Commit(); err != nil {
		t.Fatal(err)
	}
	d := answersOn(t, propagation, "x.gtm.example.net", "203.0.113.7", f.nodes...)
	t.Logf("etcd write in force on every node after %v", d)
	for _, n := range f.nodes {
		if msg := n.metricIs("coredns_gtm_config_error", 0); msg != "" {
			t.Error(msg)
		}
	}
	errorsBefore, err := f.nodes[0].metric("coredns_gtm_config_errors_total")
	if err != nil {
		t.Fatal(err)
	}

	broken := func(key, value, word string) {
		t.Helper()
		if _, err := f.cli.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
		eventually(t, propagation, func() string {
			for _, n := range f.nodes {
				doc, err := n.cluster()
				if err != nil {
					return err.Error()
				}
				if !strings.Contains(doc.ConfigError, word) {
					return fmt.Sprintf("node %s config_error %q, want one naming %q", n.name, doc.ConfigError, word)
				}
				if msg := n.metricIs("coredns_gtm_config_error", 1); msg != "" {
					return msg
				}
				if n.event("config", "not applied") == "" {
					return "node " + n.name + ": no config event saying the state is not applied"
				}
			}
			return ""
		})
		// The last good configuration stays in force, the broken one is not applied.
		for range 5 {
			for _, n := range f.nodes {
				if got := n.answer("x.gtm.example.net"); got != "203.0.113.7" {
					t.Fatalf("node %s, with invalid state in etcd: x answers %q", n.name, got)
				}
				if got := n.answer("base.gtm.example.net"); got != "192.0.2.100" {
					t.Fatalf("node %s, with invalid state in etcd: base answers %q", n.name, got)
				}
			}
		}
		// Fixed (the bad key deleted): the error clears everywhere.
		if _, err := f.cli.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		eventually(t, propagation, func() string {
			for _, n := range f.nodes {
				doc, err := n.cluster()
				if err != nil {
					return err.Error()
				}
				if doc.ConfigError != "" {
					return fmt.Sprintf("node %s still reports config_error %q", n.name, doc.ConfigError)
				}
				if msg := n.metricIs("coredns_gtm_config_error", 0); msg != "" {
					return msg
				}
			}
			return ""
		})
	}
	// A domain naming a pool that does not exist.
	broken("/gtm/config/domains/bad.gtm.example.net.", `{"routes":[{"selector":"default","pools":["nope"]}]}`, "nope")
	for _, n := range f.nodes {
		if got := n.answer("bad.gtm.example.net"); got != "NXDOMAIN" && got != "" {
			t.Errorf("node %s answers the refused domain: %q", n.name, got)
		}
	}
	// Not JSON at all.
	broken("/gtm/config/pools/junk", `{not json`, "junk")

	errorsAfter, err := f.nodes[0].metric("coredns_gtm_config_errors_total")
	if err != nil {
		t.Fatal(err)
	}
	if errorsAfter < errorsBefore+2 {
		t.Errorf("coredns_gtm_config_errors_total went from %v to %v over two refused states", errorsBefore, errorsAfter)
	}
	// And a valid change after the fixes still applies.
	if _, err := f.cli.Put(ctx, "/gtm/config/pools/x", `{"addresses":[{"address":"203.0.113.8"}]}`); err != nil {
		t.Fatal(err)
	}
	answersOn(t, propagation, "x.gtm.example.net", "203.0.113.8", f.nodes...)

	// A node that starts while the shared state does not validate serves its Corefile part
	// and says why; once the state is fixed it applies it.
	if _, err := f.cli.Put(ctx, "/gtm/config/pools/junk", `{not json`); err != nil {
		t.Fatal(err)
	}
	d4 := f.add("d", "us")
	d4.launch()
	d4.waitUp(true)
	if doc := d4.mustCluster(); !strings.Contains(doc.ConfigError, "junk") {
		t.Errorf("node d, started on invalid shared state: config_error %q", doc.ConfigError)
	}
	if msg := d4.metricIs("coredns_gtm_config_error", 1); msg != "" {
		t.Error(msg)
	}
	if got := d4.answer("x.gtm.example.net"); got != "NXDOMAIN" {
		t.Errorf("node d, started on invalid shared state, answers x with %q (want the Corefile part only)", got)
	}
	if _, err := f.cli.Delete(ctx, "/gtm/config/pools/junk"); err != nil {
		t.Fatal(err)
	}
	answersOn(t, propagation, "x.gtm.example.net", "203.0.113.8", f.nodes...)
	eventually(t, propagation, func() string {
		if doc := d4.mustCluster(); doc.ConfigError != "" {
			return "node d still reports " + doc.ConfigError
		}
		return d4.metricIs("coredns_gtm_config_error", 0)
	})
}

// TestClusterPartition: a node cut off from etcd keeps answering with its last
// configuration, says connected:false (document, event, metric), refuses writes with 503 at
// once, and catches up within 2 s of the partition's end; so does a silently partitioned
// (blackholed) node.
func TestClusterPartition(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us", "c:eu")
	a, b, c := f.node("a"), f.node("b"), f.node("c")
	b.must(201, "PUT", "/api/v1/config/pools/web", webPool)
	b.must(201, "PUT", "/api/v1/config/pools/dr", drPool)
	b.must(201, "PUT", "/api/v1/config/domains/www.gtm.example.net", wwwRoute)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.1 192.0.2.2", f.nodes...)

	partitioned := func(n *fleetNode, how string, cut func(), other *fleetNode, mode string, newDomain string) {
		t.Helper()
		cut()
		began := time.Now()
		d := eventually(t, 8*time.Second, func() string {
			if doc := n.mustCluster(); doc.Connected {
				return "node " + n.name + " still says connected after " + how
			}
			return ""
		})
		t.Logf("%s: node %s says connected:false after %v", how, n.name, d)
		// It keeps answering with its last configuration.
		for range 20 {
			if got := n.answer("www.gtm.example.net"); got != "192.0.2.1 192.0.2.2" && got != "192.0.2.2" {
				t.Fatalf("partitioned node %s answers %q", n.name, got)
			}
		}
		// Writes answer 503 {"error":"cluster store unreachable"}, at once.
		for _, w := range [][2]string{
			{"/api/v1/config/pools/p2", drPool},
			{"/api/v1/pools/web/addresses/192.0.2.2/mode", `{"mode":"down"}`},
			{"/api/v1/domains/www.gtm.example.net/pin", `{"pool":"dr"}`},
		} {
			t0 := time.Now()
			code, v, _, err := n.call("PUT", w[0], w[1])
			took := time.Since(t0)
			if err != nil || code != 503 || v["error"] != "cluster store unreachable" {
				t.Errorf("partitioned node %s: PUT %s: %d %v %v, want 503 cluster store unreachable", n.name, w[0], code, v, err)
			}
			if took > time.Second {
				t.Errorf("partitioned node %s: PUT %s took %v", n.name, w[0], took)
			}
		}
		if n.event("cluster", "lost etcd") == "" {
			t.Errorf("node %s: no cluster event for the partition", n.name)
		}
		if msg := n.metricIs("coredns_gtm_cluster_connected", 0); msg != "" {
			t.Error(msg)
		}
		if v, err := n.metric("coredns_gtm_cluster_disconnects_total"); err != nil || v < 1 {
			t.Errorf("node %s: coredns_gtm_cluster_disconnects_total %v %v", n.name, v, err)
		}
		// Meanwhile the rest of the fleet changes things.
		other.must(200, "PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", fmt.Sprintf(`{"mode":%q}`, mode))
		other.must(201, "PUT", "/api/v1/config/domains/"+newDomain, `{"routes":[{"selector":"default","pools":["web"]}]}`)
		want := "192.0.2.2"
		if mode == "auto" {
			want = "192.0.2.1 192.0.2.2"
		}
		var rest []*fleetNode
		for _, x := range f.nodes {
			if x != n {
				rest = append(rest, x)
			}
		}
		answersOn(t, propagation, newDomain, want, rest...)
		// etcd compacts the history the partitioned node would watch from.
		resp, err := f.cli.Get(context.Background(), "/gtm/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.cli.Compact(context.Background(), resp.Header.Revision); err != nil {
			t.Fatal(err)
		}
		if got := n.answer(newDomain); got != "NXDOMAIN" {
			t.Errorf("partitioned node %s answers %s: %q", n.name, newDomain, got)
		}
		t.Logf("%s: node %s partitioned for %v", how, n.name, time.Since(began))

		// The partition ends: it catches up within 2 s.
		n.proxy.Restore()
		d = answersOn(t, propagation, newDomain, want, n)
		answersOn(t, propagation, "www.gtm.example.net", want, n)
		t.Logf("%s: node %s caught up %v after the partition ended", how, n.name, d)
		eventually(t, propagation, func() string {
			if doc := n.mustCluster(); !doc.Connected {
				return "node " + n.name + " still disconnected"
			}
			return n.metricIs("coredns_gtm_cluster_connected", 1)
		})
		// It registers again (its lease may have expired meanwhile).
		f.waitListed(10*time.Second, f.nodes...)
	}
	partitioned(a, "cut", a.proxy.Cut, b, "down", "new.gtm.example.net")
	partitioned(c, "blackhole", c.proxy.Blackhole, a, "auto", "quiet.gtm.example.net")
}

// TestClusterEtcdRestart: etcd killed and restarted under a query load loses no answer;
// every node says connected:false meanwhile, and catches up after.
func TestClusterEtcdRestart(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us", "c:eu")
	a, b := f.node("a"), f.node("b")
	a.must(201, "PUT", "/api/v1/config/pools/web", webPool)
	a.must(201, "PUT", "/api/v1/config/pools/dr", drPool)
	a.must(201, "PUT", "/api/v1/config/domains/www.gtm.example.net", wwwRoute)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.1 192.0.2.2", f.nodes...)

	var queries, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range f.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				queries.Add(1)
				if got := n.answer("www.gtm.example.net"); got != "192.0.2.1 192.0.2.2" && got != "192.0.2.2" {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, "node "+n.name+": "+got)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}

	f.etcd.Kill()
	eventually(t, 8*time.Second, func() string {
		for _, n := range f.nodes {
			if doc := n.mustCluster(); doc.Connected {
				return "node " + n.name + " still connected with etcd killed"
			}
		}
		return ""
	})
	if code, v, _, _ := b.call("PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", `{"mode":"down"}`); code != 503 {
		t.Errorf("write with etcd down: %d %v", code, v)
	}
	f.etcd.Restart()
	eventually(t, 5*time.Second, func() string {
		for _, n := range f.nodes {
			if doc := n.mustCluster(); !doc.Connected {
				return "node " + n.name + " not connected again"
			}
		}
		return ""
	})
	b.must(200, "PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", `{"mode":"down"}`)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.2", f.nodes...)
	close(stop)
	wg.Wait()
	t.Logf("%d queries across etcd's kill and restart, %d failed", queries.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("%d of %d queries failed across etcd's restart; first: %v", failures.Load(), queries.Load(), firstFailure.Load())
	}
	f.waitListed(10*time.Second, f.nodes...)
}

// TestClusterNodeDies: a node killed with SIGKILL leaves the node list of the others once
// its lease expires (at most 10 s); one stopped cleanly leaves at once.
func TestClusterNodeDies(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us", "c:eu")
	a, b, c := f.node("a"), f.node("b"), f.node("c")
	c.kill()
	d := f.waitListed(10*time.Second, a, b)
	t.Logf("a SIGKILLed node left the list after %v", d)
	b.stop()
	d = f.waitListed(2*time.Second, a)
	t.Logf("a stopped node left the list after %v", d)
}

// TestClusterCacheStart: a node that starts while etcd is unreachable serves its Corefile
// part plus its cache file's copy of the shared state (resources and overrides); a node
// without a cache serves the Corefile part.
func TestClusterCacheStart(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us")
	a, b := f.node("a"), f.node("b")
	a.must(201, "PUT", "/api/v1/config/pools/web", webPool)
	a.must(201, "PUT", "/api/v1/config/pools/dr", drPool)
	a.must(201, "PUT", "/api/v1/config/domains/www.gtm.example.net", wwwRoute)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.1 192.0.2.2", b)
	b.must(200, "PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", `{"mode":"down"}`)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.2", a, b)
	eventually(t, propagation, func() string {
		data, err := os.ReadFile(a.cache)
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(string(data), "www.gtm.example.net") || !strings.Contains(string(data), "modes/web/192.0.2.1") {
			return "cache file of a lacks the domain or the mode:\n" + string(data)
		}
		return ""
	})

	a.stop()
	b.stop()
	f.etcd.Stop()
	c := f.add("c", "us") // never connected: no cache
	a.launch()
	c.launch()
	a.waitUp(false)
	c.waitUp(false)
	if got := a.answer("www.gtm.example.net"); got != "192.0.2.2" {
		t.Errorf("a, started with etcd down, answers the cached domain with %q, want 192.0.2.2 (the cached drain in force)", got)
	}
	if got := c.answer("www.gtm.example.net"); got != "NXDOMAIN" {
		t.Errorf("c, started with etcd down and no cache, answers www with %q", got)
	}
	if code, v, _, _ := a.call("PUT", "/api/v1/config/pools/p2", drPool); code != 503 || v["error"] != "cluster store unreachable" {
		t.Errorf("a, started from its cache: write answers %d %v", code, v)
	}
	// etcd comes back: both connect, c gets the shared state.
	f.etcd.Restart()
	answersOn(t, 5*time.Second, "www.gtm.example.net", "192.0.2.2", c)
	eventually(t, 5*time.Second, func() string {
		for _, n := range []*fleetNode{a, c} {
			if doc := n.mustCluster(); !doc.Connected {
				return "node " + n.name + " not connected"
			}
		}
		return ""
	})
	f.waitListed(10*time.Second, a, c)
}

// TestClusterIfMatch: an ETag read on one node no longer matches once another node changed
// the resource (412), and concurrent read-modify-write loops on three nodes lose no update.
func TestClusterIfMatch(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us", "c:eu")
	a, b, c := f.node("a"), f.node("b"), f.node("c")
	_, h := a.must(201, "PUT", "/api/v1/config/pools/p", `{"addresses":[{"address":"192.0.2.1"}]}`)
	e1 := h.Get("ETag")
	eventually(t, propagation, func() string {
		code, _, h, err := b.call("GET", "/api/v1/config/pools/p", "")
		if err != nil || code != 200 {
			return fmt.Sprintf("GET on b: %d %v", code, err)
		}
		if got := h.Get("ETag"); got != e1 {
			return fmt.Sprintf("ETag on b %s, on a %s", got, e1)
		}
		return ""
	})
	if _, h := a.must(200, "GET", "/api/v1/config/pools/p", ""); h.Get("ETag") != e1 {
		t.Fatalf("GET on a: ETag %s, the create said %s", h.Get("ETag"), e1)
	}
	_, h = b.must(200, "PUT", "/api/v1/config/pools/p", `{"addresses":[{"address":"192.0.2.2"}]}`, "If-Match", e1)
	e2 := h.Get("ETag")
	if e2 == e1 || e2 == "" {
		t.Fatalf("ETag after b's update: %q (before %q)", e2, e1)
	}
	// At once (a may not have seen b's write yet: etcd's transaction refuses it) ...
	a.must(412, "PUT", "/api/v1/config/pools/p", `{"addresses":[{"address":"192.0.2.3"}]}`, "If-Match", e1)
	// ... and once a has it.
	eventually(t, propagation, func() string {
		_, h := a.must(200, "GET", "/api/v1/config/pools/p", "")
		if got := h.Get("ETag"); got != e2 {
			return fmt.Sprintf("ETag on a %s, want %s", got, e2)
		}
		return ""
	})
	a.must(412, "PUT", "/api/v1/config/pools/p", `{"addresses":[{"address":"192.0.2.3"}]}`, "If-Match", e1)
	c.must(412, "PUT", "/api/v1/config/pools/p", `{"addresses":[{"address":"192.0.2.3"}]}`, "If-None-Match", "*")
	for _, n := range f.nodes {
		v, _ := n.must(200, "GET", "/api/v1/config/pools/p", "")
		if got := poolAddresses(v); !slices.Equal(got, []string{"192.0.2.2"}) {
			t.Errorf("node %s: pool p has %v, want b's version", n.name, got)
		}
	}

	// Read-modify-write with If-Match on three nodes at once: every append survives.
	const perNode = 4
	errs := make(chan error, len(f.nodes))
	var conflicts atomic.Int64
	for i, n := range f.nodes {
		go func() {
			errs <- func() error {
				for j := range perNode {
					addr := fmt.Sprintf("10.0.%d.%d", i+1, j+1)
					done := false
					for try := 0; try < 200 && !done; try++ {
						code, v, h, err := n.call("GET", "/api/v1/config/pools/p", "")
						if err != nil || code != 200 {
							return fmt.Errorf("node %s: GET: %d %v", n.name, code, err)
						}
						list, _ := v["addresses"].([]any)
						list = append(list, map[string]any{"address": addr})
						body, _ := json.Marshal(map[string]any{"addresses": list})
						code, v, _, err = n.call("PUT", "/api/v1/config/pools/p", string(body), "If-Match", h.Get("ETag"))
						switch {
						case err != nil:
							return err
						case code == 200:
							done = true
						case code == 412:
							conflicts.Add(1)
							time.Sleep(time.Duration(5+try%7) * time.Millisecond)
						default:
							return fmt.Errorf("node %s: PUT: %d %v", n.name, code, v)
						}
					}
					if !done {
						return fmt.Errorf("node %s: %s not written after 200 tries", n.name, addr)
					}
				}
				return nil
			}()
		}()
	}
	deadline := time.After(30 * time.Second)
	for range f.nodes {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("concurrent writers did not finish within 30 s")
		}
	}
	t.Logf("%d appends from 3 nodes, %d conflicts (412) retried", 3*perNode, conflicts.Load())
	eventually(t, propagation, func() string {
		for _, n := range f.nodes {
			v, _ := n.must(200, "GET", "/api/v1/config/pools/p", "")
			got := poolAddresses(v)
			if len(got) != 1+len(f.nodes)*perNode {
				return fmt.Sprintf("node %s: pool p has %d addresses, want %d: %v", n.name, len(got), 1+len(f.nodes)*perNode, got)
			}
			for i := range f.nodes {
				for j := range perNode {
					if addr := fmt.Sprintf("10.0.%d.%d", i+1, j+1); !slices.Contains(got, addr) {
						return fmt.Sprintf("node %s: pool p lost %s: %v", n.name, addr, got)
					}
				}
			}
		}
		return ""
	})
}

// poolAddresses lists the addresses of a pool document, in order.
func poolAddresses(v map[string]any) []string {
	var out []string
	list, _ := v["addresses"].([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		s, _ := m["address"].(string)
		out = append(out, s)
	}
	return out
}

// TestClusterReloadKeepsNode: a SIGUSR1 reload of a fleet node (its Corefile changed) keeps
// it in the fleet: the shared state stays in force, the node stays listed once (its lease
// is kept, not revoked and replaced), and writes still flow both ways after the reload.
func TestClusterReloadKeepsNode(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us")
	a, b := f.node("a"), f.node("b")

	b.must(201, "PUT", "/api/v1/config/pools/web", webPool)
	b.must(201, "PUT", "/api/v1/config/pools/dr", drPool)
	b.must(201, "PUT", "/api/v1/config/domains/www.gtm.example.net", wwwRoute)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.1 192.0.2.2", a, b)
	b.must(200, "PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", `{"mode":"down"}`)
	answersOn(t, propagation, "www.gtm.example.net", "192.0.2.2", a, b)

	// a's Corefile gains a domain of its own; SIGUSR1 reloads it.
	conf, err := os.ReadFile(a.conf)
	if err != nil {
		t.Fatal(err)
	}
	extra := "        domain local.gtm.example.net {\n            route default base\n        }\n        api "
	edited := strings.Replace(string(conf), "        api ", extra, 1)
	if edited == string(conf) {
		t.Fatal("Corefile edit did not apply")
	}
	writeFile(t, a.conf, edited)
	a.mu.Lock()
	cmd := a.cmd
	a.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	d := eventually(t, 15*time.Second, func() string {
		if got := a.answer("local.gtm.example.net"); got != "192.0.2.100" {
			return "a after the reload: local.gtm.example.net " + got
		}
		return ""
	})
	t.Logf("a answered its new Corefile domain %v after SIGUSR1", d)

	// The shared resource and the drain are still in force on a, at once.
	if got := a.answer("www.gtm.example.net"); got != "192.0.2.2" {
		t.Errorf("a after the reload answers www with %q, want the shared state's 192.0.2.2", got)
	}
	// Listed once on both nodes, connected, for longer than a lease lasts (5 s): a revoked
	// lease would drop a from the list (and its keys) within that time.
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []*fleetNode{a, b} {
			doc, err := n.cluster()
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.names(); !slices.Equal(got, []string{"a", "b"}) || !doc.Connected {
				t.Fatalf("node %s after a's reload lists %v (connected %v), want [a b]", n.name, got, doc.Connected)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Writes flow both ways after the reload.
	a.must(200, "PUT", "/api/v1/pools/web/addresses/192.0.2.1/mode", `{"mode":"auto"}`)
	d = answersOn(t, propagation, "www.gtm.example.net", "192.0.2.1 192.0.2.2", a, b)
	t.Logf("a write on the reloaded node in force on both after %v", d)
	b.must(200, "PUT", "/api/v1/domains/www.gtm.example.net/pin", `{"pool":"dr"}`)
	d = answersOn(t, propagation, "www.gtm.example.net", "198.51.100.1", a, b)
	t.Logf("a write on the other node in force on the reloaded one after %v", d)
	// The reload's own event: base and local from the Corefile, www from the shared state.
	if s := a.event("reload", "configuration loaded: 3 domains"); s == "" {
		t.Error("no reload event on a naming its 3 domains")
	}
}
