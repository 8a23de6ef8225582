package test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gtm-dns/coredns-gtm/discovery"
	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/internal/kubetest"
	"github.com/gtm-dns/coredns-gtm/state"
)

// kubeFixture is a namespace with a Service and its EndpointSlice in a real API server.
type kubeFixture struct {
	t   *testing.T
	ks  *kubetest.Server
	ns  string
	svc string
}

func newKubeFixture(t *testing.T, ks *kubetest.Server, ns, svc string, ann map[string]string) *kubeFixture {
	t.Helper()
	ctx := context.Background()
	f := &kubeFixture{t: t, ks: ks, ns: ns, svc: svc}
	if _, err := ks.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := ks.Admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc, Annotations: ann},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// endpoint is "IP", "IP!" (not ready) or "IP~" (terminating).
func (f *kubeFixture) slice(name string, ann map[string]string, endpoints ...string) {
	f.t.Helper()
	ctx := context.Background()
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: f.svc}, Annotations: ann},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, e := range endpoints {
		ready, terminating := true, false
		switch {
		case strings.HasSuffix(e, "!"):
			ready, e = false, strings.TrimSuffix(e, "!")
		case strings.HasSuffix(e, "~"):
			terminating, ready, e = true, false, strings.TrimSuffix(e, "~")
		}
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{e}, Conditions: discoveryv1.EndpointConditions{Ready: &ready, Terminating: &terminating}})
	}
	api := f.ks.Admin.DiscoveryV1().EndpointSlices(f.ns)
	old, err := api.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		sl.ResourceVersion = old.ResourceVersion
		_, err = api.Update(ctx, sl, metav1.UpdateOptions{})
	} else {
		_, err = api.Create(ctx, sl, metav1.CreateOptions{})
	}
	if err != nil {
		f.t.Fatalf("endpointslice %s: %v", name, err)
	}
}

