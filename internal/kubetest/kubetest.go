// Package kubetest runs a real Kubernetes API server for tests: kube-apiserver (built by
// scripts/kube-apiserver.sh) on 127.0.0.1 against a real etcd (internal/etcdtest), with an
// admin token, RBAC authorization, an audit log of who listed and watched what (Readers),
// and ServiceAccounts bound to the read-only ClusterRole that gtm's discovery needs, read
// from docs/examples/kubernetes-rbac.yaml: the RBAC the documentation gives is the one the
// tests run with. There is no controller manager: tests create Services, EndpointSlices and
// Ingresses directly and set status through the status subresource. Without the binary the
// test is skipped, except under CI=true, where it fails.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/testtool"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
)

// RBACFile is the documented RBAC of `members kubernetes`, relative to the module root.
const RBACFile = "docs/examples/kubernetes-rbac.yaml"

// DocumentedRBAC reads RBACFile: its ServiceAccount, ClusterRole and ClusterRoleBinding.
func DocumentedRBAC() (*corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, error) {
	root := testtool.ModuleRoot()
	if root == "" {
		return nil, nil, nil, fmt.Errorf("no module root above the working directory")
	}
	b, err := os.ReadFile(filepath.Join(root, RBACFile))
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		sa      *corev1.ServiceAccount
		role    *rbacv1.ClusterRole
		binding *rbacv1.ClusterRoleBinding
	)
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %v", RBACFile, err)
		}
		js, _ := json.Marshal(raw)
		var into any
		switch raw["kind"] {
		case "ServiceAccount":
			sa = &corev1.ServiceAccount{}
			into = sa
		case "ClusterRole":
			role = &rbacv1.ClusterRole{}
			into = role
		case "ClusterRoleBinding":
			binding = &rbacv1.ClusterRoleBinding{}
			into = binding
		default:
			return nil, nil, nil, fmt.Errorf("%s: unexpected kind %v", RBACFile, raw["kind"])
		}
		if err := json.Unmarshal(js, into); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %v: %v", RBACFile, raw["kind"], err)
		}
	}
	if sa == nil || role == nil || binding == nil {
		return nil, nil, nil, fmt.Errorf("%s: want a ServiceAccount, a ClusterRole and a ClusterRoleBinding", RBACFile)
	}
	return sa, role, binding, nil
}

// Binary returns the kube-apiserver to run, or ends the test (skip; under CI=true, fail).
func Binary(t testing.TB) string {
	t.Helper()
	return testtool.Binary(t, "GTM_KUBE_APISERVER", "kube-apiserver", "scripts/kube-apiserver.sh")
}

// Server is a running API server.
type Server struct {
	t     testing.TB
	bin   string
	dir   string
	args  []string
	URL   string // https://127.0.0.1:PORT
	Admin *kubernetes.Clientset
	audit string // the audit log (JSON lines)

	mu    sync.Mutex
	cmd   *exec.Cmd
	out   *bytes.Buffer
	ended chan struct{}
}

const adminToken = "gtm-test-admin-token"

// Start runs an API server (and its etcd) for the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	etcd := etcdtest.Start(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(s.dir, "sa.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(s.dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(s.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	s.audit = filepath.Join(s.dir, "audit.log")
	port := freePort(t)
	s.URL = fmt.Sprintf("https://127.0.0.1:%d", port)
	s.args = []string{
		"--etcd-servers=" + etcd.Endpoint(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1", // no default route in a test network namespace
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + filepath.Join(s.dir, "certs"),
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + keyFile,
		"--service-account-signing-key-file=" + keyFile,
		"--api-audiences=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
		"--disable-admission-plugins=ServiceAccount",
		"--endpoint-reconciler-type=none",
		"--etcd-prefix=/registry-" + filepath.Base(s.dir),
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + s.audit,
		"--audit-log-mode=blocking",
		"--v=0",
	}
	s.start()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			s.mu.Lock()
			out := s.out.String()
			s.mu.Unlock()
			if len(out) > 3000 {
				out = out[len(out)-3000:]
			}
			t.Logf("kube-apiserver output (tail):\n%s", out)
		}
	})
	cfg := &rest.Config{Host: s.URL, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}
	s.Admin = kubernetes.NewForConfigOrDie(cfg)
	return s
}

