#!/usr/bin/env bash
# The bypass round trip against the shared-memory floor, in one run: `bypass lab` on
# configs/bench-floor.toml runs the floor (an SPSC ring each way between two pinned threads),
# the same ping-pong through memif's ring layout, the fast path answering the DPDK client over
# net_memif, and kernel UDP over loopback (busy-polling), ROUNDS interleaved rounds each
# (A B C D A B C D ..), and prints each path's p50 / p99 / p99.9 with their intervals, its p50
# as a multiple of the floor (from the paired rounds), and the comparisons.
#
#   sudo benches/memif-vs-floor.sh                    # 8 rounds of 2 s per path (~2 min)
#   sudo ROUNDS=12 SECS=3 benches/memif-vs-floor.sh
#   sudo OUT=/tmp/floor benches/memif-vs-floor.sh     # keep the results folder
#
# Servers run on CPU 1 and clients on CPU 0 (CLIENT_CPU / SERVER_CPU to change). The full
# report, plots and per-round histograms are in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-8}"
SECS="${SECS:-2}"
CLIENT_CPU="${CLIENT_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
BIN="${BIN:-target/release/bypass}"
OUT="${OUT:-$(mktemp -d /tmp/bypass-floor-bench.XXXXXX)}"

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (namespaces, hugepages)" >&2; exit 1; }
grep -qs " hugetlbfs " /proc/mounts || { echo "bench: no hugetlbfs: run scripts/setup.sh" >&2; exit 1; }
case "$ROUNDS$SECS" in *[!0-9.]*) echo "bench: ROUNDS and SECS are numbers" >&2; exit 2 ;; esac
[ -x "$BIN" ] || cargo build --release --quiet

scenario="$(mktemp /tmp/bypass-floor-bench.XXXXXX.toml)"
trap 'rm -f "$scenario"' EXIT
sed -e "s/^repeats = .*/repeats = $ROUNDS/" \
    -e "s/^duration = .*/duration = $SECS/" \
    -e "s/^client_cpu = .*/client_cpu = $CLIENT_CPU/" \
    -e "s/^server_cpu = .*/server_cpu = $SERVER_CPU/" \
    configs/bench-floor.toml > "$scenario"

echo "bench: $ROUNDS rounds of $SECS s per path, clients on CPU $CLIENT_CPU, servers on CPU $SERVER_CPU; results in $OUT" >&2
mkdir -p "$OUT"
status=0
"$BIN" lab "$scenario" --out "$OUT" > "$OUT/lab.log" 2>&1 || status=$?
if [ ! -f "$OUT/report.md" ]; then
    cat "$OUT/lab.log" >&2
    exit "${status:-1}"
fi
# The lab's own tables: round trips with intervals and x floor, the floor section, the verdicts.
sed -n '/^| path | status/,/^$/p' "$OUT/report.md"
sed -n '/^## The floor/,/^## Platform/p' "$OUT/report.md" | sed '$d'
[ "$status" -eq 0 ] || echo "bench: the lab exited with $status (see $OUT/lab.log)" >&2
exit "$status"
