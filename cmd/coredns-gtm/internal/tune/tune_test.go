package tune

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestCgroupMemoryLimitParses(t *testing.T) {
	// Whatever this machine's cgroup says, the answer is a limit or 0, never "max" misread.
	got := cgroupMemoryLimit()
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err == nil && string(b) == "max\n" && got != 0 {
		t.Fatalf("memory.max is max, limit %d", got)
	}
}

// keepStackStart raises the runtime's starting goroutine stack to its target, and a
// goroutine started afterwards gets that stack.
func TestKeepStackStart(t *testing.T) {
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Skip("this Go has no /gc/stack/starting-size:bytes")
	}
	const target = 8 << 10
	runtime.GC()
	runtime.GC()
	metrics.Read(s)
	t.Logf("starting stack without ballast: %d bytes", s[0].Value.Uint64())
	if s[0].Value.Uint64() >= target {
		t.Skipf("the starting stack is already %d bytes", s[0].Value.Uint64())
	}
	go keepStackStart(target)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		metrics.Read(s)
		if s[0].Value.Uint64() == target {
			t.Logf("%d bytes after %v", target, time.Since(deadline.Add(-60*time.Second)))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("starting stack %d bytes after 60 s, want %d", s[0].Value.Uint64(), target)
}