func (s *Server) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = &bytes.Buffer{}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &s.mu, w: s.out}, &lockedWriter{mu: &s.mu, w: s.out}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("kube-apiserver: %v", err)
	}
	s.cmd = cmd
	ended := make(chan struct{})
	s.ended = ended
	go func() { _ = cmd.Wait(); close(ended) }()
	s.mu.Unlock()
	err := s.waitReady(90 * time.Second)
	s.mu.Lock()
	if err != nil {
		out := s.out.String()
		if len(out) > 3000 {
			out = out[len(out)-3000:]
		}
		s.t.Fatalf("kube-apiserver not ready: %v\n%s", err, out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *Server) waitReady(within time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.ended:
			return fmt.Errorf("exited")
		default:
		}
		req, _ := http.NewRequest("GET", s.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Errorf("readyz: %s", resp.Status)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// Kill stops the API server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, ended := s.cmd, s.ended
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-ended
}

// Restart starts the API server again on the same port and etcd after Kill.
func (s *Server) Restart() {
	s.start()
}

// auditPolicy logs (metadata only) every list and watch of what discovery reads.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [list, watch]
  resources:
  - {group: "", resources: [services]}
  - {group: discovery.k8s.io, resources: [endpointslices]}
  - {group: networking.k8s.io, resources: [ingresses]}
- level: None
`

// Reader is who listed or watched: the user name (system:serviceaccount:NS:NAME) and the
// client's User-Agent.
type Reader struct {
	User, Agent string
}

// Readers counts, by reader, the list and watch requests of Services, EndpointSlices and
// Ingresses the API server has received so far (its audit log): who is watching Kubernetes.
func (s *Server) Readers() map[Reader]int {
	s.t.Helper()
	b, err := os.ReadFile(s.audit)
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatalf("audit log: %v", err)
	}
	seen := map[string]bool{}
	out := map[Reader]int{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var ev struct {
			AuditID string `json:"auditID"`
			User    struct {
				Username string `json:"username"`
			} `json:"user"`
			UserAgent string `json:"userAgent"`
		}
		if len(line) == 0 || json.Unmarshal(line, &ev) != nil || seen[ev.AuditID] {
			continue
		}
		seen[ev.AuditID] = true
		out[Reader{ev.User.Username, ev.UserAgent}]++
	}
	return out
}

// ReadsBy sums Readers for the user name user ("" for any) whose User-Agent contains agent.
func (s *Server) ReadsBy(user, agent string) int {
	n := 0
	for r, c := range s.Readers() {
		if (user == "" || r.User == user) && strings.Contains(r.Agent, agent) {
			n += c
		}
	}
	return n
}

// Namespace is where Kubeconfig makes its ServiceAccounts (the documented one's).
const Namespace = "gtm-system"

// Kubeconfig writes a kubeconfig with a token of ServiceAccount name in Namespace and returns
// its path (Account makes the account and its token). With bind, the account is bound to the documented ClusterRole (RBACFile; the
// account coredns-gtm by the documented binding itself, others by a binding of their own);
// without, it may do nothing. Calling it again for a name gives a new token.
func (s *Server) Kubeconfig(name string, bind bool) string {
	s.t.Helper()
	token, ca := s.Account(name, bind)
	path := filepath.Join(s.dir, name+".kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: %s}
current-context: test
`, s.URL, b64(ca), name, token, name)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// Account makes ServiceAccount name in Namespace (bound to the documented ClusterRole with
// bind, see Kubeconfig) and returns a token of it and the API server's CA certificate (PEM):
// what a pod of that account finds in /var/run/secrets/kubernetes.io/serviceaccount.
func (s *Server) Account(name string, bind bool) (token string, ca []byte) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	docSA, role, docBinding, err := DocumentedRBAC()
	if err != nil {
		s.t.Fatal(err)
	}
	ns := Namespace
	if docSA.Namespace != ns {
		s.t.Fatalf("%s: the ServiceAccount is in %q, not %q", RBACFile, docSA.Namespace, ns)
	}
	if _, err := s.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("namespace: %v", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if name == docSA.Name {
		sa = docSA
	}
	if _, err := s.Admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("service account: %v", err)
	}
	if bind {
		if _, err := s.Admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			s.t.Fatalf("cluster role: %v", err)
		}
		b := docBinding
		if name != docSA.Name {
			b = docBinding.DeepCopy()
			b.Name = role.Name + "-" + name
			b.Subjects = []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}
		}
		if _, err := s.Admin.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			s.t.Fatalf("cluster role binding: %v", err)
		}
	}
	exp := int64(24 * 3600)
	tr, err := s.Admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatalf("token: %v", err)
	}
	ca, err = os.ReadFile(filepath.Join(s.dir, "certs", "apiserver.crt"))
	if err != nil {
		s.t.Fatalf("serving certificate: %v", err)
	}
	return tr.Status.Token, ca
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
