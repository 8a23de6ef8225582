package test

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/testtool"
)

// netnsEnv marks the copy of the test binary that runs inside the network namespace.
const netnsEnv = "GTM_TEST_NETNS"

// inNetns runs the calling test in a network (and mount) namespace of its own, where the loopback
// interface also carries addrs (IPv4, each a /32). Kubernetes refuses loopback addresses
// as endpoints, so a test that health-checks discovered endpoints listens on addresses like
// 10.99.0.1 that exist only in that namespace: no packet leaves the machine.
//
// Outside the namespace it runs this test binary again with -test.run naming just this test,
// in a new network namespace (and a user namespace when not root), reports its output and
// returns false: the caller returns at once. Inside, it brings up lo with addrs and returns
// true: the caller goes on with the test. Without namespaces (no ip(8), or the kernel refuses)
// the test is skipped, or fails under CI=true.
func inNetns(t *testing.T, within time.Duration, addrs ...string) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		ip, err := exec.LookPath("ip")
		if err != nil {
			t.Fatalf("inside the namespace: %v", err)
		}
		cmds := [][]string{{"link", "set", "lo", "up"}}
		for _, a := range addrs {
			cmds = append(cmds, []string{"addr", "add", a + "/32", "dev", "lo"})
		}
		for _, c := range cmds {
			if out, err := exec.Command(ip, c...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v: %s", strings.Join(c, " "), err, out)
			}
		}
		return true
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testtool.Missing(t, "ip (iproute2) is needed to give a test network namespace its addresses")
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout="+within.String())
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	// A mount namespace too, for podFiles.
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil && !strings.Contains(text, "=== RUN") {
		testtool.Missing(t, "cannot run a test in a network namespace of its own: "+err.Error()+": "+text)
		return false
	}
	t.Logf("in a network namespace of its own:\n%s", tail(text, 12000))
	if err != nil || !strings.Contains(text, "--- PASS: "+t.Name()) {
		t.Fatalf("the test failed in its network namespace: %v", err)
	}
	return false
}

// saDir is where a pod finds its ServiceAccount's token and CA (client-go's in-cluster
// configuration reads them there).
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// podFiles gives the test, inside inNetns's namespaces, what a pod of a ServiceAccount sees:
// token and ca.crt in saDir, on a tmpfs over /run mounted in the test's own mount namespace
// (the host's /run is untouched), and KUBERNETES_SERVICE_HOST/PORT naming server (a URL).
func podFiles(t *testing.T, server, token string, ca []byte) {
	t.Helper()
	if os.Getenv(netnsEnv) != "1" {
		t.Fatal("podFiles outside the test's namespaces")
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("making mounts private: %v", err)
	}
	run, err := filepath.EvalSymlinks("/var/run")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", run, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("tmpfs on %s: %v", run, err)
	}
	if err := os.MkdirAll(saDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(saDir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(saDir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", u.Hostname())
	t.Setenv("KUBERNETES_SERVICE_PORT", u.Port())
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
