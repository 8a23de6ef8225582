package audit

import (
	"context"
	"sync"
	"time"
)

// Memory keeps the last records in the process: what a single node without `audit FILE`
// has (the API lists them; a restart empties it).
type Memory struct {
	mu   sync.Mutex
	ring []Record
	size int
	next uint64
}

// NewMemory keeps the last size records. IDs start at the process's start time in
// microseconds, as event ids do, so they grow across restarts.
func NewMemory(size int) *Memory {
	return &Memory{size: max(size, 1), next: uint64(time.Now().UnixMicro())}
}

// Append implements Log.
func (m *Memory) Append(_ context.Context, rec *Record) error {
	m.add(rec)
	return nil
}

func (m *Memory) add(rec *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.ID = m.next
	m.next++
	if len(m.ring) == m.size {
		m.ring = append(m.ring[:0], m.ring[1:]...)
	}
	m.ring = append(m.ring, *rec)
	return nil
}

// Rider implements Log.
func (m *Memory) Rider(rec *Record) Rider { return &selfRider{rec: rec, appendFn: m.add} }

// List implements Log.
func (m *Memory) List(_ context.Context, since int64, limit int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return pick(m.ring, since, limit), nil
}

// pick returns up to limit records of recs (oldest first) above since, or the latest limit
// when since < 0.
func pick(recs []Record, since int64, limit int) []Record {
	out := []Record{}
	if since < 0 {
		from := max(len(recs)-limit, 0)
		return append(out, recs[from:]...)
	}
	for _, r := range recs {
		if r.ID > uint64(since) {
			out = append(out, r)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// Where implements Log.
func (m *Memory) Where() string { return "memory (the last records only; `audit FILE` keeps them)" }

// Close implements Log.
func (m *Memory) Close() error { return nil }