// kubeCorefile is a server with an API (its token in the file token, its state next to it)
// and pools.
func kubeCorefile(apiAddr, token, pools string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.test {
        api %s {
            token_file %s
            state %s
        }
%s
        domain www.gtm.test {
            route default web
        }
    }
}`, apiAddr, token, token+".state.json", pools)
}

// poolStatus is one pool of GET /api/v1/status.
func poolStatus(c *apiClient, name string) map[string]any {
	_, st := c.do("GET", "/api/v1/status", "", true)
	for _, p := range st["pools"].([]any) {
		if pm := p.(map[string]any); pm["name"] == name {
			return pm
		}
	}
	return nil
}

func sortedAnswer(s *server, name string) string {
	got := answers(s.ask(query{name: name, qtype: dns.TypeA}))
	slices.Sort(got)
	return join(got)
}

// membersErrors reads coredns_gtm_members_errors_total{pool,source} of this process (the
// in-process server registers its metrics in the default registry).
func membersErrors(t *testing.T, pool, source string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_gtm_members_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["pool"] == pool && l["source"] == source {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// listenTCP listens on addr for health checks until the test ends (or close is called).
func listenTCP(t *testing.T, addr string) (close func()) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var once sync.Once
	close = func() { once.Do(func() { l.Close() }) }
	t.Cleanup(close)
	return close
}

// TestMembersKubernetes runs in a network namespace of its own: Kubernetes refuses loopback
// endpoints, and the health checks of the discovered endpoints need listeners on them.
func TestMembersKubernetes(t *testing.T) {
	if !inNetns(t, 3*time.Minute, "10.99.0.41", "10.99.0.42", "10.99.0.45") {
		return
	}
	ks := kubetest.Start(t)
	kc := ks.Kubeconfig("gtm", true)
	f := newKubeFixture(t, ks, "shop", "web", nil)
	f.slice("web-a", nil, "10.99.0.41", "10.99.0.42", "10.99.0.43!", "10.99.0.44~")
	port := freePort(t)
	listenTCP(t, fmt.Sprintf("10.99.0.41:%d", port))
	close42 := listenTCP(t, fmt.Sprintf("10.99.0.42:%d", port))
	listenTCP(t, fmt.Sprintf("10.99.0.45:%d", port))

	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, kubeCorefile(apiAddr, token, fmt.Sprintf(`
        healthcheck tcp {
            protocol tcp
            port %d
            interval 500ms
            fall 1
            rise 1
        }
        pool web {
            members kubernetes shop/web {
                kubeconfig %s
            }
            healthcheck tcp
            lb all
            answers 16
        }`, port, kc)))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}

	// Ready, not terminating endpoints answer.
	eventually(t, 15*time.Second, func() string {
		if got := sortedAnswer(s, "www.gtm.test"); got != "10.99.0.41 10.99.0.42" {
			return "answer " + got
		}
		return ""
	})
	pm := poolStatus(c, "web")
	if pm["members_stale"] != false {
		t.Fatalf("members_stale %v", pm["members_stale"])
	}
	for _, a := range pm["addresses"].([]any) {
		if src := a.(map[string]any)["source"]; src != "kubernetes:shop/web" {
			t.Fatalf("source %v", src)
		}
	}

	// A member joins within 2s of the change.
	f.slice("web-a", nil, "10.99.0.41", "10.99.0.42", "10.99.0.45")
	took := eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "www.gtm.test"); got != "10.99.0.41 10.99.0.42 10.99.0.45" {
			return "after the join " + got
		}
		return ""
	})
	t.Logf("a new endpoint answers %s after the EndpointSlice change", took)

	// A member that fails its health check leaves the answer; discovery does not bring it back.
	close42()
	eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "www.gtm.test"); got != "10.99.0.41 10.99.0.45" {
			return "after 42's check fails " + got
		}
		return ""
	})

	// The API server dies: the members stay, stale, with an event.
	ks.Kill()
	eventually(t, 15*time.Second, func() string {
		pm := poolStatus(c, "web")
		if pm["members_stale"] != true || !strings.Contains(fmt.Sprint(pm["members_error"]), "kubernetes:shop/web") {
			return fmt.Sprintf("not stale: %v %v", pm["members_stale"], pm["members_error"])
		}
		return ""
	})
	if got := sortedAnswer(s, "www.gtm.test"); got != "10.99.0.41 10.99.0.45" {
		t.Fatalf("the API server's death changed the answer: %q", got)
	}
	_, ev := c.do("GET", "/api/v1/events", "", true)
	if !strings.Contains(fmt.Sprint(ev), "stale") {
		t.Fatalf("no stale event: %v", ev)
	}
	if n := membersErrors(t, "web", "kubernetes:shop/web"); n < 1 {
		t.Fatalf("coredns_gtm_members_errors_total{pool=web,source=kubernetes:shop/web} = %v", n)
	}
	// ... and back: fresh again.
	ks.Restart()
	eventually(t, 45*time.Second, func() string {
		if pm := poolStatus(c, "web"); pm["members_stale"] != false {
			return fmt.Sprintf("still stale: %v", pm["members_error"])
		}
		return ""
	})

	// Scaled to zero ready endpoints: believed, the discovered part is empty.
	f.slice("web-a", nil, "10.99.0.41!", "10.99.0.45~")
	eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "www.gtm.test"); got != "" {
			return "after scaling to zero " + got
		}
		return ""
	})
	if pm := poolStatus(c, "web"); pm["members_stale"] != false || len(pm["addresses"].([]any)) != 0 {
		t.Fatalf("scaled to zero: %v", pm)
	}
}

func TestMembersKubernetesWeights(t *testing.T) {
	ks := kubetest.Start(t)
	kc := ks.Kubeconfig("gtm", true)
	// The Service's annotation weighs the slices without one of their own.
	f := newKubeFixture(t, ks, "shop", "web", map[string]string{"gtm.coredns.io/weight": "3"})
	f.slice("web-heavy", map[string]string{"gtm.coredns.io/weight": "9"}, "192.0.2.51")
	f.slice("web-light", nil, "192.0.2.52")
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, kubeCorefile(apiAddr, token, fmt.Sprintf(`
        pool web {
            members kubernetes shop/web {
                kubeconfig %s
            }
            lb weighted
        }`, kc)))
	eventually(t, 15*time.Second, func() string {
		if got := len(poolStatus(&apiClient{t: t, base: "http://" + apiAddr, token: "tok"}, "web")["addresses"].([]any)); got != 2 {
			return fmt.Sprintf("%d addresses", got)
		}
		return ""
	})
	counts := map[string]int{}
	for range 400 {
		counts[sortedAnswer(s, "www.gtm.test")]++
	}
	share := float64(counts["192.0.2.51"]) / 400
	t.Logf("answers by weight 9:3 from annotations: %v (%.0f%% heavy)", counts, share*100)
	if share < 0.65 || share > 0.85 {
		t.Fatalf("weight 9 of 12 answered %.0f%% of 400 queries: %v", share*100, counts)
	}
}

func TestMembersKubernetesBadInput(t *testing.T) {
	ks := kubetest.Start(t)
	denied := ks.Kubeconfig("nobody", false) // no role: list/watch is forbidden
	kc := ks.Kubeconfig("gtm", true)
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, kubeCorefile(apiAddr, token, fmt.Sprintf(`
        pool web {
            address 192.0.2.1
            members kubernetes shop/web {
                kubeconfig %s
            }
        }
        pool missing {
            address 192.0.2.2
            members kubernetes shop/nothing-here {
                kubeconfig %s
            }
        }`, denied, kc)))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	// RBAC denies list: stale, the 403 named; the static address still answers.
	eventually(t, 15*time.Second, func() string {
		pm := poolStatus(c, "web")
		if pm["members_stale"] != true || !strings.Contains(fmt.Sprint(pm["members_error"]), "403") {
			return fmt.Sprintf("not stale with a 403: %v %v", pm["members_stale"], pm["members_error"])
		}
		return ""
	})
	if got := sortedAnswer(s, "www.gtm.test"); got != "192.0.2.1" {
		t.Fatalf("answer %q", got)
	}
	if n := membersErrors(t, "web", "kubernetes:shop/web"); n < 1 {
		t.Fatalf("coredns_gtm_members_errors_total{pool=web,source=kubernetes:shop/web} = %v", n)
	}
	// A Service that does not exist is believed empty, with a warning event.
	eventually(t, 15*time.Second, func() string {
		_, ev := c.do("GET", "/api/v1/events", "", true)
		if !strings.Contains(fmt.Sprint(ev), "Service shop/nothing-here does not exist") {
			return "no event for the missing Service"
		}
		return ""
	})
	if pm := poolStatus(c, "missing"); pm["members_stale"] != false {
		t.Fatalf("a missing Service is not an error: %v", pm)
	}
	// A kubeconfig that does not parse: the Corefile is refused with file:line.
	bad := writeFile(t, filepath.Join(dir, "bad.kubeconfig"), "clusters: [this is: not yaml\n")
	err := s.reload(kubeCorefile(apiAddr, token, fmt.Sprintf(`
        pool web {
            members kubernetes shop/web {
                kubeconfig %s
            }
        }`, bad)))
	if err == nil || !strings.Contains(err.Error(), ":10 - Error during parsing") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("reload with a bad kubeconfig: %v", err)
	}
	// The API refuses it too, naming the field.
	code, body := c.do("PUT", "/api/v1/config/pools/viaapi", fmt.Sprintf(`{"members":[{"kubernetes":"shop/web","kubeconfig":%q}]}`, bad), true)
	if code != 400 || !strings.Contains(fmt.Sprint(body), "members[0].kubeconfig") {
		t.Fatalf("PUT with a bad kubeconfig: %d %v", code, body)
	}
}

// gtmNode is a coredns-gtm process of a fleet.
type gtmNode struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	dns  string
	api  string
	conf string
	pid  int
}

func (n *gtmNode) launch(bin string) {
	n.out = &syncBuffer{}
	n.cmd = exec.Command(bin, "-conf", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.pid = n.cmd.Process.Pid
	n.t.Cleanup(n.kill)
}

func (n *gtmNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// agent is the part of the node's User-Agent to the API server that names it.
func (n *gtmNode) agent() string { return fmt.Sprintf("pid %d)", n.pid) }

func (n *gtmNode) answer(name string) string {
	s := &server{t: n.t, udp: n.dns, tcp: n.dns}
	m, err := s.exchange(query{name: name, qtype: dns.TypeA})
	if err != nil {
		return "error: " + err.Error()
	}
	got := answers(m)
	slices.Sort(got)
	return join(got)
}

// fleetNodes starts the built binary as nodes a and b of a fleet on etcd; body(name) is each
// node's pools and domains.
func fleetNodes(t *testing.T, etcdEndpoint, token string, body func(name string) string) []*gtmNode {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	var nodes []*gtmNode
	for _, name := range []string{"a", "b"} {
		n := &gtmNode{t: t, name: name, dns: fmt.Sprintf("127.0.0.1:%d", freePort(t)), api: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		_, port, _ := strings.Cut(n.dns, ":")
		n.conf = writeFile(t, filepath.Join(dir, "Corefile-"+name), fmt.Sprintf(`.:%s {
    bind 127.0.0.1
    gtm gtm.test {
        api %s {
            token_file %s
        }
%s
        cluster {
            endpoint %s
            node %s
        }
    }
}`, port, n.api, token, body(name), etcdEndpoint, name))
		n.launch(bin)
		nodes = append(nodes, n)
	}
	return nodes
}

func agree(t *testing.T, within time.Duration, name, want string, ns ...*gtmNode) time.Duration {
	t.Helper()
	return eventually(t, within, func() string {
		for _, n := range ns {
			if got := n.answer(name); got != want {
				return fmt.Sprintf("node %s answers %q", n.name, got)
			}
		}
		return ""
	})
}

// A fleet of two nodes on one etcd agrees on the members while only the elected node
// watches Kubernetes (the API server's audit log names who lists and watches); when it is
// killed, the other takes over within the lease.
func TestMembersKubernetesFleet(t *testing.T) {
	ks := kubetest.Start(t)
	f := newKubeFixture(t, ks, "shop", "web", nil)
	f.slice("web-a", nil, "192.0.2.61", "192.0.2.62")
	etcd := etcdtest.Start(t)
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok")
	accounts := map[string]string{}
	nodes := fleetNodes(t, etcd.Endpoint(), token, func(name string) string {
		accounts[name] = "system:serviceaccount:" + kubetest.Namespace + ":gtm-" + name
		return fmt.Sprintf(`        pool web {
            members kubernetes shop/web {
                kubeconfig %s
            }
            lb all
            answers 16
        }
        domain www.gtm.test {
            route default web
        }`, ks.Kubeconfig("gtm-"+name, true))
	})
	agree(t, 30*time.Second, "www.gtm.test", "192.0.2.61 192.0.2.62", nodes...)
	// Exactly one node leads discovery, and only it lists and watches.
	leader, other := nodes[0], nodes[1]
	if !strings.Contains(leader.out.String(), "now runs member discovery") {
		leader, other = other, leader
	}
	if strings.Contains(other.out.String(), "now runs member discovery") || !strings.Contains(leader.out.String(), "now runs member discovery") {
		t.Fatalf("not exactly one leader:\n--- a\n%s\n--- b\n%s", nodes[0].out, nodes[1].out)
	}
	if ks.ReadsBy(accounts[leader.name], "") == 0 || ks.ReadsBy(accounts[other.name], "") != 0 {
		t.Fatalf("the leader is %s, but the API server's readers are %v", leader.name, ks.Readers())
	}
	f.slice("web-a", nil, "192.0.2.61", "192.0.2.63")
	agree(t, 10*time.Second, "www.gtm.test", "192.0.2.61 192.0.2.63", nodes...)
	if ks.ReadsBy(accounts[other.name], "") != 0 {
		t.Fatalf("node %s is not elected but reads Kubernetes: %v", other.name, ks.Readers())
	}
	// The leader dies: the other takes over within the lease and follows the next change.
	leader.kill()
	f.slice("web-a", nil, "192.0.2.64")
	took := agree(t, 20*time.Second, "www.gtm.test", "192.0.2.64", other)
	t.Logf("the surviving node follows a change made after the leader died within %s", took)
	if !strings.Contains(other.out.String(), "now runs member discovery") || ks.ReadsBy(accounts[other.name], "") == 0 {
		t.Fatalf("the other node did not take over: readers %v\n%s", ks.Readers(), other.out)
	}
}

// The discovery election follows the configuration: a fleet whose pools do not discover
// holds no election (one lease per node), a pool given members through the API makes the
// nodes campaign and one of them discover, and when no pool discovers any more they resign
// and the shared members are deleted.
func TestMembersKubernetesElectionFollowsConfig(t *testing.T) {
	ks := kubetest.Start(t)
	kc := ks.Kubeconfig("coredns-gtm", true) // the documented account and binding
	f := newKubeFixture(t, ks, "shop", "web", nil)
	f.slice("web-a", nil, "192.0.2.71", "192.0.2.72")
	etcd := etcdtest.Start(t)
	token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok")
	nodes := fleetNodes(t, etcd.Endpoint(), token, func(string) string {
		return `        pool static {
            address 192.0.2.1
        }
        domain www.gtm.test {
            route default static
        }`
	})
	agree(t, 30*time.Second, "www.gtm.test", "192.0.2.1", nodes...)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	count := func(prefix string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return int(r.Count)
	}
	leases := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Leases)
	}
	eventually(t, 10*time.Second, func() string {
		if n := leases(); n != 2 {
			return fmt.Sprintf("%d leases, want one per node", n)
		}
		return ""
	})
	time.Sleep(time.Second)
	if n, l := count("/gtm/discovery/"), leases(); n != 0 || l != 2 {
		t.Fatalf("no pool discovers, yet %d election keys and %d leases (want 0 and 2)", n, l)
	}

	// A pool with members through the API: both nodes campaign, one discovers, both answer.
	c := &apiClient{t: t, base: "http://" + nodes[0].api, token: "tok"}
	c.mustCall(201, "PUT", "/api/v1/config/pools/kube", fmt.Sprintf(`{"members":[{"kubernetes":"shop/web","kubeconfig":%q}],"lb":"all","answers":16}`, kc))
	c.mustCall(201, "PUT", "/api/v1/config/domains/kube.gtm.test", `{"routes":[{"selector":"default","pools":["kube"]}]}`)
	agree(t, 30*time.Second, "kube.gtm.test", "192.0.2.71 192.0.2.72", nodes...)
	eventually(t, 10*time.Second, func() string {
		if n, l := count("/gtm/discovery/"), leases(); n != 2 || l != 4 {
			return fmt.Sprintf("%d election keys and %d leases, want 2 and 4", n, l)
		}
		return ""
	})
	readers := 0
	for _, n := range nodes {
		if ks.ReadsBy("", n.agent()) > 0 {
			readers++
		}
	}
	if readers != 1 {
		t.Fatalf("%d nodes read Kubernetes, want 1: %v", readers, ks.Readers())
	}
	f.slice("web-a", nil, "192.0.2.73")
	agree(t, 10*time.Second, "kube.gtm.test", "192.0.2.73", nodes...)

	// No pool discovers any more: both resign, the shared members go.
	c.mustCall(200, "PUT", "/api/v1/config/pools/kube", `{"addresses":[{"address":"192.0.2.9"}]}`)
	agree(t, 10*time.Second, "kube.gtm.test", "192.0.2.9", nodes...)
	eventually(t, 15*time.Second, func() string {
		if n, m, l := count("/gtm/discovery/"), count("/gtm/"+state.MembersPrefix), leases(); n != 0 || m != 0 || l != 2 {
			return fmt.Sprintf("%d election keys, %d shared members, %d leases; want 0, 0, 2", n, m, l)
		}
		return ""
	})
	for _, n := range nodes {
		if !strings.Contains(n.out.String(), "left the discovery election") {
			t.Fatalf("node %s did not log leaving the election:\n%s", n.name, n.out)
		}
	}
}

// `addresses loadbalancer` answers the Service's status.loadBalancer.ingress IPs (not its
// endpoints); `members kubernetes ingress` answers the Ingress's, with its weight
// annotation; an Ingress deleted is believed (empty, with a warning event).
func TestMembersKubernetesLoadBalancerAndIngress(t *testing.T) {
	ks := kubetest.Start(t)
	kc := ks.Kubeconfig("gtm", true)
	f := newKubeFixture(t, ks, "shop", "web", nil)
	f.slice("web-a", nil, "192.0.2.91")
	ctx := context.Background()
	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := start(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.test {
        api %s {
            token_file %s
        }
        pool lb {
            members kubernetes shop/web {
                kubeconfig %s
                addresses loadbalancer
            }
            lb all
            answers 16
        }
        pool ing {
            members kubernetes ingress shop/web-ing {
                kubeconfig %s
            }
            lb all
            answers 16
        }
        domain lb.gtm.test {
            route default lb
        }
        domain ing.gtm.test {
            route default ing
        }
    }
}`, apiAddr, token, kc, kc))
	c := &apiClient{t: t, base: "http://" + apiAddr, token: "tok"}
	// No load balancer yet: nothing, though the Service has a ready endpoint.
	eventually(t, 15*time.Second, func() string {
		if pm := poolStatus(c, "lb"); pm["members_stale"] != false || len(pm["addresses"].([]any)) != 0 {
			return fmt.Sprintf("lb pool before the status: %v", pm)
		}
		return ""
	})
	svc, err := ks.Admin.CoreV1().Services("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	if svc, err = ks.Admin.CoreV1().Services("shop").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.81"}, {IP: "192.0.2.82"}}
	if _, err := ks.Admin.CoreV1().Services("shop").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "lb.gtm.test"); got != "192.0.2.81 192.0.2.82" {
			return "lb answer " + got
		}
		return ""
	})

	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web-ing", Annotations: map[string]string{"gtm.coredns.io/weight": "5"}},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}},
		}},
	}
	ing, err = ks.Admin.NetworkingV1().Ingresses("shop").Create(ctx, ing, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.85"}}
	if ing, err = ks.Admin.NetworkingV1().Ingresses("shop").UpdateStatus(ctx, ing, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "ing.gtm.test"); got != "192.0.2.85" {
			return "ingress answer " + got
		}
		return ""
	})
	// Both pools use one kubeconfig: one informer factory serves them.
	if n := discovery.Factories(); n != 1 {
		t.Fatalf("%d informer factories for one kubeconfig", n)
	}
	for _, a := range poolStatus(c, "ing")["addresses"].([]any) {
		am := a.(map[string]any)
		if am["source"] != "kubernetes:ingress/shop/web-ing" || am["weight"] != float64(5) {
			t.Fatalf("ingress member %v: want source kubernetes:ingress/shop/web-ing, weight 5", am)
		}
	}
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.86"}, {IP: "192.0.2.87"}}
	if _, err = ks.Admin.NetworkingV1().Ingresses("shop").UpdateStatus(ctx, ing, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "ing.gtm.test"); got != "192.0.2.86 192.0.2.87" {
			return "ingress answer after the change " + got
		}
		return ""
	})
	if err := ks.Admin.NetworkingV1().Ingresses("shop").Delete(ctx, "web-ing", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if got := sortedAnswer(s, "ing.gtm.test"); got != "" {
			return "after the Ingress was deleted " + got
		}
		_, ev := c.do("GET", "/api/v1/events", "", true)
		if !strings.Contains(fmt.Sprint(ev), "Ingress shop/web-ing does not exist") {
			return "no event for the deleted Ingress"
		}
		return ""
	})
	if pm := poolStatus(c, "ing"); pm["members_stale"] != false {
		t.Fatalf("a deleted Ingress is not an error: %v", pm)
	}
	// The load-balancer pool never took the endpoint.
	if got := sortedAnswer(s, "lb.gtm.test"); got != "192.0.2.81 192.0.2.82" {
		t.Fatalf("lb answer %q", got)
	}
}

