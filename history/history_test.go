package history

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestAnswersBuckets(t *testing.T) {
	const t0 = 1_800_000_000 - 1_800_000_000%60 // a minute's start
	cases := []struct {
		name string
		adds []int64 // unix seconds
		now  int64
		want map[int]uint64 // bucket index (0 oldest, 59 current) -> count
	}{
		{"none", nil, t0, map[int]uint64{}},
		{"current minute", []int64{t0, t0 + 59}, t0 + 59, map[int]uint64{59: 2}},
		{"previous minutes", []int64{t0, t0 + 60, t0 + 61, t0 + 180}, t0 + 180, map[int]uint64{56: 1, 57: 2, 59: 1}},
		{"older than an hour is gone", []int64{t0, t0 + 3600}, t0 + 3600, map[int]uint64{59: 1}},
		{"a bucket reused an hour later starts at zero", []int64{t0, t0, t0 + 3600}, t0 + 3600, map[int]uint64{59: 1}},
		{"59 minutes back is kept", []int64{t0, t0 + 3599}, t0 + 3599, map[int]uint64{0: 1, 59: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a Answers
			for _, s := range tc.adds {
				a.AddAt(s)
			}
			got := a.Counts(tc.now)
			if len(got) != Buckets {
				t.Fatalf("%d buckets", len(got))
			}
			for i, c := range got {
				if c != tc.want[i] {
					t.Errorf("bucket %d: %d, want %d (all %v)", i, c, tc.want[i], got)
				}
			}
		})
	}
	if s := Start(t0 + 59); s != t0-59*60 {
		t.Errorf("Start: %d, want %d", s, t0-59*60)
	}
}

func TestAnswersConcurrent(t *testing.T) {
	var a Answers
	const t0 = 1_800_000_000 - 1_800_000_000%60
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				a.AddAt(t0 + int64((g+i)%2)*60) // two minutes (two buckets) at once
			}
		}()
	}
	wg.Wait()
	got := a.Counts(t0 + 60)
	if got[58]+got[59] != 8000 || got[58] != 4000 {
		t.Fatalf("counts %d + %d, want 4000 + 4000", got[58], got[59])
	}
}

func TestAnswersAddAllocatesNothing(t *testing.T) {
	var a Answers
	if n := testing.AllocsPerRun(1000, a.Add); n != 0 {
		t.Fatalf("Add allocates %v times", n)
	}
	var nilA *Answers
	nilA.Add() // a pool without a counter counts nothing, and does not panic
}

func TestTimeline(t *testing.T) {
	r := NewRegistry()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	note := func(at time.Duration, st State) {
		p := r.Begin(t0.Add(at))
		p.Note("eu", "192.0.2.1", st)
		p.End()
	}
	note(0, Up)
	note(time.Second, Up) // no change
	note(10*time.Minute, Down)
	note(20*time.Minute, Drained)
	note(30*time.Minute, Up)
	cases := []struct {
		name string
		from time.Duration
		want []Change
	}{
		{"from before the first look", -time.Hour, []Change{{t0, Up}, {t0.Add(10 * time.Minute), Down}, {t0.Add(20 * time.Minute), Drained}, {t0.Add(30 * time.Minute), Up}}},
		{"from inside a state", 15 * time.Minute, []Change{{t0.Add(15 * time.Minute), Down}, {t0.Add(20 * time.Minute), Drained}, {t0.Add(30 * time.Minute), Up}}},
		{"from a change", 20 * time.Minute, []Change{{t0.Add(20 * time.Minute), Drained}, {t0.Add(30 * time.Minute), Up}}},
		{"after the last change", time.Hour, []Change{{t0.Add(time.Hour), Up}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := r.Timeline("eu", "192.0.2.1", t0.Add(tc.from))
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].At.Equal(tc.want[i].At) || got[i].State != tc.want[i].State {
					t.Errorf("change %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
	if r.Timeline("eu", "192.0.2.9", t0) != nil {
		t.Error("an address never seen has a timeline")
	}
}

func TestTimelineBounded(t *testing.T) {
	r := NewRegistry()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 * MaxChanges {
		p := r.Begin(t0.Add(time.Duration(i) * time.Second))
		p.Note("eu", "a", State(1+i%2))
		p.End()
	}
	got := r.Timeline("eu", "a", t0.Add(-time.Hour))
	if len(got) != MaxChanges {
		t.Fatalf("%d changes kept, want %d", len(got), MaxChanges)
	}
	if last := got[len(got)-1]; last.State != State(1+(3*MaxChanges-1)%2) || !last.At.Equal(t0.Add(time.Duration(3*MaxChanges-1)*time.Second)) {
		t.Errorf("last change %v", last)
	}
}

func TestForgetting(t *testing.T) {
	r := NewRegistry()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := r.Begin(t0)
	p.Note("gone", "a", Up)
	p.Note("kept", "b", Up)
	p.End()
	r.AnswersOf("gone").AddAt(t0.Unix())
	r.AnswersOf("kept")

	// Not seen for less than a window: kept.
	p = r.Begin(t0.Add(30 * time.Minute))
	p.Note("kept", "b", Up)
	p.End()
	if r.Timeline("gone", "a", t0) == nil {
		t.Fatal("an address gone for 30 minutes is forgotten")
	}
	if _, ok := r.answers["gone"]; !ok {
		t.Fatal("a pool with answers in the last hour is forgotten")
	}
	// Past the window: dropped.
	p = r.Begin(t0.Add(Window + time.Minute))
	p.Note("kept", "b", Up)
	p.End()
	if r.Timeline("gone", "a", t0) != nil {
		t.Error("an address gone for over an hour is still kept")
	}
	if _, ok := r.answers["gone"]; ok {
		t.Error("a pool gone with no answers in the last hour is still kept")
	}
	if _, ok := r.answers["kept"]; !ok {
		t.Error("a live pool's counter was dropped")
	}
}

// BenchmarkPass is one sampler pass over 10,000 addresses in 1,000 pools, none changing.
func BenchmarkPass(b *testing.B) {
	r := NewRegistry()
	names := make([][2]string, 10_000)
	for i := range names {
		names[i] = [2]string{fmt.Sprintf("pool-%d", i/10), fmt.Sprintf("192.0.%d.%d", i/250, i%250)}
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		p := r.Begin(now)
		for _, n := range names {
			p.Note(n[0], n[1], Up)
		}
		p.End()
	}
}

func BenchmarkAnswersAdd(b *testing.B) {
	var a Answers
	b.ReportAllocs()
	for b.Loop() {
		a.Add()
	}
}
