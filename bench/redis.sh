#!/usr/bin/env bash
# The Redis throttle backend against redis-benchmark, on one redis-server:
#   1. bench_redis: decisions/s through sg_redis (one connection, 128 in flight);
#   2. redis-benchmark driving the SAME script (SCRIPT LOAD of the text
#      bench_redis prints, checked to be the one sg_redis loaded) with the same
#      arguments: -P 16 -c 8, on one warm key and on 10,000 random keys.
# Both are bound by Redis running the script, so the ratio says how much
# sandgate's client side costs on top; it should be close to 1.  The machine
# may be shared: the two alternate, and each figure is the median of ROUNDS.
#
#   BUILD=build bench/redis.sh          (N=200000 ROUNDS=5 DEPTH=128)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
n=${N:-200000}
rounds=${ROUNDS:-5}
depth=${DEPTH:-128}
work=$(mktemp -d /tmp/sandgate-redis-bench-XXXXXX)
redis_pid=
cleanup() {
	if [ -n "$redis_pid" ]; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

for tool in /usr/bin/redis-server redis-cli redis-benchmark "$build/bench/bench_redis"; do
	command -v "$tool" >/dev/null || { echo "redis.sh: $tool is missing" >&2; exit 1; }
done

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
(cd "$work" && exec /usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' \
	--appendonly no --daemonize no >"$work/redis.log" 2>&1) &
redis_pid=$!
for _ in $(seq 100); do
	[ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && break
	sleep 0.05
done
[ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ] || { echo "redis.sh: redis-server did not start" >&2; exit 1; }
echo "== redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port (pid $redis_pid)"

# The script sg_redis loads must be the one redis-benchmark runs: let
# bench_redis load it once, then check the printed text has that sha.
"$build/bench/bench_redis" --port "$port" --decisions 1000 --runs 1 --no-latency >/dev/null 2>&1
"$build/bench/bench_redis" --print-script >"$work/script.lua"
sha=$(sha1sum "$work/script.lua" | awk '{print $1}')
[ "$(redis-cli -p "$port" SCRIPT EXISTS "$sha")" = 1 ] ||
	{ echo "redis.sh: the printed script is not the one sg_redis loaded" >&2; exit 1; }
[ "$(redis-cli -p "$port" -x SCRIPT LOAD <"$work/script.lua")" = "$sha" ] ||
	{ echo "redis.sh: SCRIPT LOAD returned another sha" >&2; exit 1; }

# The arguments sg_redis sends for one window: mode d, cost 1, T = 0 s 1000 ns,
# burst 1000, reserve 0 s 0 ns, enforced.
args=(d 1 0 1000 1000 0 0 0)
rb() { # redis-benchmark options... -> requests/s
	redis-benchmark -p "$port" -n "$n" -P 16 -c 8 --csv "$@" 2>/dev/null |
		awk -F'","' 'NR == 2 {print $2}'
}

# Alternate the two clients round by round, so a burst of outside load on a
# shared machine cannot decide the ratio alone; compare medians.
echo "== sandgate:        bench_redis --port $port --depth $depth --decisions $n --runs 1"
echo "== redis-benchmark: redis-benchmark -p $port -n $n -P 16 -c 8 EVALSHA $sha 1 KEY ${args[*]}"
echo "                    (KEY: sgb:warm, or sgb:__rand_int__ with -r 10000)"
: >"$work/rounds"
for r in $(seq "$rounds"); do
	"$build/bench/bench_redis" --port "$port" --depth "$depth" --decisions "$n" --runs 1 \
		--no-latency 2>/dev/null >"$work/sg.txt"
	sg_warm=$(awk '$1 == "warm-key" {print $4}' "$work/sg.txt")
	sg_keys=$(awk '$1 == "10k-keys" {print $4}' "$work/sg.txt")
	rb_warm=$(rb EVALSHA "$sha" 1 sgb:warm "${args[@]}")
	rb_keys=$(rb -r 10000 EVALSHA "$sha" 1 sgb:__rand_int__ "${args[@]}")
	echo "$sg_warm $sg_keys $rb_warm $rb_keys" | tee -a "$work/rounds" |
		awk -v r="$r" '{printf "   round %d: sandgate %.0f / %.0f, redis-benchmark %.0f / %.0f (warm / 10k keys)\n", r, $1, $2, $3, $4}'
done
median() { awk -v c="$1" '{print $c}' "$work/rounds" | sort -n | awk -v k="$rounds" 'NR == int((k + 1) / 2)'; }
sg_warm=$(median 1) sg_keys=$(median 2) rb_warm=$(median 3) rb_keys=$(median 4)

printf '\n%-34s %14s %14s   (median of %d rounds)\n' "" "warm key" "10,000 keys" "$rounds"
printf '%-34s %14.0f %14.0f\n' "sandgate sg_redis (decisions/s)" "$sg_warm" "$sg_keys"
printf '%-34s %14.0f %14.0f\n' "redis-benchmark EVALSHA (req/s)" "$rb_warm" "$rb_keys"
awk -v a="$sg_warm" -v b="$rb_warm" -v c="$sg_keys" -v d="$rb_keys" \
	'BEGIN {printf "%-34s %14.2f %14.2f\n", "ratio sandgate/redis-benchmark", a / b, c / d}'

echo
echo "== sg_redis alone, with the round-trip latency at depth 1"
"$build/bench/bench_redis" --port "$port" --depth "$depth" --decisions "$n" 2>/dev/null
