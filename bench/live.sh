#!/usr/bin/env bash
# Live-forward benchmark: sandgate's whole governed path to a real upstream
# (libcurl multi on the I/O threads, credential injected, answer checked
# against the output schema) against nginx proxy_pass + limit_req to the
# same local upstream (nginx `return 200`), driven by the same wrk in the
# same run.  Prints req/s, p50 and p99 of each and the ratio; the ratio is
# the figure to compare (target >= 0.5).
#
#   bench/live.sh    (ROUNDS=3 DURATION=5 CONNS=64 NKEYS=100 BUILD=build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
duration=${DURATION:-5}
conns=${CONNS:-64}
nkeys=${NKEYS:-100}
rounds=${ROUNDS:-3}
work=$(mktemp -d /tmp/sandgate-live-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
summarize() {
	awk '/Requests\/sec/ {rps=$2}
	     /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
	     END {print rps, p50, p99}' "$1" | awk '
	function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
	{ printf "%s %.3f %.3f\n", $1, ms($2), ms($3) }'
}

up_port=$(free_port)
px_port=$(free_port)
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 2;
error_log $work/nginx/logs/error.log crit;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  limit_req_zone \$binary_remote_addr zone=bench:10m rate=1000000r/s;
  upstream up { server 127.0.0.1:$up_port; keepalive 64; }
  # The upstream both gateways forward to.
  server {
    listen 127.0.0.1:$up_port reuseport;
    location / {
      default_type application/json;
      return 200 '{"id":"ct_1","email":"ada@example.com"}';
    }
  }
  # The reference: a rate-limited reverse proxy with kept-alive upstream connections.
  server {
    listen 127.0.0.1:$px_port reuseport;
    location / {
      limit_req zone=bench burst=100000 nodelay;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer bench-upstream-credential";
      proxy_pass http://up/contacts;
    }
  }
}
NGX
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_http "http://127.0.0.1:$up_port/"
wait_http "http://127.0.0.1:$px_port/"

echo "== setup: $nkeys live keys, the bench_live connector to nginx on :$up_port"
data="$work/data"
mkdir -p "$work/defs/connectors" "$work/defs/policies"
sed "s/UPSTREAM_PORT/$up_port/" "$root/bench/live/connector.yaml" >"$work/defs/connectors/bench_live.yaml"
cp "$root/bench/live/policy.yaml" "$work/defs/policies/"
"$build/sandgate" apply -f "$work/defs" --data-dir "$data" >/dev/null
echo "bench-upstream-credential" | "$build/sandgate" secrets set bench_live --stdin --data-dir "$data" >/dev/null
if ! seq "$nkeys" | xargs -P 2 -I{} "$build/sandgate" keys create --tenant bench --user "u{}" \
	--role bench_live --mode live --force --data-dir "$data" 2>"$work/keys.err" >"$work/keys"; then
	echo "bench/live.sh: creating the bench keys failed:" >&2
	awk '!/^Created key/ && n++ < 5' "$work/keys.err" >&2
	exit 1
fi
sg_port=$(free_port)
sg_admin_port=$(free_port)
printf 'log:\n  requests: false\n' >"$work/sandgate.yaml"
"$build/sandgate" serve --config "$work/sandgate.yaml" --data-dir "$data" \
	--listen "127.0.0.1:$sg_port" --admin-listen "127.0.0.1:$sg_admin_port" --threads 2 2>"$work/sg.log" &
pids+=($!)
wait_http "http://127.0.0.1:$sg_port/readyz"

# Both must forward, or the comparison means nothing.
key1=$(head -n 1 "$work/keys")
body='{"email":"ada@example.com","name":"Ada Lovelace","company":"Engines"}'
for url in "http://127.0.0.1:$sg_port/v1/connectors/bench_live/create_contact" "http://127.0.0.1:$px_port/"; do
	got=$(curl -s -o "$work/check.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $key1" \
		-H 'Content-Type: application/json' --data-binary "$body" "$url")
	if [ "$got" != 200 ] || [ "$(jq -r .id "$work/check.body")" != ct_1 ]; then
		echo "bench/live.sh: $url answered $got:" >&2
		head -c 2000 "$work/check.body" >&2
		exit 1
	fi
done

run_wrk() { # url out
	KEYS_FILE="$work/keys" TARGET_PATH=/v1/connectors/bench_live/create_contact \
		wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$root/bench/post.lua" "$1" >"$2"
	if grep -q "Non-2xx" "$2"; then
		echo "bench/live.sh: $1 answered non-2xx during the bench:" >&2
		cat "$2" >&2
		exit 1
	fi
}
# Warm both (connections, pools).
run_wrk "http://127.0.0.1:$sg_port" /dev/null 2>/dev/null || true
: >"$work/sg.rounds"
: >"$work/px.rounds"
for r in $(seq "$rounds"); do
	echo "== round $r/$rounds: sandgate live forward, nginx proxy_pass (wrk -t1 -c$conns -d${duration}s)"
	run_wrk "http://127.0.0.1:$sg_port" "$work/sg.txt"
	summarize "$work/sg.txt" >>"$work/sg.rounds"
	run_wrk "http://127.0.0.1:$px_port" "$work/px.txt"
	summarize "$work/px.txt" >>"$work/px.rounds"
done
median() { sort -n -k1,1 "$1" | awk -v n="$rounds" 'NR == int((n + 1) / 2)'; }
read -r sg_rps sg_p50 sg_p99 < <(median "$work/sg.rounds")
read -r px_rps px_p50 px_p99 < <(median "$work/px.rounds")
printf '\n%-34s %s\n' "sandgate live rounds (req/s)" "$(awk '{printf "%s ", $1}' "$work/sg.rounds")"
printf '%-34s %s\n' "nginx proxy_pass rounds (req/s)" "$(awk '{printf "%s ", $1}' "$work/px.rounds")"
printf '\n%-34s %12s %10s %10s   (median round)\n' "server" "req/s" "p50 ms" "p99 ms"
printf '%-34s %12s %10s %10s\n' "sandgate live forward" "$sg_rps" "$sg_p50" "$sg_p99"
printf '%-34s %12s %10s %10s\n' "nginx proxy_pass + limit_req" "$px_rps" "$px_p50" "$px_p99"
awk -v a="$sg_rps" -v b="$px_rps" 'BEGIN {r = a / b; v = (r >= 0.5) ? "met" : "missed"; printf "live-forward ratio sandgate/nginx (medians): %.2f (target >= 0.5: %s)\n", r, v}'
