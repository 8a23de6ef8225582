#!/usr/bin/env bash
# Builds the Kubernetes API server the discovery tests run against into .cache/bin/kube-apiserver,
# when it is not there. It comes from the k8s.io/kubernetes module at the release whose staging
# modules (k8s.io/api, apimachinery, client-go, ...) match the client-go in go.mod: the module
# directory is copied out of the module cache, every ./staging/src/k8s.io/X replace directive
# is pointed at k8s.io/X at that release instead, and ./cmd/kube-apiserver is built with
# GOWORK=off GOFLAGS=-mod=mod. Cold, this takes 5-10 minutes on 2 cores; a copy is kept in
# GOPATH/bin, so another clone on the same machine does not build it again.
set -euo pipefail
cd "$(dirname "$0")/.."

staging="${GTM_KUBE_STAGING_VERSION:-$(go list -m -f '{{.Version}}' k8s.io/client-go)}" # v0.37.1
version="${GTM_KUBE_VERSION:-v1.${staging#v0.}}"                                            # v1.37.1
out=.cache/bin/kube-apiserver
kept="$(go env GOPATH)/bin/gtm-kube-apiserver-$version"

have() {
	[ -x "$1" ] || return 1
	local v
	v="$("$1" --version 2>/dev/null)" || return 1
	[[ "$v" == "Kubernetes $version"* ]]
}

have "$out" && exit 0
mkdir -p .cache/bin
if have "$kept"; then
	cp "$kept" "$out"
	exit 0
fi

echo "building kube-apiserver $version for the discovery tests (cold: 5-10 minutes)" >&2
tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
if ! (
	cd "$tmp"
	dir="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -n "$dir" ] || { echo "go mod download k8s.io/kubernetes@$version gave no directory"; exit 1; }
	cp -r "$dir" "$tmp/k"
	chmod -R u+w "$tmp/k"
	cd "$tmp/k"
	for m in $(go mod edit -json | sed -n 's/.*"Path": "\(k8s.io\/[^"]*\)".*/\1/p' | sort -u); do
		if grep -q "^[[:space:]]*$m => ./staging/" go.mod; then
			go mod edit -replace "$m=$m@$staging"
		fi
	done
	# The version stamp kube-apiserver --version prints (and have() checks).
	ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitVersion=$version"
	GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o kube-apiserver ./cmd/kube-apiserver
) >"$tmp/log" 2>&1; then
	tail -50 "$tmp/log" >&2
	exit 1
fi
mkdir -p "$(dirname "$kept")"
cp "$tmp/k/kube-apiserver" "$kept"
cp "$tmp/k/kube-apiserver" "$out"
have "$out"
