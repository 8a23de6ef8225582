#!/usr/bin/env bash
# End-to-end DNS benchmark on loopback (not part of `make test`):
#   bash bench/run.sh [SECONDS_PER_RUN] [RUNS]
#   BENCH_ONLY="c d" bash bench/run.sh 8 4     # a subset of the scenarios
#   BENCH_BIN=/tmp/gtm-a bash bench/run.sh     # a prebuilt binary instead of `go build`
#   BENCH_GEODB=DIR: DIR/city.mmdb and DIR/asn.mmdb instead of making them (internal/mkgeodb)
#   BENCH_PROFILE=DIR bash bench/run.sh        # also profile each server under saturation:
#       DIR/NAME.pprof (Go CPU profile through CoreDNS's pprof plugin, during the first
#       run) and DIR/NAME.perf.data (perf record -e cpu-clock -g, during the second run)
# The server inherits the environment (GOGC=100 bash bench/run.sh: the Go runtime defaults).
# Every server is pinned to CPU 0, dnsperf to CPU 1. Each scenario runs RUNS times for
# SECONDS_PER_RUN; the median QPS is reported with its latency and the server's RSS, and the
# server's CPU time per answered query at saturation ("cpu/query", the median run's, from its
# threads' schedstat): unlike the QPS it does not depend on how much of its core the server
# got, so it compares scenarios on a machine that other work loads (QPS = share / cpu/query).
# Scenarios:
#   a) coredns-gtm binary, whoami only          d) gtm geo+ASN routes, ECS from several countries,
#   b) same binary, file: 4 A records               TCP health checks running
#   c) gtm weighted pool of 4                    e) gdnsd geoip -> weighted, tcp_connect monitors
#                                                f) PowerDNS LUA pickwrandom (packet cache off / on)
#   d2) d with server and dnsperf both on CPUs 0-1  d2m) d2 with `multisocket 2` (SO_REUSEPORT)
#   g) gtm weighted pool of 4 as (c), signed: dnssec key, queries with DO (cached RRSIGs)
#   h) gtm weighted pool of 4 as (c) with `https`: HTTPS queries (hints from the A/AAAA decision)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
root=$PWD
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# BENCH_ONLY="c d" runs a subset of the scenarios (for A/B comparisons of a change).
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dig >/dev/null || need+=(bind9-dnsutils)
daemons=() # gdnsd and PowerDNS only for the scenarios that run them
if want e && ! command -v gdnsd >/dev/null; then need+=(gdnsd) daemons+=(gdnsd); fi
if want f && ! command -v pdns_server >/dev/null; then need+=(pdns-server pdns-backend-bind) daemons+=(pdns_server); fi
command -v dnssec-keygen >/dev/null || need+=(bind9-utils)
if [ ${#need[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian starts the daemons it just installed; they would compete for the CPU.
for d in ${daemons[@]+"${daemons[@]}"}; do
	pkill -x "$d" 2>/dev/null || true
done

if [ -n "${BENCH_BIN:-}" ]; then
	cp "$BENCH_BIN" "$work/coredns-gtm"
else
	go build -o "$work/coredns-gtm" ./cmd/coredns-gtm
fi
prof=${BENCH_PROFILE:-}
if [ -n "$prof" ]; then
	mkdir -p "$prof"
	prof=$(cd "$prof" && pwd)
fi
pprof_port=16060
go_pprof=0 # the server under test is a coredns-gtm (it has the pprof plugin)
# The CPUs of the server and of dnsperf (d2, d2m put both on both).
srv_cpus=0
perf_cpus=1
if [ -n "${BENCH_GEODB:-}" ] && [ -f "$BENCH_GEODB/city.mmdb" ]; then # made by an earlier run (bench/ab.sh)
	cp "$BENCH_GEODB/city.mmdb" "$BENCH_GEODB/asn.mmdb" "$work/"
else
	go run ./internal/mkgeodb -city "$work/city.mmdb" -asn "$work/asn.mmdb" >/dev/null
fi

port=15300
echo "www.bench.test A" > "$work/q.txt"

# ECS option (code 8) for a /24 of each country, as dnsperf -E wants it: family, source
# prefix, scope, address bytes, in hex.
ecs_hex() { # a.b.c.0
	local IFS=.
	set -- $1
	printf '0001%02x00%02x%02x%02x' 24 "$1" "$2" "$3"
}
subnets=(1.0.16.0 81.2.69.0 8.8.8.0 85.214.0.0 1.1.1.0)

wait_port() { # wait until something answers DNS on the port
	for _ in $(seq 100); do
		if dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" www.bench.test A >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "nothing answers on port $1" >&2
	return 1
}

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# cpu_ns PID: the CPU time the process's threads have run, in ns.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }

# measure NAME PID PORT [ECS...]: RUNS runs, one ECS option per run (cycled) if given.
# perf_extra holds more dnsperf flags for the scenario (-D: the DO bit).
declare -A QPS LAT RSS PCT CPUQ
perf_extra=()
measure() {
	local name=$1 pid=$2 p=$3
	shift 3
	local ecs=("$@") out q l c0 c1 n cpu results=()
	for i in $(seq 0 $((runs - 1))); do
		local opt=()
		if [ ${#ecs[@]} -gt 0 ]; then opt=(-E "8:${ecs[$((i % ${#ecs[@]}))]}"); fi
		local bg=()
		if [ -n "$prof" ] && [ "$i" = 0 ] && [ "$go_pprof" = 1 ]; then
			curl -s -o "$prof/${name%% *}.pprof" "http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$((secs > 3 ? secs - 2 : 1))" &
			bg+=($!)
		fi
		if [ -n "$prof" ] && [ "$i" = 1 ] && command -v perf >/dev/null; then
			perf record -q -e cpu-clock -F 999 -g -p "$pid" -o "$prof/${name%% *}.perf.data" -- sleep $((secs > 3 ? secs - 2 : 1)) >/dev/null 2>&1 &
			bg+=($!)
		fi
		c0=$(cpu_ns "$pid")
		out=$(taskset -c "$perf_cpus" dnsperf -s 127.0.0.1 -p "$p" -d "$work/q.txt" -l "$secs" -c 16 -q 256 "${opt[@]}" ${perf_extra[@]+"${perf_extra[@]}"} 2>&1)
		c1=$(cpu_ns "$pid")
		for b in "${bg[@]}"; do wait "$b" || true; done
		q=$(echo "$out" | awk '/Queries per second/ {print $4}')
		l=$(echo "$out" | awk '/Average Latency/ {print $4 * 1000000}')
		lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
		n=$(echo "$out" | awk '/Queries completed/ {print $3}')
		cpu=$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / 1000 / n; else print "n/a" }')
		results+=("$q $l $lost $cpu")
	done
	# median by QPS
	read -r q l lost cpu < <(printf '%s\n' "${results[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
	QPS[$name]=$q
	CPUQ[$name]=$cpu
	LAT[$name]=$l
	RSS[$name]=$(rss "$pid")
	# Latency percentiles at a fixed load: half the measured capacity (at most 20k QPS), so
	# they show service time rather than the queue dnsperf builds at saturation.
	local rate
	rate=$(awk -v q="$q" 'BEGIN { r = int(q / 2); if (r > 20000) r = 20000; if (r < 100) r = 100; print r }')
	if [ ${#ecs[@]} -gt 0 ]; then opt=(-E "8:${ecs[0]}"); else opt=(); fi
	PCT[$name]=$(taskset -c "$perf_cpus" dnsperf -s 127.0.0.1 -p "$p" -d "$work/q.txt" -l 5 -c 16 -Q "$rate" -v "${opt[@]}" ${perf_extra[@]+"${perf_extra[@]}"} 2>/dev/null |
		awk '/^> / { print $NF * 1000000 }' | sort -n |
		awk -v rate="$rate" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
			printf "%d | %.0f | %.0f | %.0f | %.0f", rate, v[int(NR * 0.50) + 1], v[int(NR * 0.90) + 1], v[int(NR * 0.99) + 1], v[int(NR * 0.999) + 1] }')
	printf '%-28s %12s qps  %8.0f us avg  lost %s  rss %s MiB   runs: %s  latency@rate|p50|p90|p99|p99.9: %s  cpu/query: %s us\n' "$name" "$q" "$l" "$lost" "${RSS[$name]}" "$(printf '%s ' "${results[@]%% *}")" "${PCT[$name]}" "$cpu" >&2
}

start_coredns() { # NAME COREFILE_BODY
	local conf="$work/$1.Corefile"
	printf '%s\n' "$2" > "$conf"
	if [ -n "$prof" ]; then # the pprof plugin in the (only) server block, for the CPU profile
		sed -i "0,/{\$/s//{\n  pprof 127.0.0.1:$pprof_port/" "$conf"
	fi
	go_pprof=1
	taskset -c "$srv_cpus" "$work/coredns-gtm" -conf "$conf" > "$work/$1.log" 2>&1 &
	pids+=($!)
	CUR=$!
	wait_port "$port"
}

stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

ecs=()
for s in "${subnets[@]}"; do ecs+=("$(ecs_hex "$s")"); done

gdnsd_ok=1

if want a; then
# (a) whoami
start_coredns whoami "bench.test:$port {
  whoami
}"
measure "a whoami" "$CUR" "$port"
stop "$CUR"
fi

if want b; then
# (b) file, 4 A records
cat > "$work/db.bench" <<EOF
\$ORIGIN bench.test.
@ 3600 IN SOA ns1 hostmaster 1 7200 1800 259200 30
@ 3600 IN NS ns1
ns1 IN A 127.0.0.1
www 30 IN A 192.0.2.1
www 30 IN A 192.0.2.2
www 30 IN A 192.0.2.3
www 30 IN A 192.0.2.4
EOF
start_coredns file "bench.test:$port {
  file $work/db.bench
}"
measure "b file (4 A)" "$CUR" "$port"
stop "$CUR"
fi

if want c; then
# (c) gtm weighted pool of 4
start_coredns weighted "bench.test:$port {
  gtm {
    pool web {
      address 192.0.2.1 weight 1
      address 192.0.2.2 weight 2
      address 192.0.2.3 weight 3
      address 192.0.2.4 weight 4
    }
    domain www.bench.test {
      route default web
    }
  }
}"
measure "c gtm weighted" "$CUR" "$port"
stop "$CUR"
fi

if want h; then
# (h) c's pool and domain with https: HTTPS queries, answered from the A and the AAAA
# decision (docs/https.md), beside c's A queries.
start_coredns https "bench.test:$port {
  gtm {
    pool web {
      address 192.0.2.1 weight 1
      address 192.0.2.2 weight 2
      address 192.0.2.3 weight 3
      address 192.0.2.4 weight 4
    }
    domain www.bench.test {
      route default web
      https {
        alpn h3 h2
      }
    }
  }
}"
echo "www.bench.test HTTPS" > "$work/q.txt"
measure "h gtm weighted, HTTPS" "$CUR" "$port"
echo "www.bench.test A" > "$work/q.txt"
stop "$CUR"
fi

if want g; then
# (g) the pool of (c), signed online: one ECDSA P-256 key, every query with DO, so every
# answer carries the A RRset's RRSIG (from the signature cache after the first).
key=$(dnssec-keygen -q -K "$work" -a ECDSAP256SHA256 -f KSK bench.test)
start_coredns signed "bench.test:$port {
  gtm {
    dnssec {
      key file $work/$key
    }
    pool web {
      address 192.0.2.1 weight 1
      address 192.0.2.2 weight 2
      address 192.0.2.3 weight 3
      address 192.0.2.4 weight 4
    }
    domain www.bench.test {
      route default web
    }
  }
}"
perf_extra=(-D)
measure "g gtm weighted, signed" "$CUR" "$port"
perf_extra=()
stop "$CUR"
fi

# (d) gtm geo + ASN + ECS + health checks (TCP connects to this server's own port on the
# pool addresses, every second). geo_corefile EXTRA: EXTRA is more lines for the block.
geo_corefile() {
	local pools=""
	for dc in 1:asia 2:europe 3:america; do
		n=${dc%%:*}
		pools+="
    pool ${dc#*:} {
      healthcheck tcp
      address 127.0.$n.1 weight 1
      address 127.0.$n.2 weight 3
    }"
	done
	echo "bench.test:$port {${1:-}
  gtm {
    geoip $work/city.mmdb
    asn $work/asn.mmdb
    healthcheck tcp {
      protocol tcp
      port $port
      interval 1s
      timeout 500ms
    }$pools
    domain www.bench.test {
      route asn:4134 asia europe
      route continent:AS asia europe
      route continent:EU europe america
      route continent:NA,continent:SA america europe
      route default europe america
    }
  }
}"
}
if want d; then
start_coredns geo "$(geo_corefile)"
measure "d gtm geo+ECS+health" "$CUR" "$port" "${ecs[@]}"
stop "$CUR"
fi

