package healthcheck

import (
	"os"
	"strings"
	"testing"
	"time"
)

// ICMP echo to loopback: as root through a raw socket, otherwise through an unprivileged ping
// socket when net.ipv4.ping_group_range allows it.
func TestICMPLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		b, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		if f := strings.Fields(string(b)); len(f) == 2 && f[0] == "1" && f[1] == "0" {
			t.Skip("not root and net.ipv4.ping_group_range is closed: ICMP probes are not possible here")
		}
	}
	res, took, msg := firstVerdict(t, "127.0.0.1", &Template{Protocol: ICMP, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1})
	if res != ResultOK {
		t.Fatalf("ICMP to 127.0.0.1: %s (%s)", res, msg)
	}
	t.Logf("echo reply in %s", took)
	// Every loopback address answers echo, so the failing case is a name that cannot resolve.
	res, _, msg = firstVerdict(t, "no-such-host.invalid", &Template{Protocol: ICMP, Interval: time.Minute, Timeout: time.Second, Fall: 1, Rise: 1})
	if res == ResultOK {
		t.Fatalf("ICMP to an unresolvable name succeeded: %s", msg)
	}
}
