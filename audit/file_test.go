package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/state"
)

func rec(i int) *Record {
	return &Record{Time: time.Now().UTC(), Token: "ops", Client: "127.0.0.1:1", Method: "PUT", Path: fmt.Sprintf("/api/v1/pools/p%d/mode", i), Status: 200}
}

func TestFileAppendRecoverAndTornLine(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := f.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	// A crash in the middle of a record: its line has no newline.
	fh, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fh.WriteString(`{"id":4,"time":"2026-`)
	fh.Close()
	f, err = OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rec(9)
	if err := f.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.ID != 4 {
		t.Fatalf("next id after a restart: %d, want 4", r.ID)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), b)
	}
	for _, l := range lines {
		var x Record
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	got, _ := f.List(ctx, 2, 10)
	if len(got) != 2 || got[0].ID != 3 || got[1].ID != 4 {
		t.Fatalf("since 2: %+v", got)
	}
	got, _ = f.List(ctx, -1, 2)
	if len(got) != 2 || got[1].ID != 4 {
		t.Fatalf("latest 2: %+v", got)
	}
}

func TestFileRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.maxSize = 1000 // a few records per file
	for i := range 60 {
		if err := f.Append(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= Keep; i++ {
		if fi, err := os.Stat(fmt.Sprintf("%s.%d", path, i)); err != nil || fi.Size() > 1000 {
			t.Fatalf("rotated file %d: %v", i, err)
		}
	}
	if _, err := os.Stat(fmt.Sprintf("%s.%d", path, Keep+1)); err == nil {
		t.Fatalf("more than %d rotated files kept", Keep)
	}
	// Records before the ring still list from the files, in order, without gaps.
	f.ring = f.ring[len(f.ring)-1:]
	got, err := f.List(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID != got[i-1].ID+1 {
			t.Fatalf("gap or disorder at %d: %d after %d", i, got[i].ID, got[i-1].ID)
		}
	}
	if len(got) == 0 || got[len(got)-1].ID != 60 || len(got) >= 60 {
		t.Fatalf("listed %d records, last %+v (the oldest files must be gone)", len(got), got[len(got)-1])
	}
}

// A full disk: the append fails, the rider aborts the commit, nothing is committed.
func TestFileFullDiskAbortsCommit(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f, err := OpenFile("/dev/full")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := state.Open(context.Background(), state.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	r := f.Rider(rec(1))
	ctx := state.WithRider(context.Background(), r)
	st.Lock()
	_, err = st.Commit(ctx, []state.Op{{Key: state.PinKey("www.example.net."), Value: []byte(`{"pool":"b"}`)}})
	st.Unlock()
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("commit with a full audit disk: %v", err)
	}
	if r.Committed() || len(st.Data().Entries) != 0 {
		t.Fatalf("the write happened without its record: %v", st.Data().Entries)
	}
	if err := f.Check(); err != nil {
		t.Fatalf("check: %v", err) // /dev/full opens; it only refuses data
	}
}

// The record rides along a commit: before and after are the key's values.
func TestRiderFillsBeforeAfter(t *testing.T) {
	m := NewMemory(10)
	st, _ := state.Open(context.Background(), state.NewMemory())
	key := state.PinKey("www.example.net.")
	for i, v := range []string{`{"pool":"a"}`, `{"pool":"b"}`} {
		r := m.Rider(rec(i))
		st.Lock()
		_, err := st.Commit(state.WithRider(context.Background(), r), []state.Op{{Key: key, Value: []byte(v)}})
		st.Unlock()
		if err != nil || !r.Committed() {
			t.Fatal(err)
		}
	}
	got, _ := m.List(context.Background(), -1, 10)
	if len(got) != 2 || string(got[1].Before) != `{"pool":"a"}` || string(got[1].After) != `{"pool":"b"}` || got[1].Resource != key || got[0].Before != nil {
		b, _ := json.Marshal(got)
		t.Fatalf("records: %s", b)
	}
}

// BenchmarkFileAppend is the cost the audit FILE adds to a write: one appended line and
// its fsync.
func BenchmarkFileAppend(b *testing.B) {
	f, err := OpenFile(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rec(0)
	r.After = json.RawMessage(`{"mode":"down"}`)
	for b.Loop() {
		if err := f.Append(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// A commit of several keys (a whole-configuration write) records every key's values.
func TestRiderSeveralKeys(t *testing.T) {
	m := NewMemory(10)
	st, _ := state.Open(context.Background(), state.NewMemory())
	ops := []state.Op{{Key: "config/pools/a", Value: []byte(`{"lb":"all"}`)}, {Key: "config/domains/www.example.net.", Value: []byte(`{"ttl":5}`)}}
	r := m.Rider(rec(0))
	st.Lock()
	_, err := st.Commit(state.WithRider(context.Background(), r), ops)
	st.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := m.List(context.Background(), -1, 1)
	if got[0].Resource != "config/" || string(got[0].After) != `{"config/domains/www.example.net.":{"ttl":5},"config/pools/a":{"lb":"all"}}` ||
		string(got[0].Before) != `{"config/domains/www.example.net.":null,"config/pools/a":null}` {
		t.Fatalf("%s %s %s", got[0].Resource, got[0].Before, got[0].After)
	}
}
