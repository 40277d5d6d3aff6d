#!/usr/bin/env bash
# bypass serve --mode io against dpdk-testpmd --forward-mode=io on the same vdev, cores and
# hugepages, back to back (alternating, ROUNDS times), printing both packet rates and the ratio.
#
#   sudo benches/io-vs-testpmd.sh                      # net_null0, lcores 0,1, 8 s per run
#   sudo VDEV=net_null0 CORES=0,1 SECS=8 ROUNDS=3 benches/io-vs-testpmd.sh
#
# Each rate is the median of the per-second readings after the first (warm-up) second.
set -euo pipefail
cd "$(dirname "$0")/.."

VDEV="${VDEV:-net_null0}"
CORES="${CORES:-0,1}"
SECS="${SECS:-8}"
ROUNDS="${ROUNDS:-2}"
BURST="${BURST:-32}"
BIN="${BIN:-target/release/bypass}"
TESTPMD="${TESTPMD:-dpdk-testpmd}"

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (hugepages)" >&2; exit 1; }
grep -qs " hugetlbfs " /proc/mounts || { echo "bench: no hugetlbfs: run scripts/setup.sh" >&2; exit 1; }
command -v "$TESTPMD" >/dev/null || { echo "bench: $TESTPMD not found: run scripts/setup.sh" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --quiet

work=$(mktemp -d)
cleanup() {
    rm -rf "$work" /var/run/dpdk/bench-tp-* /var/run/dpdk/bench-bp-*
    rm -f /dev/hugepages/bench-tp-*map_* /dev/hugepages/bench-bp-*map_*
}
trap cleanup EXIT

eal_common=(-l "$CORES" --no-pci --huge-unlink "--vdev=$VDEV")

run_testpmd() { # round
    timeout -s INT "$((SECS + 1))" "$TESTPMD" "${eal_common[@]}" --file-prefix "bench-tp-$1" -- \
        --forward-mode=io --nb-cores=1 --burst="$BURST" --stats-period 1 \
        >"$work/tp-$1.log" 2>&1 || true
    grep -oE 'Rx-pps: +[0-9]+' "$work/tp-$1.log" | awk '{print $2}' | tail -n +3 >>"$work/tp.rates"
}

run_bypass() { # round
    "$BIN" serve --mode io --burst "$BURST" --duration "$SECS" --json -- \
        "${eal_common[@]}" --file-prefix "bench-bp-$1" 2>"$work/bp-$1.err" >"$work/bp-$1.json"
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["type"] == "interval" and o["elapsed_s"] > 1.5:
        print(int(o["rx_pps"]))
' "$work/bp-$1.json" >>"$work/bp.rates"
}

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {print int((a[NR/2]+a[NR/2+1])/2)}}'; }

for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS: testpmd io ..." >&2
    run_testpmd "$r"
    echo "round $r/$ROUNDS: bypass serve io ..." >&2
    run_bypass "$r"
done

tp=$(median "$work/tp.rates")
bp=$(median "$work/bp.rates")
[ "$tp" -gt 0 ] || { echo "bench: no testpmd readings; log:" >&2; cat "$work/tp-1.log" >&2; exit 1; }
[ "$bp" -gt 0 ] || { echo "bench: no bypass readings; log:" >&2; cat "$work/bp-1.err" >&2; exit 1; }

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), DPDK $(pkg-config --modversion libdpdk)"
echo "setup:   vdev $VDEV, lcores $CORES (main + 1 worker), burst $BURST, 2 MiB hugepages, $ROUNDS x $SECS s each, median of 1 s readings"
python3 - "$tp" "$bp" <<'PY'
import sys
tp, bp = int(sys.argv[1]), int(sys.argv[2])
print(f"testpmd --forward-mode=io : {tp / 1e6:8.2f} Mpps")
print(f"bypass serve --mode io    : {bp / 1e6:8.2f} Mpps")
print(f"ratio bypass/testpmd      : {bp / tp:8.3f}  (target >= 0.95)")
PY
