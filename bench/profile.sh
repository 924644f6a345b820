#!/usr/bin/env bash
# Where a governed call's instructions go, by module: sandgate serve (one I/O
# thread) under valgrind --tool=callgrind, driven by wrk with bench/run's
# call (crm.create_contact, rotating keys, full throttling engine).  Counts
# start after a warm-up and stop once the audit writer has caught up, so the
# dump holds the calls and their records and no start-up or shutdown.
# bench/cg_modules.py then groups the instructions by src/ directory and
# library (glibc split into malloc/free, printf and the like, string
# functions) and prints a table of Ir per call and % of the total.
#
# Builds nothing: profile what `make build` (or BUILD=dir) holds.  Instruction
# counts do not depend on the machine's load, so before/after figures of two
# builds compare directly.
#
#   bench/profile.sh   (BUILD=build PROFILE_SECS=5 CONNS=4 NKEYS=1000
#                       KEEP=dir keeps the callgrind files)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
secs=${PROFILE_SECS:-5}
conns=${CONNS:-4}
nkeys=${NKEYS:-1000}
py=/usr/bin/python3
work=$(mktemp -d /tmp/sandgate-profile-XXXXXX)
vg_pid=
cleanup() {
	if [ -n "$vg_pid" ]; then
		kill "$vg_pid" 2>/dev/null || true
		wait "$vg_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in valgrind callgrind_control wrk curl jq nm "$py"; do
	command -v "$tool" >/dev/null || { echo "profile.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$build/sandgate" ] ||
	{ echo "profile.sh: no $build/sandgate: run 'make build' first (this script builds nothing)" >&2; exit 1; }
buildtype=$(jq -r '.[] | select(.name == "buildtype") | .value' \
	"$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
[ "$buildtype" = release ] ||
	echo "profile.sh: warning: $build is a '${buildtype:-unknown}' build, not release; counts will be off" >&2

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { # regex -> the sum of the matching series on /metrics
	curl -sf "http://127.0.0.1:$admin_port/metrics" | awk -v re="$1" '$0 ~ re {n += $NF} END {print n + 0}'
}

echo "== setup: $nkeys keys, example connectors + bench policies (as bench/run)"
data=$work/data
"$build/sandgate" apply -f "$root/examples/connectors" -f "$root/bench/defs" --data-dir "$data" >/dev/null
if ! seq "$nkeys" | xargs -P 2 -I{} "$build/sandgate" keys create --tenant bench --user "u{}" \
	--role bench --force --data-dir "$data" 2>"$work/keys.err" >"$work/keys"; then
	echo "profile.sh: creating the keys failed:" >&2
	awk '!/^Created key/ && n++ < 5' "$work/keys.err" >&2
	exit 1
fi

port=$(free_port)
admin_port=$(free_port)
printf 'log:\n  requests: false\n' >"$work/sandgate.yaml"
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.out" \
	"$build/sandgate" serve --config "$work/sandgate.yaml" --data-dir "$data" \
	--listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" --threads 1 \
	2>"$work/serve.log" &
vg_pid=$!
for _ in $(seq 600); do
	curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break
	kill -0 "$vg_pid" 2>/dev/null || break
	sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$port/readyz" ||
	{ echo "profile.sh: sandgate under callgrind did not answer within 60 s:" >&2; tail -n 20 "$work/serve.log" >&2; exit 1; }

load() { # seconds
	KEYS_FILE="$work/keys" wrk -t1 -c"$conns" -d"$1s" --latency -s "$root/bench/post.lua" \
		"http://127.0.0.1:$port" >"$work/wrk.txt"
	if grep -q "Non-2xx" "$work/wrk.txt"; then
		echo "profile.sh: sandgate answered non-2xx:" >&2; cat "$work/wrk.txt" >&2; exit 1
	fi
}
wait_recorded() {
	for _ in $(seq 300); do
		[ "$(metric '^sandgate_record_backlog ')" = 0 ] && return 0
		sleep 0.1
	done
	echo "profile.sh: the audit backlog did not drain within 30 s" >&2
	exit 1
}

echo "== warm-up (wrk -c$conns, 2 s), then counting (wrk -t1 -c$conns -d${secs}s)"
load 2
wait_recorded
calls0=$(metric '^sandgate_decisions_total')
recs0=$(metric '^sandgate_record_written_total ')
cg_control() { # option
	callgrind_control "$1" "$vg_pid" >"$work/control.log" 2>&1 ||
		{ echo "profile.sh: callgrind_control $1 failed:" >&2; cat "$work/control.log" >&2; exit 1; }
}
cg_control -z
load "$secs"
wait_recorded
cg_control -d
# The /metrics scrapes of wait_recorded fall inside the count: a few, against thousands of calls.
calls=$(($(metric '^sandgate_decisions_total') - calls0))
recs=$(($(metric '^sandgate_record_written_total ') - recs0))
files=("$work"/cg.out.1-*)
[ -s "${files[0]}" ] || { echo "profile.sh: callgrind wrote no dump" >&2; exit 1; }
if [ -n "${KEEP:-}" ]; then
	mkdir -p "$KEEP"
	cp "${files[@]}" "$KEEP/"
fi

echo "== $(git -C "$root" log -1 --format='%h %s' 2>/dev/null || echo "$root"); $build ($buildtype)"
echo "== $calls governed calls and $recs audit records counted; callgrind, 1 I/O thread, wrk -c$conns -d${secs}s"
echo
"$py" "$root/bench/cg_modules.py" --build "$build" --calls "$calls" "${files[@]}"
