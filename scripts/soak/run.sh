#!/usr/bin/env bash
# Soak test (not part of `make test`): coredns-gtm under moderate load for a long time while
# health targets flap every few seconds. Samples RSS and goroutines (from the pprof plugin)
# every 30 s; both must stay flat.
#   bash scripts/soak/run.sh [MINUTES] [QPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
mins=${1:-30}
qps=${2:-2000}
work=$(mktemp -d)
out=${SOAK_OUT:-docs/soak-$(date +%Y%m%d).tsv}
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gtm-soak-server" ./cmd/coredns-gtm
go build -o "$work/load" ./scripts/soak/load
go run ./internal/mkgeodb -city "$work/city.mmdb" -asn "$work/asn.mmdb" >/dev/null

# Twenty HTTP health targets on 127.0.30.x; a flapper toggles them between 200 and 503.
cat > "$work/targets.py" <<'PY'
import http.server, socketserver, threading, time, random, sys
state = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if state.get(self.server.server_address[0], True) else 503
        self.send_response(code); self.end_headers(); self.wfile.write(b"ok\n")
    def log_message(self, *a): pass
servers = []
for i in range(1, 21):
    ip = "127.0.30.%d" % i
    s = socketserver.ThreadingTCPServer((ip, 18081), H); s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start(); servers.append(ip)
while True:
    time.sleep(3)
    for ip in random.sample(servers, 5):
        state[ip] = not state.get(ip, True)
PY
python3 "$work/targets.py" &
targets=$!
sleep 1
if ! kill -0 "$targets" 2>/dev/null; then
	echo "the health targets on 127.0.30.1-20:18081 did not start (port taken by an earlier soak?)" >&2
	exit 1
fi

{
	cat <<COREFILE
.:11053 {
  bind 127.0.0.1
  pprof 127.0.0.1:16060
  gtm gtm.example.net {
    geoip $work/city.mmdb
    asn $work/asn.mmdb
    healthcheck web {
      protocol http
      port 18081
      interval 1s
      timeout 500ms
      fall 2
      rise 2
    }
COREFILE
	for p in 0 1 2 3; do
		echo "    pool p$p {"
		echo "      healthcheck web"
		for a in 1 2 3 4 5; do echo "      address 127.0.30.$((p * 5 + a))"; done
		echo "    }"
	done
	cat <<COREFILE
    domain www.gtm.example.net {
      route continent:AS p0 p1
      route continent:EU p1 p2
      route country:US p2 p3 select weighted
      route default p3 p0
    }
  }
}
COREFILE
} > "$work/Corefile"
"$work/gtm-soak-server" -conf "$work/Corefile" > "$work/server.log" 2>&1 &
pid=$!
sleep 2
"$work/load" -server 127.0.0.1:11053 -rate "$qps" -duration "${mins}m" > "$work/load.log" &
loadpid=$!
printf 'minute\trss_kib\tgoroutines\n' > "$out"
end=$(( $(date +%s) + mins * 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
	rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
	# Read the whole dump before parsing: `curl | head -1` makes curl fail with a write error
	# (exit 23) once head has gone, which under pipefail ended earlier soaks after minutes.
	dump=$(curl -s "http://127.0.0.1:16060/debug/pprof/goroutine?debug=1" || true)
	gor=$(printf '%s\n' "$dump" | awk 'NR == 1 { sub(/.*total /, ""); print; exit }')
	printf '%s\t%s\t%s\n' "$(awk -v s="$(( end - $(date +%s) ))" -v m="$mins" 'BEGIN {printf "%.1f", m - s / 60}')" "$rss" "$gor" >> "$out"
	sleep 30
done
wait $loadpid || true
cat "$work/load.log"
echo "health changes logged: $(grep -c 'is down\|is up' "$work/server.log" || true)"
echo "samples in $out"
