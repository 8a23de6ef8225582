package gtm

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/coredns/caddy"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/control"
	"github.com/gtm-dns/coredns-gtm/state"
)

// The control layer at the scale of issue 12 item 7: 10,000 domains of two routes over 2,000
// pools of 25 addresses (50,000), no health checks. Numbers are in docs/BENCHMARKS.md,
// "Control layer at scale":
//
//	go test -run '^$' -bench Scale -benchmem ./plugin
const (
	scaleDomains = 10000
	scalePools   = 2000
	scalePer     = 25
)

func scaleCorefile() string {
	var b strings.Builder
	b.WriteString("gtm scale.test {\n")
	n := 0
	for p := range scalePools {
		fmt.Fprintf(&b, "  pool p%d {\n", p)
		for range scalePer {
			fmt.Fprintf(&b, "    address 10.%d.%d.%d\n", n>>16&255, n>>8&255, n&255)
			n++
		}
		b.WriteString("  }\n")
	}
	for d := range scaleDomains {
		fmt.Fprintf(&b, "  domain d%d.scale.test {\n    route net:192.0.2.0/24 p%d p%d\n    route default p%d\n  }\n", d, d%scalePools, (d+1)%scalePools, (d+2)%scalePools)
	}
	b.WriteString("}\n")
	return b.String()
}

// scaleState is the Corefile's block and a state holding one API pool and one API domain.
func scaleState(b *testing.B) (*block, *state.Store) {
	b.Helper()
	blk, err := parse(caddy.NewTestController("dns", scaleCorefile()))
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(context.Background(), state.NewMemory())
	if err != nil {
		b.Fatal(err)
	}
	_, err = st.Commit(context.Background(), []state.Op{
		{Key: state.ConfigKey("pools", "api-pool"), Value: []byte(`{"addresses":[{"address":"198.51.100.1"}]}`)},
		{Key: state.ConfigKey("domains", "api.scale.test."), Value: []byte(`{"routes":[{"selector":"default","pools":["api-pool"]}]}`)},
	})
	if err != nil {
		b.Fatal(err)
	}
	return blk, st
}

// BenchmarkScaleParse is the Corefile side of a reload: parsing and validating the block.
func BenchmarkScaleParse(b *testing.B) {
	text := scaleCorefile()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(caddy.NewTestController("dns", text)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleValidate validates the merged configuration once.
func BenchmarkScaleValidate(b *testing.B) {
	blk, st := scaleState(b)
	res, errs := config.Merge(blk.res, blk.env(), blk.ttl, st.Data())
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	b.ReportAllocs()
	for b.Loop() {
		if errs := config.Validate(res, blk.env()); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkScaleMerge is config.Merge (decode the API resources, validate the whole).
func BenchmarkScaleMerge(b *testing.B) {
	blk, st := scaleState(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := config.Merge(blk.res, blk.env(), blk.ttl, st.Data()); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkScaleCompile compiles the merged configuration into a snapshot.
func BenchmarkScaleCompile(b *testing.B) {
	blk, st := scaleState(b)
	res, errs := config.Merge(blk.res, blk.env(), blk.ttl, st.Data())
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	cfg := (&GTM{block: blk}).controlConfig()
	b.ReportAllocs()
	for b.Loop() {
		control.NewStatic(cfg, res, st) // from scratch, as at start and reload
	}
}

// BenchmarkScaleWrite is what an API write of one pool costs the server: the handler's
// Merge of the state the write would leave, then the subscriber's Merge, compile and swap.
func BenchmarkScaleWrite(b *testing.B) {
	blk, st := scaleState(b)
	cfg := (&GTM{block: blk}).controlConfig()
	cfg.Store = st
	ctl, err := control.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := ctl.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ctl.Stop)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		op := state.Op{Key: state.ConfigKey("pools", "api-pool"), Value: fmt.Appendf(nil, `{"addresses":[{"address":"198.51.100.%d"}]}`, 2+i%250)}
		next, err := st.Data().Apply([]state.Op{op})
		if err != nil {
			b.Fatal(err)
		}
		if _, errs := ctl.Merge(next); len(errs) > 0 {
			b.Fatal(errs)
		}
		st.Lock()
		_, err = st.Commit(context.Background(), []state.Op{op}) // the block's subscriber compiles and swaps
		st.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScaleHeap reports the live heap of one compiled snapshot and its configuration
// (the Corefile's resources included), after a GC.
func BenchmarkScaleHeap(b *testing.B) {
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		blk, st := scaleState(b)
		res, _ := config.Merge(blk.res, blk.env(), blk.ttl, st.Data())
		cs := control.NewStatic((&GTM{block: blk}).controlConfig(), res, st)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/(1<<20), "live-MiB")
		runtime.KeepAlive(cs)
		runtime.KeepAlive(blk)
	}
}
