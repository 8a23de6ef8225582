#!/usr/bin/env bash
# Scenarios c (A) and h (HTTPS) of bench/run.sh at the same time, for a machine that other
# work loads: both servers on CPU 0 and both dnsperf on CPU 1, so whatever else runs hits
# both alike, where back-to-back runs see different loads (docs/BENCHMARKS.md, HTTPS):
#   bash bench/pair.sh BINARY SECONDS ROUNDS
# Per round: each server's QPS and CPU time per answered query (its threads' schedstat),
# and h/c by both. CPU per query is the steadier (the two QPS also depend on how the
# scheduler splits CPU 0 between them).
set -euo pipefail
bin=$1 secs=$2 rounds=$3
w=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$w"' EXIT
conf() { # PORT HTTPS
	cat <<EOC
bench.test:$1 {
  gtm {
    pool web {
      address 192.0.2.1 weight 1
      address 192.0.2.2 weight 2
      address 192.0.2.3 weight 3
      address 192.0.2.4 weight 4
    }
    domain www.bench.test {
      route default web
      $2
    }
  }
}
EOC
}
conf 15310 "" > "$w/c.conf"
conf 15311 "https {
        alpn h3 h2
      }" > "$w/h.conf"
echo "www.bench.test A" > "$w/c.q"
echo "www.bench.test HTTPS" > "$w/h.q"
taskset -c 0 "$bin" -conf "$w/c.conf" > "$w/c.log" 2>&1 & pids+=($!); pc=$!
taskset -c 0 "$bin" -conf "$w/h.conf" > "$w/h.log" 2>&1 & pids+=($!); ph=$!
for p in 15310 15311; do
	for _ in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.1 -p $p www.bench.test A >/dev/null 2>&1 && break; sleep 0.1; done
done
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
run() { taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$secs" -c 16 -q 256 > "$3" 2>&1; }
run 15310 "$w/c.q" /dev/null & w1=$!; run 15311 "$w/h.q" /dev/null & w2=$!; wait $w1 $w2 # warm up
for r in $(seq "$rounds"); do
	c0=$(cpu_ns $pc) h0=$(cpu_ns $ph)
	run 15310 "$w/c.q" "$w/c.out" & j1=$!
	run 15311 "$w/h.q" "$w/h.out" & j2=$!
	wait $j1 $j2
	c1=$(cpu_ns $pc) h1=$(cpu_ns $ph)
	qc=$(awk '/Queries per second/ {print $4}' "$w/c.out"); qh=$(awk '/Queries per second/ {print $4}' "$w/h.out")
	nc=$(awk '/Queries completed/ {print $3}' "$w/c.out"); nh=$(awk '/Queries completed/ {print $3}' "$w/h.out")
	awk -v r="$r" -v qc="$qc" -v qh="$qh" -v c0="$c0" -v c1="$c1" -v h0="$h0" -v h1="$h1" -v nc="$nc" -v nh="$nh" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
		cc = (c1 - c0) / 1000 / nc; ch = (h1 - h0) / 1000 / nh
		printf "round %d load %s  c %.0f qps %.2f us/q  h %.0f qps %.2f us/q  h/c qps %.3f  cpu c/h %.3f\n", r, l, qc, cc, qh, ch, qh / qc, cc / ch }'
done
