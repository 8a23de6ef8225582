package etcd

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkVotes is the copy Votes hands out with 10,000 keys and 5 nodes voting on each
// (no etcd: the watched map is filled directly).
func BenchmarkVotes(b *testing.B) {
	be := &Backend{votes: map[string]map[string]Vote{}}
	now := time.Now()
	for i := range 10000 {
		key := fmt.Sprintf("10.%d.%d.%d/abcdef0123456789", i>>16&255, i>>8&255, i&255)
		be.votes[key] = map[string]Vote{}
		for n := range 5 {
			node := fmt.Sprintf("node-%d", n+1)
			be.votes[key][node] = Vote{Node: node, Region: "r", Healthy: true, At: now}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		be.Votes()
	}
}
