#!/usr/bin/env bash
# Regenerates cmd/coredns-gtm/default.pgo, the profile `go build` uses for profile-guided
# optimisation of the main package (and everything it links):
#   bash scripts/pgo.sh [SECONDS_PER_RUN]     # default 20
# Builds the binary without PGO, runs the gtm scenarios of bench/run.sh (c: weighted pool,
# d: geo + ASN + ECS + health checks) at saturation with BENCH_PROFILE, and merges their
# CPU profiles (taken through CoreDNS's pprof plugin) into one with `go tool pprof -proto`.
# Rerun it when the query path changes much; a stale profile still builds, it just guides
# less. Needs what bench/run.sh needs (dnsperf; installs it when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -pgo=off -o "$work/coredns-gtm" ./cmd/coredns-gtm
BENCH_BIN="$work/coredns-gtm" BENCH_PROFILE="$work/prof" BENCH_ONLY="c d" bash bench/run.sh "$secs" 2 >/dev/null
# -hide drops gtm's ServeDNS frame from the stacks (its samples stay, with its callees):
# with its hot call edges PGO inlines answer, reply, ParseECS and remoteAddr into ServeDNS,
# whose frame then grows from 0x2f0 to 0x520 bytes, past the budget TestServeDNSFrame
# guards (the query goroutine's stack growth, docs/BENCHMARKS.md).
go tool pprof -proto -hide='GTM\)\.ServeDNS$' "$work/prof/c.pprof" "$work/prof/d.pprof" > "$work/default.pgo"
mv "$work/default.pgo" cmd/coredns-gtm/default.pgo
go tool pprof -top -nodecount=15 cmd/coredns-gtm/default.pgo 2>/dev/null | sed -n '1,25p'