# (d2, d2m) d on both CPUs, dnsperf beside the server on the same two: one socket (one
# reading goroutine), and `multisocket 2` (two SO_REUSEPORT sockets, the kernel spreads
# the flows). Per core is QPS / 2.
if want d2; then
srv_cpus=0,1 perf_cpus=0,1
start_coredns geo2 "$(geo_corefile)"
measure "d2 gtm geo, 2 CPUs shared" "$CUR" "$port" "${ecs[@]}"
stop "$CUR"
srv_cpus=0 perf_cpus=1
fi
if want d2m; then
srv_cpus=0,1 perf_cpus=0,1
start_coredns geo2m "$(geo_corefile "
  multisocket 2")"
measure "d2m gtm geo, multisocket 2" "$CUR" "$port" "${ecs[@]}"
stop "$CUR"
srv_cpus=0 perf_cpus=1
fi

if want e; then
# (e) gdnsd: geoip -> weighted, tcp_connect monitors on the same kind of targets. gdnsd's
# monitors need something listening: a tiny TCP listener on every pool address.
mkdir -p "$work/gdnsd/zones" "$work/gdnsd/run" "$work/gdnsd/state"
python3 - "$port" > "$work/listeners.log" 2>&1 <<'PY' &
import socket, sys, threading, select
port = int(sys.argv[1]) + 1
socks = []
for n in (1, 2, 3):
    for h in (1, 2):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.%d.%d" % (n, h), port)); s.listen(128); socks.append(s)
