package etcdtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Cluster is an etcd cluster of several members on 127.0.0.1, each its own process with its
// own data directory, for tests that kill members under load (quorum lost and regained).
type Cluster struct {
	Members []*Server
}

// StartCluster runs a new cluster of n members (an odd n: 3 keeps a quorum with one down)
// and stops them when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	c := &Cluster{}
	var peers []string
	for i := range n {
		m := newMember(t, bin, fmt.Sprintf("m%d", i))
		c.Members = append(c.Members, m)
		peers = append(peers, m.name+"="+m.peer)
	}
	initial := strings.Join(peers, ",")
	token := "gtm-test-" + strings.TrimPrefix(c.Members[0].peer, "http://127.0.0.1:") // one per cluster
	ended := make([]chan struct{}, n)
	for i, m := range c.Members {
		m.cluster, m.token = initial, token
		m.cleanup()
		ended[i] = m.launch()
	}
	for i, m := range c.Members {
		if err := m.waitReady(ended[i], 30*time.Second); err != nil {
			m.mu.Lock()
			out := m.out.String()
			m.mu.Unlock()
			t.Fatalf("etcdtest: member %s: %v\n%s", m.name, err, out)
		}
	}
	return c
}

// Endpoints are the client URLs of every member, for clientv3.Config and a Corefile's
// `endpoint URL...`.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.client
	}
	return out
}

// Name is the member's name in the cluster (m0, m1, ...).
func (s *Server) Name() string { return s.name }
