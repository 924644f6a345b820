#!/usr/bin/env bash
# Template runs: a trivial template (bench/defs/templates/trivial, `return 1`)
# run end to end through POST /v1/templates/trivial/runs, against the
# reference of isolating each run by spawning
#   bwrap --unshare-all --die-with-parent --ro-bind / / lua5.4 -e 'return 1'
# measured in the same run:
#   1. latency, one connection, one run at a time (wrk -t1 -c1 --latency),
#      against bwrap p50/p99 over SPAWNS sequential spawns;
#   2. throughput, wrk -t2 -c16;
#   3. the resident memory of the idle sandbox workers afterwards (VmRSS of
#      the zygote's children; the zygote is the gateway's child).
# The machine may be shared: each round does all three latency figures back
# to back, and the summary gives medians over ROUNDS, and ratios.  Absolute
# times mean little here; the ratio is the figure to compare.
#
#   bench/sandbox.sh      (ROUNDS=3 LAT_SECS=3 SPAWNS=200 DURATION=5 CONNS=16
#                          BUILD=build NO_BUILD=1 skips `ninja -C build`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
rounds=${ROUNDS:-3}
lat_secs=${LAT_SECS:-3}
spawns=${SPAWNS:-200}
duration=${DURATION:-5}
conns=${CONNS:-16}
py=/usr/bin/python3
work=$(mktemp -d /tmp/sandgate-sandbox-bench-XXXXXX)
sg_pid=
cleanup() {
	if [ -n "$sg_pid" ]; then
		kill "$sg_pid" 2>/dev/null || true
		wait "$sg_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in wrk curl jq "$py"; do
	command -v "$tool" >/dev/null || { echo "sandbox.sh: $tool is missing" >&2; exit 1; }
done
if [ -z "${NO_BUILD:-}" ]; then
	ninja -C "$build" >/dev/null || { echo "sandbox.sh: ninja -C $build failed" >&2; exit 1; }
fi
buildtype=$(jq -r '.[] | select(.name == "buildtype") | .value' \
	"$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
[ "$buildtype" = release ] ||
	echo "sandbox.sh: warning: $build is a '$buildtype' build, not release; figures will be off" >&2
echo "== template runs: a trivial template through the HTTP API against a bwrap spawn per run"
bwrap_ok=1
for tool in bwrap lua5.4; do
	command -v "$tool" >/dev/null ||
		{ echo "== $tool is missing (scripts/install-deps installs it): no bwrap reference, no ratio"; bwrap_ok=0; }
done
if [ "$bwrap_ok" = 1 ] && ! bwrap --unshare-all --die-with-parent --ro-bind / / lua5.4 -e 'return 1' 2>"$work/bwrap.err"; then
	echo "== bwrap cannot run here ($(head -c 200 "$work/bwrap.err")): no bwrap reference, no ratio"
	bwrap_ok=0
fi

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# median of column $2 of file $1
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# wrk output -> "runs/s p50 p99 requests non2xx" (latencies in ms)
summarize() {
	awk '/Requests\/sec/ {rps=$2} /requests in/ {n=$1} /Non-2xx/ {bad=$NF}
	     /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
	     function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
	     END {printf "%s %.3f %.3f %d %d\n", rps, ms(p50), ms(p99), n, bad}' "$1"
}

# Times SPAWNS sequential spawns of argv (posix_spawn + waitpid, the least a
# launcher can add) -> "p50 p99" in ms, nearest rank.
cat >"$work/spawn.py" <<'PY'
import math, os, sys, time
n = int(sys.argv[1]); argv = sys.argv[2:]
fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
      (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
def once():
    t = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)
    _, st = os.waitpid(pid, 0)
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(st) != 0:
        sys.exit("spawn.py: %s exited with %d" % (argv[0], os.waitstatus_to_exitcode(st)))
    return dt * 1000
for _ in range(min(10, n)):
    once()
v = sorted(once() for _ in range(n))
pct = lambda p: v[max(0, math.ceil(p * len(v)) - 1)]
print("%.3f %.3f" % (pct(0.50), pct(0.99)))
PY
bwrap_cmd=(bwrap --unshare-all --die-with-parent --ro-bind / / lua5.4 -e 'return 1')

# Every pid whose parent is $1 (from /proc/*/stat; the comm field may hold
# spaces and parentheses, so the fields are read after its last ')').
children_of() {
	local f stat rest fields
	for f in /proc/[0-9]*/stat; do
		stat=$(<"$f") 2>/dev/null || continue
		rest=${stat##*) }
		read -r -a fields <<<"$rest"
		[ "${fields[1]}" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
	done
	return 0
}
# The sandbox workers: the children of the gateway's children (the zygote).
workers_of() {
	local z
	for z in $(children_of "$1"); do children_of "$z"; done
}

echo "== setup: examples/ + bench/defs/templates/trivial, one explorer key (sandbox mode)"
data="$work/data"
"$build/sandgate" apply -f "$root/examples" -f "$root/bench/defs/templates/trivial" \
	--data-dir "$data" --no-reload >/dev/null
key=$("$build/sandgate" keys create --tenant bench --user u --role explorer --mode sandbox \
	--json --data-dir "$data" | jq -r '.key')
case "$key" in sgk_*) ;; *) echo "sandbox.sh: keys create gave no key" >&2; exit 1 ;; esac

port=$(free_port)
url="http://127.0.0.1:$port"
# /readyz's details (the sandbox's state) are on the admin listener.
admin_port=$(free_port)
admin_url="http://127.0.0.1:$admin_port"
# No per-request access line; up to CONNS runs of the one tenant at once, so
# the throughput phase measures runs rather than 429 runs_limited.
cat >"$work/sandgate.yaml" <<EOF
log:
  requests: false
sandbox:
  tenant_runs: $((conns > 8 ? conns : 8))
EOF
"$build/sandgate" serve --config "$work/sandgate.yaml" --data-dir "$data" \
	--listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" --threads 2 \
	2>"$work/serve.log" &
sg_pid=$!
ready=
for _ in $(seq 100); do
	kill -0 "$sg_pid" 2>/dev/null || break
	if curl -s "$admin_url/readyz" >"$work/readyz.json" 2>/dev/null &&
		[ "$(jq -r '.sandbox.ready // false' "$work/readyz.json" 2>/dev/null)" = true ]; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ -z "$ready" ]; then
	echo "sandbox.sh: the gateway's sandbox did not become ready (no sandbox.ready in /readyz); it said:" >&2
	cat "$work/readyz.json" >&2 2>/dev/null || true
	echo >&2
	echo "gateway stderr:" >&2
	tail -n 20 "$work/serve.log" >&2
	exit 1
fi
echo "== gateway pid $sg_pid on $url; sandbox: $(jq -c '.sandbox.workers' "$work/readyz.json")"
echo "   isolation: $(jq -r '.sandbox.isolation // "?"' "$work/readyz.json")"

# One run by hand: it must succeed with output 1, or nothing below means anything.
status=$(curl -s -o "$work/run.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
	-H 'Content-Type: application/json' --data '{}' "$url/v1/templates/trivial/runs")
if [ "$status" != 200 ] || [ "$(jq -c '[.status, .output]' "$work/run.json" 2>/dev/null)" != '["succeeded",1]' ]; then
	echo "sandbox.sh: POST /v1/templates/trivial/runs answered $status:" >&2
	head -c 2000 "$work/run.json" >&2
	echo >&2
	exit 1
fi
echo "   a run: $(jq -c '{status, output, usage, worker_pid}' "$work/run.json")"

run_wrk() { # out wrk-options...
	local out=$1
	shift
	KEY="$key" wrk --latency -s "$root/bench/run-template.lua" "$@" "$url" >"$out"
	if grep -q "Non-2xx" "$out"; then
		echo "sandbox.sh: runs that did not answer 200 during the bench (wrk, then the gateway's counters and log):" >&2
		cat "$out" >&2
		curl -s "$admin_url/metrics" | grep -E '^sandgate_(requests_total|decisions_total|runs)' |
			grep -vE 'status="200"|} 0$| 0$' >&2 || true
		grep -v '"level":"info"' "$work/serve.log" | tail -n 20 >&2 || true
		exit 1
	fi
}

echo "== warm-up"
run_wrk "$work/warm.txt" -t2 -c"$conns" -d2s

: >"$work/lat.rounds"
: >"$work/tp.rounds"
: >"$work/bwrap.rounds"
for r in $(seq "$rounds"); do
	echo "== round $r/$rounds"
	if [ "$bwrap_ok" = 1 ]; then
		"$py" "$work/spawn.py" "$spawns" "${bwrap_cmd[@]}" >"$work/bwrap.txt"
		cat "$work/bwrap.txt" >>"$work/bwrap.rounds"
		awk -v n="$spawns" '{printf "   bwrap + lua5.4, %d sequential spawns:  p50 %.3f ms  p99 %.3f ms\n", n, $1, $2}' "$work/bwrap.txt"
	fi
	run_wrk "$work/lat.txt" -t1 -c1 -d"${lat_secs}s"
	summarize "$work/lat.txt" | tee -a "$work/lat.rounds" |
		awk '{printf "   sandgate, 1 connection, %d runs:       p50 %.3f ms  p99 %.3f ms  (%.0f runs/s)\n", $4, $2, $3, $1}'
	run_wrk "$work/tp.txt" -t2 -c"$conns" -d"${duration}s"
	summarize "$work/tp.txt" | tee -a "$work/tp.rounds" |
		awk -v c="$conns" '{printf "   sandgate, %d connections, %d runs:    %.0f runs/s  p50 %.3f ms  p99 %.3f ms\n", c, $4, $1, $2, $3}'
done

# Idle workers: nothing runs now; let retired ones exit first.
sleep 1
curl -s "$admin_url/readyz" >"$work/readyz.json" || true
: >"$work/rss"
for w in $(workers_of "$sg_pid"); do
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$w/status" 2>/dev/null) || continue
	[ -n "$rss" ] && echo "$rss $w $(cat "/proc/$w/comm" 2>/dev/null)" >>"$work/rss"
done
nworkers=$(wc -l <"$work/rss")

lat_p50=$(median "$work/lat.rounds" 2)
lat_p99=$(median "$work/lat.rounds" 3)
tp_rps=$(median "$work/tp.rounds" 1)
tp_p50=$(median "$work/tp.rounds" 2)
tp_p99=$(median "$work/tp.rounds" 3)

echo
echo "== summary: trivial template run vs a bwrap spawn per run (median of $rounds rounds; $(nproc) CPUs)"
printf '%-40s %s\n' "sandgate runs/s rounds" "$(awk '{printf "%.0f ", $1}' "$work/tp.rounds")"
printf '%-40s %s\n' "sandgate p50 rounds (ms, 1 connection)" "$(awk '{printf "%.3f ", $2}' "$work/lat.rounds")"
if [ "$bwrap_ok" = 1 ]; then
	printf '%-40s %s\n' "bwrap p50 rounds (ms)" "$(awk '{printf "%.3f ", $1}' "$work/bwrap.rounds")"
fi
printf '\n%-40s %10s %10s\n' "" "p50 ms" "p99 ms"
printf '%-40s %10.3f %10.3f\n' "sandgate template run (wrk -c1)" "$lat_p50" "$lat_p99"
if [ "$bwrap_ok" = 1 ]; then
	bw_p50=$(median "$work/bwrap.rounds" 1)
	bw_p99=$(median "$work/bwrap.rounds" 2)
	printf '%-40s %10.3f %10.3f\n' "bwrap --unshare-all + lua5.4 (spawn)" "$bw_p50" "$bw_p99"
	awk -v b="$bw_p50" -v s="$lat_p50" 'BEGIN {printf "latency ratio bwrap_p50 / sandgate_p50: %.1f (target >= 5)\n", b / s}'
else
	echo "latency ratio bwrap_p50 / sandgate_p50: skipped (no bwrap reference)"
fi
awk -v s="$lat_p50" 'BEGIN {printf "sandgate p50: %.3f ms (target <= 0.5 ms: %s)\n", s, (s <= 0.5 ? "met" : "missed")}'
awk -v r="$tp_rps" -v p50="$tp_p50" -v p99="$tp_p99" -v c="$conns" -v d="$duration" \
	'BEGIN {printf "throughput (wrk -t2 -c%d -d%ss): %.0f runs/s, p50 %.3f ms, p99 %.3f ms (target >= 2000 on 2 cores: %s)\n", c, d, r, p50, p99, (r >= 2000 ? "met" : "missed")}'
if [ "$nworkers" -gt 0 ]; then
	sort -n "$work/rss" | awk -v pool="$(jq -c '.sandbox.workers // {}' "$work/readyz.json" 2>/dev/null)" '
		{v[NR] = $1} END {
		printf "idle worker RSS (VmRSS, %d workers; /readyz %s): max %.2f MiB, median %.2f MiB (target <= 4 MiB: %s)\n",
		       NR, pool, v[NR] / 1024, v[int((NR + 1) / 2)] / 1024, (v[NR] <= 4096 ? "met" : "missed")}'
else
	echo "idle worker RSS: no worker process found under the gateway (pid $sg_pid)"
fi
