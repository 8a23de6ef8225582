package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/testtool"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func clientOf(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// The documented role allows exactly list and watch of what discovery reads: the test API
// server enforces it on a ServiceAccount token, and its audit log names the reader.
func TestKubeDocumentedRBAC(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gtm := clientOf(t, s.Kubeconfig("coredns-gtm", true))
	other := clientOf(t, s.Kubeconfig("other", true))
	nobody := clientOf(t, s.Kubeconfig("nobody", false))

	for name, c := range map[string]*kubernetes.Clientset{"coredns-gtm": gtm, "other": other} {
		if _, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("%s: list services: %v", name, err)
		}
		if _, err := c.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("%s: list endpointslices: %v", name, err)
		}
		if _, err := c.NetworkingV1().Ingresses("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("%s: list ingresses: %v", name, err)
		}
		w, err := c.DiscoveryV1().EndpointSlices("").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("%s: watch endpointslices: %v", name, err)
		}
		w.Stop()
	}
	// Read-only, and only those kinds.
	if _, err := gtm.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("create service: %v, want 403", err)
	}
	if _, err := gtm.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list secrets: %v, want 403", err)
	}
	if _, err := gtm.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("get service: %v, want 403 (the role has list and watch only)", err)
	}
	if _, err := nobody.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("unbound account lists endpointslices: %v, want 403", err)
	}

	for _, u := range []string{"system:serviceaccount:gtm-system:coredns-gtm", "system:serviceaccount:gtm-system:other"} {
		if n := s.ReadsBy(u, ""); n < 4 {
			t.Fatalf("audit log: %s made %d list/watch requests, want 4: %v", u, n, s.Readers())
		}
	}

	// Killed and started again on the same port and etcd: the objects are still there.
	s.Kill()
	if _, err := s.Admin.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{}); err == nil {
		t.Fatal("the killed API server answered")
	}
	s.Restart()
	if _, err := s.Admin.CoreV1().ServiceAccounts(Namespace).Get(ctx, "coredns-gtm", metav1.GetOptions{}); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

// docs/discovery.md quotes the RBAC file the tests apply, verbatim.
func TestKubeRBACDocumented(t *testing.T) {
	root := testtool.ModuleRoot()
	rbac, err := os.ReadFile(filepath.Join(root, RBACFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "discovery.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```yaml\n"+string(rbac)+"```\n") {
		t.Fatalf("docs/discovery.md does not quote %s as it is", RBACFile)
	}
	if _, _, _, err := DocumentedRBAC(); err != nil {
		t.Fatal(err)
	}
}
