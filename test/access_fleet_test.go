package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// fleetAudit lists a node's audit records since 0 (every page).
func fleetAudit(t *testing.T, n *fleetNode) []auditRec {
	t.Helper()
	var all []auditRec
	since := uint64(0)
	for {
		_, body := apiCall(t, nil, "GET", fmt.Sprintf("http://%s/api/v1/audit?since=%d&limit=1000", n.api, since), fleetToken, "")
		var doc struct {
			Records []auditRec
			Last    uint64
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("node %s audit: %v: %s", n.name, err, body)
		}
		all = append(all, doc.Records...)
		if len(doc.Records) < 1000 {
			return all
		}
		since = doc.Last
	}
}

// TestAuditFleet: 20 concurrent writers on two nodes leave exactly one record per write
// attempt, one with a 2xx status per acknowledged write; both nodes list the same fleet-wide
// log; a node SIGKILLed right after an acknowledged write leaves its record in etcd.
func TestAuditFleet(t *testing.T) {
	f := newFleet(t, "a:eu", "b:us")
	a, b := f.node("a"), f.node("b")
	const writers, each = 20, 5
	type result struct {
		node, path string
		code       int
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := []*fleetNode{a, b}[w%2]
			for i := range each {
				var path, body string
				switch i % 3 {
				case 0: // contended: every writer updates the same pool (412s expected)
					path, body = "/api/v1/config/pools/shared", fmt.Sprintf(`{"addresses":[{"address":"192.0.2.%d"}]}`, w+1)
				case 1:
					path, body = fmt.Sprintf("/api/v1/config/pools/w%d", w), fmt.Sprintf(`{"addresses":[{"address":"198.51.100.%d"}]}`, i+1)
				default:
					path, body = "/api/v1/pools/base/addresses/192.0.2.100/mode", []string{`{"mode":"up"}`, `{"mode":"auto"}`}[w%2]
				}
				code, _, _, err := n.call("PUT", path, body)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				results = append(results, result{n.name, path, code})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	acked := map[string]int{} // node path -> acknowledged writes
	attempts := map[string]int{}
	for _, r := range results {
		attempts[r.node+" "+r.path]++
		if r.code/100 == 2 {
			acked[r.node+" "+r.path]++
		}
	}
	recsA, recsB := fleetAudit(t, a), fleetAudit(t, b)
	if len(recsA) != len(results) || len(recsB) != len(recsA) {
		t.Fatalf("%d write attempts; node a lists %d records, node b %d", len(results), len(recsA), len(recsB))
	}
	gotAcked, gotAttempts := map[string]int{}, map[string]int{}
	for i, r := range recsA {
		if recsB[i].ID != r.ID || (i > 0 && r.ID <= recsA[i-1].ID) {
			t.Fatalf("record %d: node a has id %d, node b %d (previous %d)", i, r.ID, recsB[i].ID, recsA[max(i-1, 0)].ID)
		}
		gotAttempts[r.Node+" "+r.Path]++
		if r.Status/100 == 2 {
			gotAcked[r.Node+" "+r.Path]++
		}
	}
	for k, n := range attempts {
		if gotAttempts[k] != n || gotAcked[k] != acked[k] {
			t.Errorf("%s: %d attempts (%d acknowledged), %d records (%d with 2xx)", k, n, acked[k], gotAttempts[k], gotAcked[k])
		}
	}
	if acked["a /api/v1/config/pools/shared"]+acked["b /api/v1/config/pools/shared"] == 0 {
		t.Error("no contended write succeeded")
	}

	// SIGKILL right after an acknowledged write: its record is in etcd.
	a.must(200, "PUT", "/api/v1/pools/base/addresses/192.0.2.100/mode", `{"mode":"down"}`)
	a.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.cli.Get(ctx, "/gtm/audit/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd audit: %v", err)
	}
	var last auditRec
	json.Unmarshal(resp.Kvs[0].Value, &last)
	if last.Node != "a" || last.Status != 200 || string(last.After) != `{"mode":"down"}` || !strings.HasSuffix(last.Path, "/192.0.2.100/mode") {
		t.Fatalf("the last record in etcd: %s", resp.Kvs[0].Value)
	}
	// Node b lists node a's records too.
	if recs := fleetAudit(t, b); len(recs) != len(results)+1 || recs[len(recs)-1].Node != "a" {
		t.Fatalf("node b lists %d records, want %d", len(recs), len(results)+1)
	}
}