while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        c, _ = s.accept(); c.close()
PY
pids+=($!)
cat > "$work/gdnsd/config" <<EOF
options => {
  listen => [ 127.0.0.1:$port ]
  run_dir => $work/gdnsd/run
  state_dir => $work/gdnsd/state
  edns_client_subnet => true
  udp_threads => 1
  tcp_threads => 1
}
service_types => {
  tcp_chk => { plugin => tcp_connect, port => $((port + 1)), interval => 2, timeout => 1, up_thresh => 2, ok_thresh => 2, down_thresh => 2 }
}
plugins => {
  weighted => {
    service_types => tcp_chk
    asia => { a1 = [ 127.0.1.1, 1 ], a2 = [ 127.0.1.2, 3 ] }
    europe => { e1 = [ 127.0.2.1, 1 ], e2 = [ 127.0.2.2, 3 ] }
    america => { u1 = [ 127.0.3.1, 1 ], u2 = [ 127.0.3.2, 3 ] }
  }
  geoip => {
    maps => {
      m => {
        geoip2_db => $work/city.mmdb
        datacenters => [ asia, europe, america ]
        map => {
          AS => [ asia, europe ]
          EU => [ europe, america ]
          NA => [ america, europe ]
          SA => [ america, europe ]
          default => [ europe, america ]
        }
      }
    }
    resources => {
      www => {
        map => m
        dcmap => { asia => %weighted!asia, europe => %weighted!europe, america => %weighted!america }
      }
    }
  }
}
EOF
cat > "$work/gdnsd/zones/bench.test" <<EOF
@ 3600 SOA ns1 hostmaster 1 7200 1800 259200 30
@ 3600 NS ns1
ns1 A 127.0.0.1
www 30 DYNA geoip!www
EOF
if gdnsd -c "$work/gdnsd" checkconf > "$work/gdnsd.check" 2>&1; then
	go_pprof=0
	taskset -c "$srv_cpus" gdnsd -c "$work/gdnsd" -f start > "$work/gdnsd.log" 2>&1 &
	pids+=($!)
	CUR=$!
	if wait_port "$port"; then
		sleep 5 # monitors up
		measure "e gdnsd geoip+weighted" "$CUR" "$port" "${ecs[@]}"
	else
		gdnsd_ok=0
	fi
	stop "$CUR"
