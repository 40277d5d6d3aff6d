#!/usr/bin/env bash
# Ping-pong round trips (closed loop, window 1) against the fast path (bypass serve --mode rpc,
# busy poll, worker lcore on CPU 1), from two clients on CPU 0:
#
#   memif  bypass load --transport dpdk over net_memif: two processes, shared memory, no kernel
#          on either end (docs/memif.md).
#   tap    bypass load --transport udp --wait busy (a spinning kernel socket) from a network
#          namespace, through the kernel stack and the fast path's net_tap port.
#
#   sudo benches/load-dpdk-vs-udp.sh                 # 10 s each after 1 s warmup, 32-byte payload
#   sudo SECS=5 SIZE=256 ONLY=memif benches/load-dpdk-vs-udp.sh
#
# Hugepages and a release build. Prints one line per path (p50/p90/p99/p99.9/max in us, server
# residence p50) and leaves each client's --json in $OUT (default: a temporary folder, printed).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${SECS:-10}"
WARMUP="${WARMUP:-1}"
SIZE="${SIZE:-32}"
ONLY="${ONLY:-}"
BIN="${BIN:-target/release/bypass}"
case "$ONLY" in "" | memif | tap) ;; *) echo "bench: ONLY is memif or tap" >&2; exit 2 ;; esac

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (hugepages, namespaces)" >&2; exit 1; }
grep -qs " hugetlbfs " /proc/mounts || { echo "bench: no hugetlbfs: run scripts/setup.sh" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --quiet

OUT="${OUT:-$(mktemp -d)}"
ns="bpldb$$"
sock="/run/bypass-bench-$$.sock"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$sock" /dev/hugepages/bench-ld-$$-*map_*
    rm -rf /var/run/dpdk/bench-ld-$$-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

serve_args=(serve --mode rpc --ip 198.18.0.1 --poll-mode busy --json --interval-ms 600000
    --duration 600)
eal=(--no-pci --huge-unlink --no-telemetry)
load_args=(--server 198.18.0.1:7777 --window 1 --duration "$SECS" --warmup "$WARMUP" --size "$SIZE")

stop_server() {
    # A memif server closing its port while still handling the client's disconnect can crash
    # (docs/memif.md): give it a moment first.
    sleep 0.5
    kill -INT "$server_pid" 2>/dev/null || true
    local rc=0
    wait "$server_pid" || rc=$?
    [ "$rc" -eq 0 ] || echo "bench: the server exited with status $rc" >&2
    server_pid=""
}

report() { # name client-json server-json
    python3 - "$@" <<'EOF'
import json, sys
name, cj, sj = sys.argv[1:4]
s = json.load(open(cj))["summary"]
us = lambda k: s[k] / 1000
lines = open(sj).read().strip().splitlines()
srv = json.loads(lines[-1]) if lines else {"mempool": {"in_use": f"unknown (no final report: see {sj[:-5]}.err)"}}
print(f"{name:6} p50 {us('p50_ns'):7.2f}  p90 {us('p90_ns'):7.2f}  p99 {us('p99_ns'):7.2f}  "
      f"p99.9 {us('p999_ns'):8.2f}  max {us('max_ns'):9.2f} us  server p50 {s['server_ns']['p50_ns']/1000:.2f} us  "
      f"received {s['received']} lost {s['lost']}  rate {s['achieved_rate']:.0f}/s  "
      f"server mempool in use {srv['mempool']['in_use']}")
EOF
}

if [ "$ONLY" != tap ]; then
    rm -f "$sock"
    "$BIN" "${serve_args[@]}" -- --lcores=0@0,1@1 "${eal[@]}" --file-prefix "bench-ld-$$-ms" \
        "--vdev=net_memif0,role=server,socket=$sock,socket-abstract=no" >"$OUT/memif-server.json" 2>"$OUT/memif-server.err" &
    server_pid=$!
    for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { echo "bench: memif server did not come up" >&2; exit 1; }
    "$BIN" load --transport dpdk --client-ip 198.18.0.2 "${load_args[@]}" --json "$OUT/memif.json" \
        --hgrm "$OUT/memif.hgrm" -- --lcores=0@0 "${eal[@]}" --file-prefix "bench-ld-$$-mc" \
        "--vdev=net_memif0,role=client,socket=$sock,socket-abstract=no" >"$OUT/memif.txt" 2>"$OUT/memif.err"
    stop_server
    report memif "$OUT/memif.json" "$OUT/memif-server.json"
fi

if [ "$ONLY" != memif ]; then
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    dev="bpldb$$"
    ip netns exec "$ns" "$BIN" "${serve_args[@]}" -- --lcores=0@0,1@1 "${eal[@]}" \
        --file-prefix "bench-ld-$$-ts" "--vdev=net_tap0,iface=$dev" >"$OUT/tap-server.json" 2>"$OUT/tap-server.err" &
    server_pid=$!
    for _ in $(seq 200); do ip -n "$ns" link show "$dev" >/dev/null 2>&1 && break; sleep 0.1; done
    ip -n "$ns" addr add 198.18.0.2/24 dev "$dev"
    ip -n "$ns" link set "$dev" up
    ip netns exec "$ns" taskset -c 0 "$BIN" load --transport udp --wait busy "${load_args[@]}" \
        --json "$OUT/tap.json" --hgrm "$OUT/tap.hgrm" >"$OUT/tap.txt" 2>"$OUT/tap.err"
    stop_server
    report tap "$OUT/tap.json" "$OUT/tap-server.json"
fi
echo "outputs in $OUT"
