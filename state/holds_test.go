package state

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Holds persist in the file and come back into the cells after a restart; writes are
// compare-and-set on the domain's key, and a release clears the cells.
func TestHoldsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := openFileStore(t, path)
	c := s.HoldCell("www.gtm.test.", "default")
	if c.Get() != nil {
		t.Fatal("a new cell is not held")
	}
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := s.SetHold(ctx, "www.gtm.test.", "default", "b", since, 0); err != nil {
		t.Fatal(err)
	}
	if h := c.Get(); h == nil || h.Pool != "b" || !h.Since.Equal(since) {
		t.Fatalf("cell after SetHold: %+v", h)
	}
	// A second writer that read before the first wrote loses (a fleet's second node).
	if err := s.SetHold(ctx, "www.gtm.test.", "default", "c", since, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale SetHold: %v, want ErrConflict", err)
	}
	_, rev := s.Data().Holds("www.gtm.test.")
	if err := s.SetHold(ctx, "www.gtm.test.", "country:DE", "d", since, rev); err != nil {
		t.Fatal(err)
	}

	// Restart: a new store over the same file.
	s2 := openFileStore(t, path)
	if h := s2.HoldCell("www.gtm.test.", "default").Get(); h == nil || h.Pool != "b" {
		t.Fatalf("after restart: %+v", h)
	}
	if h := s2.HoldCell("www.gtm.test.", "country:DE").Get(); h == nil || h.Pool != "d" {
		t.Fatalf("after restart, second route: %+v", h)
	}
	routes, err := s2.ReleaseHolds(ctx, "www.gtm.test.")
	if err != nil || len(routes) != 2 {
		t.Fatalf("ReleaseHolds: %v %v", routes, err)
	}
	if s2.HoldCell("www.gtm.test.", "default").Get() != nil {
		t.Fatal("released, the cell is still held")
	}
	if routes, err := s2.ReleaseHolds(ctx, "www.gtm.test."); err != nil || len(routes) != 0 {
		t.Fatalf("second release: %v %v", routes, err)
	}
	s3 := openFileStore(t, path)
	if s3.HoldCell("www.gtm.test.", "default").Get() != nil {
		t.Fatal("the release did not persist")
	}
}