else
	gdnsd_ok=0
	echo "gdnsd checkconf failed:" >&2
	cat "$work/gdnsd.check" >&2
fi
fi

if want f; then
# (f) PowerDNS Authoritative with a LUA record (weighted random), bind backend
mkdir -p "$work/pdns"
cat > "$work/pdns/bench.zone" <<EOF
\$ORIGIN bench.test.
@ 3600 IN SOA ns1 hostmaster 1 7200 1800 259200 30
@ 3600 IN NS ns1
ns1 IN A 127.0.0.1
www 30 IN LUA A "pickwrandom({{1,'192.0.2.1'},{2,'192.0.2.2'},{3,'192.0.2.3'},{4,'192.0.2.4'}})"
EOF
echo "zone \"bench.test\" { type master; file \"$work/pdns/bench.zone\"; };" > "$work/pdns/named.conf"
pdns_run() { # NAME CACHE_TTL
	cat > "$work/pdns/pdns.conf" <<EOF
launch=bind
bind-config=$work/pdns/named.conf
local-address=127.0.0.1
local-port=$port
enable-lua-records=yes
cache-ttl=$2
query-cache-ttl=$2
negquery-cache-ttl=$2
receiver-threads=1
distributor-threads=1
socket-dir=$work/pdns
guardian=no
daemon=no
disable-syslog=yes
EOF
	go_pprof=0
	taskset -c "$srv_cpus" pdns_server --config-dir="$work/pdns" > "$work/pdns.log" 2>&1 &
	pids+=($!)
	CUR=$!
	wait_port "$port"
	measure "$1" "$CUR" "$port"
	stop "$CUR"
}
pdns_run "f pdns LUA (no cache)" 0
pdns_run "f pdns LUA (packet cache)" 20
fi

