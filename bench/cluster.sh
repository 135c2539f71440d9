#!/usr/bin/env bash
# The Redis engine's fan-out (issue 11), interleaved over ROUNDS rounds, at
# 100 members (10 publishes/s) and 10,000 (2 publishes/s), 64 B binary:
#   plain  one instance, memory engine (no --redis)
#   solo   one instance with --redis
#   two    two instances sharing that Redis, the members split between
#          them (--member-url A --member-url B), the publisher on A
# Every duplex (one worker) and the redis-server share core 0: the server
# side gets one core whatever its shape. The generator has core 1.
# Latency is from the publish's scheduled time to each member's read, so
# with Redis it includes the publish's round trip to Redis and back
# through pub/sub. Each run uses a new room; the instances and Redis live
# for the whole batch.
#
#   bench/cluster.sh [ROUNDS] [OUT]     # default 5 rounds, target/bench/cluster-DATE
#
# Needs the release binaries (BIN, default target/release) and
# redis-server. Prints the medians as markdown tables (CPU per delivery of
# the publisher's instance and of B, Redis's share of a core; at these
# rates that is mostly its own background work: bench/redis-capacity.sh
# measures its cost per publish); every run's JSON stays in OUT. About
# 2 minutes a round.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-target/release}"
rounds="${1:-5}"
out="${2:-target/bench/cluster-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
ulimit -n 20000
# shellcheck source=bench/lib.sh
. bench/lib.sh

start_redis 0 "$out/redis.log"
common=(--workers 1 --presence-limit 100 --max-connections 30000)
start_duplex 0 "$bin/duplex" "$out/plain.log" "${common[@]}"
plain_port=$port plain_pid=$pid
start_duplex 0 "$bin/duplex" "$out/solo.log" "${common[@]}" --redis "redis://127.0.0.1:$redis_port"
solo_port=$port solo_pid=$pid
start_duplex 0 "$bin/duplex" "$out/a.log" "${common[@]}" --redis "redis://127.0.0.1:$redis_port"
a_port=$port a_pid=$pid
start_duplex 0 "$bin/duplex" "$out/b.log" "${common[@]}" --redis "redis://127.0.0.1:$redis_port"
b_port=$port b_pid=$pid
echo "redis $redis_pid :$redis_port, plain $plain_pid, solo $solo_pid, A $a_pid, B $b_pid" | tee "$out/pids"

# run CONFIG MEMBERS RATE ROUND
run() {
    local config=$1 members=$2 rate=$3 round=$4 args
    case $config in
        plain) args=(--url "ws://127.0.0.1:$plain_port/ws" --server-pid "$plain_pid") ;;
        solo) args=(--url "ws://127.0.0.1:$solo_port/ws" --server-pid "$solo_pid"
                    --cpu-pid "$redis_pid") ;;
        two) args=(--url "ws://127.0.0.1:$a_port/ws" --member-url "ws://127.0.0.1:$a_port/ws"
                   --member-url "ws://127.0.0.1:$b_port/ws" --server-pid "$a_pid"
                   --cpu-pid "$redis_pid" --cpu-pid "$b_pid") ;;
    esac
    echo "round $round: $members members, $config" >&2
    taskset -c 1 "$bin/duplex-bench" fanout "${args[@]}" --members "$members" --publishers 1 \
        --rate "$rate" --duration 10s --warmup 2s --room "r$round-$members-$config" --json \
        >"$out/$config-$members-$round.json" 2>"$out/$config-$members-$round.err" \
        || echo "  exit status $?" >&2
    # The members' leaves (through Redis for solo and two) settle first.
    sleep 3
}

machine_mark start
configs=(plain solo two)
for round in $(seq 1 "$rounds"); do
    # Rotate the order each round, so drift lands on every configuration.
    shift_by=$(((round - 1) % 3))
    order=("${configs[@]:$shift_by}" "${configs[@]:0:$shift_by}")
    for members in 100 10000; do
        rate=10; [ "$members" = 10000 ] && rate=2
        for config in "${order[@]}"; do
            run "$config" "$members" "$rate" "$round"
        done
    done
done
machine_mark end
redis-cli -p "$redis_port" info commandstats >"$out/redis-commandstats"

python3 - "$out" <<'EOF'
import json, statistics, sys, glob, os
out = sys.argv[1]
med = statistics.median
ticks = [list(map(int, open(os.path.join(out, f)).read().split()[1:])) for f in ("stat-start", "stat-end")]
delta = [b - a for a, b in zip(*ticks)]
print(f"both cores {100 * (1 - (delta[3] + delta[4]) / sum(delta)):.0f}% busy over the batch (ours included)\n")
def runs(config, members):
    found = {}
    for f in glob.glob(os.path.join(out, f"{config}-{members}-*.json")):
        found[f.rsplit("-", 1)[1].split(".")[0]] = json.load(open(f))
    return found
def fmt(xs, f="{:.2f}"):
    xs = [x for x in xs if x is not None]
    return f.format(med(xs)) if xs else "–"
for members in (100, 10000):
    print(f"| {members:,} members + 1 publisher | runs | deliveries/s | p50 | p99 | lost | publisher's instance µs/delivery | B µs/delivery | Redis CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for config in ("plain", "solo", "two"):
        rs = list(runs(config, members).values())
        if not rs:
            continue
        cpu = lambda r, i, k: r["cpu_pids"][i][k] if len(r.get("cpu_pids", [])) > i else None
        print(f"| {config} | {len(rs)} | {med([r['delivered_per_sec'] for r in rs]):,.0f}"
              f" | {med([r['latency_ms'][0] for r in rs]):.2f} ms | {med([r['latency_ms'][2] for r in rs]):.2f} ms"
              f" | {sum(r['lost'] for r in rs)}"
              f" | {fmt([r['server_us_per_delivery'] for r in rs])}"
              f" | {fmt([cpu(r, 1, 'us_per_delivery') for r in rs])}"
              f" | {fmt([cpu(r, 0, 'percent') for r in rs], '{:.1f}%')} |")
    base = runs("plain", members)
    for config in ("solo", "two"):
        other = runs(config, members)
        for label, i in (("p50", 0), ("p99", 2)):
            d = [other[k]["latency_ms"][i] - base[k]["latency_ms"][i] for k in other if k in base]
            if d:
                print(f"\n{config} − plain {label}, paired by round: "
                      + ", ".join(f"{x:+.2f}" for x in sorted(d)) + f" ms (median {med(d):+.2f})", end="")
    print("\n")
EOF
