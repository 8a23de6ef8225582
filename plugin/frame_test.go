package gtm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// serveDNSFrameBudget is the most stack ServeDNS's own frame (locals) may take. Every UDP
// query runs in a fresh goroutine whose stack starts small and grows by copying; the geo
// path sits just below a growth step, and the last time ServeDNS's frame grew (by 56 bytes)
// the step moved into the mmdb walk and scenario d lost 20% end to end
// (docs/BENCHMARKS.md). The budget is today's frame: new work goes into functions of its
// own, and raising this number needs an A/B run of bench/run.sh scenario d.
const serveDNSFrameBudget = 0x2f0

var frameRE = regexp.MustCompile(`\(\*GTM\)\.ServeDNS STEXT.* args=(0x[0-9a-f]+) locals=(0x[0-9a-f]+)`)

// TestServeDNSFrame compiles this package as the shipped binary does (with
// cmd/coredns-gtm/default.pgo, which can change inlining, and without it) and fails when
// ServeDNS's frame is larger than serveDNSFrameBudget.
func TestServeDNSFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to compile with")
	}
	pgo, err := filepath.Abs("../cmd/coredns-gtm/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	builds := map[string]string{"without PGO": "off"}
	if _, err := os.Stat(pgo); err == nil {
		builds["with default.pgo"] = pgo
	}
	for name, profile := range builds {
		t.Run(name, func(t *testing.T) {
			// -gcflags applies to this package only; the compiler's output is cached and
			// replayed, so a second run costs little. No -race: the frame that matters is
			// the shipped build's.
			cmd := exec.Command(goBin, "build", "-pgo="+profile, "-gcflags=-S", "-o", os.DevNull, ".")
			cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go build -gcflags=-S: %v\n%.2000s", err, out)
			}
			m := frameRE.FindSubmatch(out)
			if m == nil {
				t.Fatal("no (*GTM).ServeDNS STEXT line in the compiler's -S output")
			}
			locals, err := strconv.ParseUint(string(m[2]), 0, 32)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ServeDNS args=%s locals=%#x (budget %#x)", m[1], locals, serveDNSFrameBudget)
			if locals > serveDNSFrameBudget {
				t.Errorf("ServeDNS's frame is %#x bytes, over its budget of %#x: move the new work "+
					"into a function of its own (see serveDNSFrameBudget and docs/BENCHMARKS.md)", locals, serveDNSFrameBudget)
			}
		})
	}
}
