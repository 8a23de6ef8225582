package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	cdtest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/discovery"
	"github.com/gtm-dns/coredns-gtm/internal/kubetest"
)

// BenchmarkMembersKubernetesChange measures the time from an EndpointSlice change written to
// the API server to the answer of a running gtm changing, over 100 changes per iteration
// (run with -benchtime=1x): p50 and p99 in milliseconds.
func BenchmarkMembersKubernetesChange(b *testing.B) {
	ks := kubetest.Start(b)
	kc := ks.Kubeconfig("gtm", true)
	ctx := context.Background()
	if _, err := ks.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := ks.Admin.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	sliceAPI := ks.Admin.DiscoveryV1().EndpointSlices("shop")
	ready := true
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-a", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
	}
	sl, err := sliceAPI.Create(ctx, sl, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	token := writeFileB(b, filepath.Join(dir, "token"), "tok")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePortB(b))
	s := startB(b, kubeCorefile(apiAddr, token, fmt.Sprintf(`
        pool web {
            members kubernetes shop/web {
                kubeconfig %s
            }
        }`, kc)))
	answer := func() string {
		m := new(dns.Msg)
		m.SetQuestion("www.gtm.test.", dns.TypeA)
		r, err := dns.Exchange(m, s.udp)
		if err != nil || len(r.Answer) == 0 {
			return ""
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	wait := func(want string) time.Duration {
		start := time.Now()
		for answer() != want {
			if time.Since(start) > 30*time.Second {
				b.Fatalf("answer not %s within 30s", want)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	wait("10.1.0.1")
	b.ResetTimer()
	var all []time.Duration
	n := 0
	for range b.N {
		for range 100 {
			n++
			addr := fmt.Sprintf("10.1.%d.%d", n/250, n%250+2)
			sl.Endpoints[0].Addresses = []string{addr}
			start := time.Now()
			if sl, err = sliceAPI.Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
			wait(addr)
			all = append(all, time.Since(start))
		}
	}
	b.StopTimer()
	slicesSort(all)
	p := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(p(1), "max-ms")
}

// BenchmarkMembersKubernetes1000Services measures the heap of discovery watching 1,000
// Services (one pool each, 2 ready endpoints per Service) through one shared informer factory.
func BenchmarkMembersKubernetes1000Services(b *testing.B) {
	ks := kubetest.Start(b)
	kc := ks.Kubeconfig("gtm", true)
	ctx := context.Background()
	if _, err := ks.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "many"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	const services = 1000
	ready := true
	for i := range services {
		name := fmt.Sprintf("svc-%d", i)
		if _, err := ks.Admin.CoreV1().Services("many").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-a", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{fmt.Sprintf("10.2.%d.%d", i/250, i%250+1)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
				{Addresses: []string{fmt.Sprintf("10.3.%d.%d", i/250, i%250+1)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			},
		}
		if _, err := ks.Admin.DiscoveryV1().EndpointSlices("many").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	cfg := &config.Config{}
	for i := range services {
		p := config.NewPool(fmt.Sprintf("p%d", i))
		p.Members = []config.Member{{Kubernetes: fmt.Sprintf("many/svc-%d", i), Kubeconfig: kc, Addresses: "endpoints"}}
		cfg.Pools = append(cfg.Pools, p)
	}
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var changes atomic.Int64
		m := discovery.New(discovery.Options{OnChange: func() { changes.Add(1) }})
		if err := m.Sync(discovery.Wants(cfg)); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for {
			synced := 0
			for _, pv := range m.View() {
				if len(pv.Sources) == 1 && len(pv.Sources[0].Members) == 2 {
					synced++
				}
			}
			if synced == services {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("%d of %d services synced", synced, services)
			}
			time.Sleep(50 * time.Millisecond)
		}
		synced := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(synced.Seconds(), "sync-s")
		m.Stop()
		if n := discovery.Factories(); n != 0 {
			b.Fatalf("%d informer factories left after Stop", n)
		}
	}
}

func slicesSort(d []time.Duration) { slices.Sort(d) }

func writeFileB(b *testing.B, path, content string) string {
	b.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

func freePortB(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startB runs a Corefile for a benchmark (start is for tests).
func startB(b *testing.B, corefile string) *server {
	b.Helper()
	inst, udp, tcp, err := cdtest.CoreDNSServerAndPorts(corefile)
	if err != nil {
		b.Fatalf("could not start CoreDNS: %v", err)
	}
	b.Cleanup(func() {
		inst.ShutdownCallbacks()
		inst.Stop()
	})
	return &server{inst: inst, udp: udp, tcp: tcp}
}
