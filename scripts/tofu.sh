#!/usr/bin/env bash
# Builds OpenTofu (the tofu CLI) for the provider's acceptance tests into .cache/bin/tofu, when
# it is not there. It is built from source through the Go module proxy: `go mod download` of
# github.com/opentofu/opentofu at the pinned version, a writable copy of the module directory,
# and `go build ./cmd/tofu` inside it (the module's own go.mod and go.sum pin its
# dependencies). With empty Go caches this takes about 6 minutes on 2 cores; with them warm,
# seconds. A copy is kept in GOPATH/bin, so a fresh clone (CI) on the same machine does not
# build it again.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${GTM_TOFU_VERSION:-v1.12.6}"
out=.cache/bin/tofu
kept="$(go env GOPATH)/bin/gtm-tofu-$version"

have() {
	[ -x "$1" ] || return 1
	local v
	v="$("$1" version 2>/dev/null)" || return 1
	[[ "$v" == *"OpenTofu ${version}"* ]]
}

have "$out" && exit 0
mkdir -p .cache/bin
if have "$kept"; then
	cp "$kept" "$out"
	exit 0
fi

echo "building OpenTofu $version for the provider tests (cold: several minutes)" >&2
tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
if ! (
	dir="$(go mod download -json "github.com/opentofu/opentofu@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -n "$dir" ] || { echo "go mod download gave no directory" >&2; exit 1; }
	cp -r "$dir" "$tmp/src"
	chmod -R u+w "$tmp/src"
	cd "$tmp/src"
	# The version the binary reports comes from version/VERSION in the module.
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$tmp/tofu" ./cmd/tofu
) >"$tmp/log" 2>&1; then
	cat "$tmp/log" >&2
	exit 1
fi
mkdir -p "$(dirname "$kept")"
cp "$tmp/tofu" "$kept"
cp "$tmp/tofu" "$out"
if ! have "$out"; then
	echo "built tofu does not report OpenTofu $version: $("$out" version 2>&1 | head -1)" >&2
	exit 1
fi
