package test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPrometheusAlerts checks docs/prometheus-alerts.yaml with promtool (Debian's prometheus
// package, installed by scripts/test-deps.sh) and runs its unit tests: each rule parses, and
// the tested ones fire on the series they should and not on the others.
func TestPrometheusAlerts(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing: run scripts/test-deps.sh (it installs Debian's prometheus package)")
		}
		t.Skip("promtool is missing (scripts/test-deps.sh installs it): the alert rules are not checked")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus-alerts.yaml"},
		{"test", "rules", "prometheus-alerts.test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../docs"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
