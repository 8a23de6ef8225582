#!/usr/bin/env bash
# Alternating A/B runs of bench/run.sh over prebuilt binaries:
#   bash bench/ab.sh SECONDS ROUNDS 'NAME|BINARY|SCENARIOS|ENV...' ...
#   bash bench/ab.sh 6 3 'base|/tmp/a|c d|' 'new|/tmp/b|c d|' 'new-gogc100|/tmp/b|c d|GOGC=100'
# Each round runs every variant once (one saturation run per scenario, then the fixed-load
# latency run), in the order given, so slow drift of the machine spreads over all of them.
# Prints one line per run and, at the end, each variant's median QPS, p99 and server CPU per
# query at saturation per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=$1 rounds=$2
shift 2
out=$(mktemp)
geodb=$(mktemp -d)
trap 'rm -rf "$out" "$geodb"' EXIT
go run ./internal/mkgeodb -city "$geodb/city.mmdb" -asn "$geodb/asn.mmdb" >/dev/null
export BENCH_GEODB=$geodb
for r in $(seq "$rounds"); do
	for v in "$@"; do
		IFS='|' read -r name bin scen envs <<<"$v"
		# shellcheck disable=SC2086 # envs is a list of NAME=VALUE words
		env $envs BENCH_BIN="$bin" BENCH_ONLY="$scen" bash bench/run.sh "$secs" 1 2>&1 >/dev/null |
			awk -v n="$name" -v r="$r" '/ qps / {
				s = $1; split($0, p, "p99.9: "); split(p[2], f, " [|] ");
				for (i = 1; i <= NF; i++) { if ($(i) == "qps") qps = $(i - 1); if ($(i) == "cpu/query:") cpu = $(i + 1) }
				printf "%s %s %s %.0f %s %s %s\n", n, r, s, qps, f[2], f[4], cpu }' | tee -a "$out"
	done
done
echo
echo "| variant | scenario | QPS per round | median QPS | p99 per round (µs) | median p99 (µs) | CPU per query per round (µs) | median CPU per query (µs) |"
echo "|---|---|---|---|---|---|---|---|"
awk '{ k = $1 "|" $3; q[k] = q[k] " " $4; p[k] = p[k] " " $6; c[k] = c[k] " " $7; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
	function med(s,   a, m, i, j, t) { m = split(s, a, " "); for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }; return a[int((m + 1) / 2)] }
	END { for (i = 1; i <= n; i++) { split(order[i], kk, "|"); printf "| %s | %s |%s | %s |%s | %s |%s | %s |\n", kk[1], kk[2], q[order[i]], med(q[order[i]]), p[order[i]], med(p[order[i]]), c[order[i]], med(c[order[i]]) } }' "$out"
