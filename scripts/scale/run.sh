#!/usr/bin/env bash
# Scale test (not part of `make test`): one coredns-gtm probing N loopback addresses over HTTP
# every second. Reports probes per second achieved and the server's CPU and RSS.
#   bash scripts/scale/run.sh [ADDRESSES] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
secs=${2:-60}
port=18080
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/coredns-gtm" ./cmd/coredns-gtm
go build -o "$work/target" ./scripts/scale/target

# N addresses 127.1.x.y, 100 per pool, one domain per pool.
{
	echo ".:0 {"
	echo "  bind 127.0.0.1"
	echo "  gtm gtm.example.net {"
	echo "    healthcheck web {"
	echo "      protocol http"
	echo "      port $port"
	echo "      interval 1s"
	echo "      timeout 900ms"
	echo "    }"
	pools=$(( (n + 99) / 100 ))
	i=0
	for p in $(seq 0 $((pools - 1))); do
		echo "    pool p$p {"
		echo "      healthcheck web"
		for y in $(seq 1 100); do
			[ $i -lt $n ] || break
			echo "      address 127.1.$((p / 2)).$(( (p % 2) * 100 + y ))"
			i=$((i + 1))
		done
		echo "    }"
		echo "    domain d$p.gtm.example.net {"
		echo "      route default p$p"
		echo "    }"
	done
	echo "  }"
	echo "}"
} > "$work/Corefile"

"$work/target" -listen ":$port" > "$work/target.log" &
sleep 0.5
"$work/coredns-gtm" -conf "$work/Corefile" > "$work/server.log" 2>&1 &
pid=$!
sleep 5 # first probes, jitter settling
ticks0=$(awk '{print $14 + $15}' /proc/$pid/stat)
lines0=$(wc -l < "$work/target.log")
sleep "$secs"
ticks1=$(awk '{print $14 + $15}' /proc/$pid/stat)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hz=$(getconf CLK_TCK)
probes=$(tail -n +"$((lines0 + 1))" "$work/target.log" | head -n "$secs" | awk '{s += $2; n++} END {printf "%.0f", s / n}')
cpu=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}')
down=$(grep -c "is down" "$work/server.log" || true)

cat <<TABLE
| addresses | interval | probes/s achieved | server CPU (% of one core) | server RSS (MiB) | addresses marked down |
|---|---|---|---|---|---|
| $n | 1s | $probes | $cpu | $((rss / 1024)) | $down |
TABLE
