// Package etcdtest runs a real etcd server for tests: one member on 127.0.0.1, random ports,
// a temporary data directory, stopped when the test ends. The binary is $GTM_ETCD, else
// .cache/bin/etcd of the module (scripts/etcd.sh builds it), else etcd on PATH. Without one
// the test is skipped, except under CI=true, where it fails: CI must not pass by running
// nothing.
package etcdtest

import (
	"bytes"
	"fmt"
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
)

// Binary returns the etcd binary to run, or ends the test (skip; under CI=true, fail).
func Binary(t testing.TB) string {
	t.Helper()
	return testtool.Binary(t, "GTM_ETCD", "etcd", "scripts/etcd.sh")
}

// Server is one running etcd member.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	client  string // http://127.0.0.1:PORT
	peer    string
	metrics string

	// name and cluster are the member's name and --initial-cluster (a member of a Cluster;
	// a lone server is "gtm-test" in a cluster of itself).
	name, cluster, token string

	mu    sync.Mutex
	cmd   *exec.Cmd
	out   *bytes.Buffer
	ended chan struct{}
}

// Start runs a new etcd member and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newMember(t, Binary(t), "gtm-test")
	s.cluster, s.token = s.name+"="+s.peer, "etcd-cluster" // etcd's default
	s.start()
	s.cleanup()
	return s
}

// newMember prepares a member: its data directory and ports on 127.0.0.1.
func newMember(t testing.TB, bin, name string) *Server {
	s := &Server{t: t, bin: bin, dir: t.TempDir(), name: name}
	ports := freePorts(t, 3)
	s.client = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	s.peer = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.metrics = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	return s
}

// cleanup kills the member when the test ends, and shows its output if the test failed.
func (s *Server) cleanup() {
	t := s.t
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			s.mu.Lock()
			out := s.out.String()
			s.mu.Unlock()
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("etcd %s output (tail):\n%s", s.name, out)
		}
	})
}

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return s.client }

// Endpoints is the client URL as a list, for clientv3.Config.
func (s *Server) Endpoints() []string { return []string{s.client} }

// MetricsURL is the member's metrics listener (GET MetricsURL()+"/metrics").
func (s *Server) MetricsURL() string { return s.metrics }

// PID is the process id of the running member (0 when stopped), e.g. to read its CPU time.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// DataDir is the member's data directory (kept across Stop and Restart).
func (s *Server) DataDir() string { return s.dir }

func (s *Server) start() {
	s.t.Helper()
	ended := s.launch()
	if err := s.waitReady(ended, 20*time.Second); err != nil {
		s.mu.Lock()
		out := s.out.String()
		s.mu.Unlock()
		s.t.Fatalf("etcdtest: %v\n%s", err, out)
	}
}

// launch starts the member's process without waiting for it to be healthy (the members
// of a new cluster are healthy only once a quorum of them runs).
func (s *Server) launch() chan struct{} {
	s.t.Helper()
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		s.t.Fatal("etcdtest: start of a running server")
	}
	if s.out == nil {
		s.out = new(bytes.Buffer)
	}
	cmd := exec.Command(s.bin,
		"--name", s.name,
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", s.client,
		"--advertise-client-urls", s.client,
		"--listen-peer-urls", s.peer,
		"--initial-advertise-peer-urls", s.peer,
		"--initial-cluster", s.cluster,
		"--initial-cluster-token", s.token,
		"--listen-metrics-urls", s.metrics,
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-level", "warn",
	)
	w := lockedWriter{&s.mu, s.out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("etcdtest: start %s: %v", s.bin, err)
	}
	ended := make(chan struct{})
	s.cmd, s.ended = cmd, ended
	s.mu.Unlock()
	go func() { cmd.Wait(); close(ended) }()
	return ended
}

func (s *Server) waitReady(ended chan struct{}, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-ended:
			return fmt.Errorf("etcd exited at start")
		default:
		}
		resp, err := c.Get(s.client + "/health")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(b.String(), `"health":"true"`) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("etcd not healthy within %v", limit)
}

// Stop ends the member gracefully (SIGTERM); its data stays for Restart.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the member at once (SIGKILL); its data stays for Restart.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, ended := s.cmd, s.ended
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-ended
	}
}

// Restart starts the stopped member again on the same ports and data.
func (s *Server) Restart() { s.start() }

// RestartEmpty kills the member and starts it again on the same ports with an empty data
// directory: etcd restored empty (a lost disk), its revision back at the start.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Kill()
	if err := os.RemoveAll(filepath.Join(s.dir, "data")); err != nil {
		s.t.Fatalf("etcdtest: %v", err)
	}
	s.start()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// freePorts returns n ports free on 127.0.0.1 now (listened on and closed: the usual small
// race with other processes is accepted in tests).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