// Without `kubeconfig`, gtm takes the in-cluster configuration (a pod's ServiceAccount
// token and the KUBERNETES_SERVICE_* variables), else $KUBECONFIG. Runs in namespaces of its
// own to give itself a pod's /var/run/secrets; the API server's audit log shows which
// account read.
func TestMembersKubernetesDefaultConfig(t *testing.T) {
	if !inNetns(t, 3*time.Minute) {
		return
	}
	ks := kubetest.Start(t)
	f := newKubeFixture(t, ks, "shop", "web", nil)
	f.slice("web-a", nil, "192.0.2.31")
	envKC := ks.Kubeconfig("from-env", true)
	pool := `
        pool web {
            members kubernetes shop/web
        }`
	run := func(t *testing.T, account, want string) {
		token := writeFile(t, filepath.Join(t.TempDir(), "token"), "tok")
		s := start(t, kubeCorefile(fmt.Sprintf("127.0.0.1:%d", freePort(t)), token, pool))
		eventually(t, 15*time.Second, func() string {
			if got := sortedAnswer(s, "www.gtm.test"); got != want {
				return "answer " + got
			}
			return ""
		})
		if n := ks.ReadsBy("system:serviceaccount:"+kubetest.Namespace+":"+account, ""); n == 0 {
			t.Fatalf("account %s did not read: %v", account, ks.Readers())
		}
	}
	t.Run("KUBECONFIG", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster
		t.Setenv("KUBECONFIG", envKC)
		run(t, "from-env", "192.0.2.31")
	})
	if n := discovery.Factories(); n != 0 {
		t.Fatalf("%d informer factories left after the server stopped", n)
	}
	before := ks.ReadsBy("system:serviceaccount:"+kubetest.Namespace+":from-env", "")
	f.slice("web-a", nil, "192.0.2.32")
	t.Run("in-cluster", func(t *testing.T) {
		token, ca := ks.Account("coredns-gtm", true)
		podFiles(t, ks.URL, token, ca)
		t.Setenv("KUBECONFIG", envKC) // in-cluster wins
		run(t, "coredns-gtm", "192.0.2.32")
	})
	if after := ks.ReadsBy("system:serviceaccount:"+kubetest.Namespace+":from-env", ""); after != before {
		t.Fatalf("$KUBECONFIG's account read in a pod (%d reads, %d before)", after, before)
	}
}
