// Package testtool finds the real programs the tests run (etcd, kube-apiserver, ...) and
// ends a test that lacks one: a skip on a developer's machine, a failure under CI=true, so
// a suite never passes because a tool is missing.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Missing ends the test for a missing tool: t.Skip, or t.Fatal under CI=true.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// ModuleRoot is the directory of the go.mod above the working directory ("" without one).
func ModuleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// Binary returns the program name to run: $env when set (it must exist), else the copy a
// script built into the module's .cache/bin, else one on $PATH. Without any it ends the test
// (Missing), naming script, which builds it.
func Binary(t testing.TB, env, name, script string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		Missing(t, fmt.Sprintf("%s=%s does not exist (bash %s builds it)", env, p, script))
	}
	if root := ModuleRoot(); root != "" {
		p := filepath.Join(root, ".cache", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(t, fmt.Sprintf("no %s binary: set %s or run bash %s", name, env, script))
	return ""
}
