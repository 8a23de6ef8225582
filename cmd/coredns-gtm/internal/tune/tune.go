// Package tune sets the runtime defaults of the shipped coredns-gtm binary.
package tune

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// GOGC stays Go's default (100): 200 was measured (docs/BENCHMARKS.md) at +3-6% QPS on
// the weighted pool, mixed on the geo path, and +8 MiB RSS here, more heap headroom at
// scale where RSS is over its target already.

// memLimitShare is the part of a cgroup's memory limit given to GOMEMLIMIT when GOMEMLIMIT
// is unset: the collector works harder near the limit instead of the container being
// killed. Without a cgroup limit there is no memory limit, as in Go.
const memLimitShare = 0.9

// defaultGoroutineStack is the starting stack the runtime should give new goroutines
// (GTM_GOROUTINE_STACK=BYTES overrides it, 0 turns it off). Every UDP query runs in a
// fresh goroutine; started at 2 KiB its stack is copied to 4 KiB while the request is
// unpacked and again on the geo path. See keepStackStart.
const defaultGoroutineStack = 8 << 10

// Defaults sets the binary's runtime defaults (docs/BENCHMARKS.md, "Runtime settings").
// Each applies only when the environment does not set it, so GOMEMLIMIT and
// GTM_GOROUTINE_STACK override them as usual (and GOGC works as in any Go program).
func Defaults() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if limit := cgroupMemoryLimit(); limit > 0 {
			debug.SetMemoryLimit(int64(float64(limit) * memLimitShare))
		}
	}
	target := uint64(defaultGoroutineStack)
	if v, set := os.LookupEnv("GTM_GOROUTINE_STACK"); set {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			os.Stderr.WriteString("GTM_GOROUTINE_STACK: not a number of bytes: " + v + "\n")
			os.Exit(1)
		}
		target = n
	}
	if target > 0 {
		go keepStackStart(target)
	}
}

// cgroupMemoryLimit is this process's cgroup memory limit in bytes (v2, else v1), or 0.
func cgroupMemoryLimit() uint64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 || n >= 1<<60 { // "max", or v1's "unlimited" (a huge number)
			return 0
		}
		return n
	}
	return 0
}

// keepStackStart keeps the runtime's starting goroutine stack at target bytes. Go sizes a
// new goroutine's stack by the average stack in use that the last GC saw over all
// goroutines (runtime.gcComputeStartingStackSize, GODEBUG adaptivestackstart), rounded up
// to a power of two. A server's long-lived goroutines are parked on shallow stacks, so the
// average stays low and every query goroutine grows its stack, copying it each time. This
// parks goroutines on stacks of about 6 KiB ("ballast"), adding some after each GC that
// left the runtime's metric below target and letting some go while it is above: with
// 8 KiB the query path's stack no longer grows. Queries in flight when a GC looks count
// too, so a saturated server needs a few hundred; the cost is their stacks (8 KiB each, at
// most 4 MiB). If the runtime stops sizing stacks this way, the metric
// never reaches target and the ballast stops at its bound, idle.
func keepStackStart(target uint64) {
	const (
		step = 64  // a saturated server needs a few hundred: there within a second
		max  = 512 // at most 4 MiB of stacks
	)
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	var parked []chan struct{}
	park := func(n int) {
		for range n {
			c := make(chan struct{})
			parked = append(parked, c)
			go ballast(ballastFrames, c)
		}
	}
	park(2 * step) // enough for an idle server; the loop adds what load needs
	var seen uint64
	for ; ; time.Sleep(250 * time.Millisecond) {
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
			return
		}
		if gcs := s[1].Value.Uint64(); gcs == seen {
			continue // the size changes at a GC: nothing new to act on
		} else {
			seen = gcs
		}
		switch cur := s[0].Value.Uint64(); {
		case cur < target && len(parked) < max:
			park(step)
		case cur > target && len(parked) >= step:
			for _, c := range parked[len(parked)-step:] {
				close(c)
			}
			parked = parked[:len(parked)-step]
		}
	}
}

// ballastFrames of ballast's ~560 bytes are a stack of ~6 KiB in use: above the 3.2 KiB
// average that rounds up to an 8 KiB start (the average plus the runtime's 928-byte guard,
// to a power of two), below the 7.2 KiB that would round to 16 KiB.
const ballastFrames = 10

// ballast recurses n frames deep and waits there until stop closes.
//
//go:noinline
func ballast(n int, stop <-chan struct{}) byte {
	var pad [512]byte
	pad[n&511] = byte(n)
	if n == 0 {
		<-stop
		return pad[0]
	}
	return ballast(n-1, stop) + pad[(n*7)&511]
}
