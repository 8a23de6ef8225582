package etcd

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	up := func(n string) Vote { return Vote{Node: n, Healthy: true, At: t0} }
	dn := func(n string) Vote { return Vote{Node: n, Healthy: false, At: t0} }
	live := func(ns ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range ns {
			m[n] = true
		}
		return m
	}
	abc := live("a", "b", "c")
	for _, tc := range []struct {
		name     string
		local    bool
		votes    []Vote
		live     map[string]bool
		quorum   int
		down     bool
		downN, n int
	}{
		{"3 nodes q50: one down is not enough", true, []Vote{dn("a"), up("b"), up("c")}, abc, 50, false, 1, 3},
		{"3 nodes q50: two agree", true, []Vote{dn("a"), dn("b"), up("c")}, abc, 50, true, 2, 3},
		{"3 nodes q50: all down", false, []Vote{dn("a"), dn("b"), dn("c")}, abc, 50, true, 3, 3},
		{"2 nodes q50: one is enough", true, []Vote{dn("a"), up("b")}, live("a", "b"), 50, true, 1, 2},
		{"2 nodes q50: none down", true, []Vote{up("a"), up("b")}, live("a", "b"), 50, false, 0, 2},
		{"q100: all must agree (2 of 3)", true, []Vote{dn("a"), dn("b"), up("c")}, abc, 100, false, 2, 3},
		{"q100: all agree", true, []Vote{dn("a"), dn("b"), dn("c")}, abc, 100, true, 3, 3},
		{"q1: one of many", true, []Vote{dn("a"), up("b"), up("c")}, abc, 1, true, 1, 3},
		{"q0 is 1: no down vote is never down", true, []Vote{up("a"), up("b")}, live("a", "b"), 0, false, 0, 2},
		{"q over 100 is 100", true, []Vote{dn("a"), up("b")}, live("a", "b"), 150, false, 1, 2},
		{"4 nodes q50: two of four", true, []Vote{dn("a"), dn("b"), up("c"), up("d")}, live("a", "b", "c", "d"), 50, true, 2, 4},
		{"4 nodes q75: two of four is not", true, []Vote{dn("a"), dn("b"), up("c"), up("d")}, live("a", "b", "c", "d"), 75, false, 2, 4},
		{"dead nodes do not count", true, []Vote{dn("a"), dn("x"), dn("y"), up("b"), up("c")}, abc, 50, false, 1, 3},
		{"a live node that does not report is not counted", true, []Vote{dn("a"), up("b")}, abc, 50, true, 1, 2},
		{"alone, no votes, locally healthy", true, nil, abc, 50, false, 0, 1},
		{"alone, no votes, locally down", false, nil, abc, 50, true, 1, 1},
		{"partitioned: no live set, decides on its own verdict", false, []Vote{up("b"), up("c")}, nil, 50, true, 1, 1},
		{"two votes of one node: the latest", true, []Vote{dn("a"), {Node: "a", Healthy: true, At: t0.Add(time.Second)}, dn("b"), up("c")}, abc, 50, false, 1, 3},
		{"one node, its vote", true, []Vote{dn("a")}, live("a"), 50, true, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down, n, of := Decide(tc.local, tc.votes, tc.live, tc.quorum)
			if down != tc.down || n != tc.downN || of != tc.n {
				t.Fatalf("Decide = %v %d/%d, want %v %d/%d", down, n, of, tc.down, tc.downN, tc.n)
			}
		})
	}
}