ratio() { awk -v a="${QPS[$1]:-0}" -v b="${QPS[$2]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
date=$(date -u +%Y-%m-%d)
{
	echo "| scenario | QPS (median of $runs × ${secs}s) | avg latency at saturation (µs) | server RSS (MiB) | fixed load (QPS) | p50 (µs) | p90 (µs) | p99 (µs) | p99.9 (µs) | server CPU per query at saturation (µs) |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for k in "a whoami" "b file (4 A)" "c gtm weighted" "d gtm geo+ECS+health" "e gdnsd geoip+weighted" "f pdns LUA (no cache)" "f pdns LUA (packet cache)" "d2 gtm geo, 2 CPUs shared" "d2m gtm geo, multisocket 2" "g gtm weighted, signed" "h gtm weighted, HTTPS"; do
		[ -n "${QPS[$k]:-}" ] && printf '| %s | %.0f | %.0f | %s | %s | %s |\n' "$k" "${QPS[$k]}" "${LAT[$k]}" "${RSS[$k]}" "${PCT[$k]}" "${CPUQ[$k]}"
	done
	echo
	echo "| ratio | value |"
	echo "|---|---|"
	echo "| (c) gtm weighted / (b) file | $(ratio "c gtm weighted" "b file (4 A)") |"
	echo "| (d) gtm geo / (b) file | $(ratio "d gtm geo+ECS+health" "b file (4 A)") |"
	echo "| (c) gtm weighted / (f) pdns LUA, no cache | $(ratio "c gtm weighted" "f pdns LUA (no cache)") |"
	echo "| (d) gtm geo / (e) gdnsd | $(ratio "d gtm geo+ECS+health" "e gdnsd geoip+weighted") |"
	echo "| (c) gtm weighted / (a) whoami | $(ratio "c gtm weighted" "a whoami") |"
	echo "| (g) gtm signed / (c) gtm weighted | $(ratio "g gtm weighted, signed" "c gtm weighted") |"
	echo "| (h) gtm HTTPS / (c) gtm weighted | $(ratio "h gtm weighted, HTTPS" "c gtm weighted") |"
	echo "| (h) / (c) by CPU per query at saturation (c's / h's) | $(awk -v a="${CPUQ[c gtm weighted]:-0}" -v b="${CPUQ[h gtm weighted, HTTPS]:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }') |"
	[ "$gdnsd_ok" = 1 ] || echo "(gdnsd did not run: see the messages above)"
} | tee "$root/bench/results-$date.md"
