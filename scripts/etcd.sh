#!/usr/bin/env bash
# Builds the etcd server the cluster tests run against into .cache/bin/etcd, when it is not
# there. etcd's own modules carry replace directives, so `go install ...@version` refuses
# them: a throw-away module that calls etcdmain.Main is built instead, from the Go module
# proxy, at the version of the client in go.mod. With empty Go caches this takes about
# 3.5 minutes on 2 cores (~300 MB of modules, ~320 MB of build cache); with them warm, about
# 15 seconds. A copy is kept in GOPATH/bin, so a fresh clone (CI) on the same machine does
# not build it again.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${GTM_ETCD_VERSION:-$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)}"
out=.cache/bin/etcd
kept="$(go env GOPATH)/bin/gtm-etcd-$version"

have() {
	[ -x "$1" ] || return 1
	local v
	v="$("$1" --version 2>/dev/null)" || return 1
	[[ "$v" == *"etcd Version: ${version#v}"* ]]
}

have "$out" && exit 0
mkdir -p .cache/bin
if have "$kept"; then
	cp "$kept" "$out"
	exit 0
fi

echo "building etcd $version for the cluster tests (cold: several minutes)" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/main.go" <<'GO'
// Command etcd is etcd's server, built from its module for the tests of coredns-gtm.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
if ! (
	cd "$tmp"
	go mod init gtm-etcd-build
	go get "go.etcd.io/etcd/server/v3@$version"
	go mod tidy
	CGO_ENABLED=0 go build -trimpath -o etcd .
) >"$tmp/log" 2>&1; then
	cat "$tmp/log" >&2
	exit 1
fi
mkdir -p "$(dirname "$kept")"
cp "$tmp/etcd" "$kept"
cp "$tmp/etcd" "$out"
have "$out"
