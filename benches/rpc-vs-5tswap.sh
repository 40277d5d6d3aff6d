#!/usr/bin/env bash
# bypass serve --mode rpc against dpdk-testpmd --forward-mode=5tswap on the same input, vdev,
# cores and hugepages, back to back (alternating, ROUNDS times), printing both packet rates
# and the ratio.
#
#   sudo benches/rpc-vs-5tswap.sh                       # 74-byte requests, lcores 0,1, 8 s per run
#   sudo PAYLOAD=1024 SECS=5 ROUNDS=3 benches/rpc-vs-5tswap.sh
#   sudo ONLY=testpmd benches/rpc-vs-5tswap.sh          # one side only (testpmd or bypass)
#
# The input is a pcap of COUNT RPC echo requests (PAYLOAD bytes each; 0 gives 74-byte frames)
# written by examples/gen_rpc_pcap.rs and replayed forever by net_pcap (infinite_rx=1). With no
# tx stream given, net_pcap drops what is transmitted (its "tx_drop" mode), so both programs
# are measured on rx + processing + tx, with no sink cost.
#
# 5tswap is the fairest testpmd counterpart of an RPC echo: it swaps the MAC, IP and UDP
# addresses in place, as a reply does; bypass additionally parses every layer, validates the
# request, rewrites the RPC header, stamps server_ns and fixes the UDP checksum. Each rate is
# the median of the per-second readings after the first (warm-up) second; the target is
# bypass/testpmd >= 1.0.
set -euo pipefail
cd "$(dirname "$0")/.."

CORES="${CORES:-0,1}"
SECS="${SECS:-8}"
ROUNDS="${ROUNDS:-2}"
BURST="${BURST:-32}"
COUNT="${COUNT:-1024}"
PAYLOAD="${PAYLOAD:-0}"
MAC="${MAC:-02:00:00:00:00:01}"
IP="${IP:-198.18.0.1}"
BIN="${BIN:-target/release/bypass}"
GEN="${GEN:-target/release/examples/gen_rpc_pcap}"
TESTPMD="${TESTPMD:-dpdk-testpmd}"
ONLY="${ONLY:-}"
case "$ONLY" in "" | testpmd | bypass) ;; *) echo "bench: ONLY is testpmd or bypass" >&2; exit 2 ;; esac

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (hugepages)" >&2; exit 1; }
grep -qs " hugetlbfs " /proc/mounts || { echo "bench: no hugetlbfs: run scripts/setup.sh" >&2; exit 1; }
command -v "$TESTPMD" >/dev/null || { echo "bench: $TESTPMD not found: run scripts/setup.sh" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --quiet
[ -x "$GEN" ] || cargo build --release --quiet --example gen_rpc_pcap
[ "$ONLY" = testpmd ] || "$BIN" serve --help 2>/dev/null | grep -q -- '--ip' ||
    { echo "bench: $BIN has no rpc mode (serve --ip); rebuild it" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
    rm -rf "$work" /var/run/dpdk/bench-rpc-tp-* /var/run/dpdk/bench-rpc-bp-*
    rm -f /dev/hugepages/bench-rpc-tp-*map_* /dev/hugepages/bench-rpc-bp-*map_*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pcap="$work/rpc-echo.pcap"
"$GEN" "$pcap" "$COUNT" "$PAYLOAD" "$MAC" "$IP"
frame=$((14 + 20 + 8 + 32 + PAYLOAD))

eal_common=(-l "$CORES" --no-pci --huge-unlink "--vdev=net_pcap0,rx_pcap=$pcap,infinite_rx=1")

run_testpmd() { # round
    timeout -s INT "$((SECS + 1))" "$TESTPMD" "${eal_common[@]}" --file-prefix "bench-rpc-tp-$1" -- \
        --forward-mode=5tswap --nb-cores=1 --burst="$BURST" --auto-start --stats-period 1 \
        >"$work/tp-$1.log" 2>&1 || true
    # The first reading is taken before forwarding starts, the second is the warm-up second.
    grep -oE 'Tx-pps: +[0-9]+' "$work/tp-$1.log" | awk '{print $2}' | tail -n +3 >>"$work/tp.rates"
}

run_bypass() { # round
    "$BIN" serve --mode rpc --ip "$IP" --mac "$MAC" --burst "$BURST" --duration "$SECS" --json -- \
        "${eal_common[@]}" --file-prefix "bench-rpc-bp-$1" 2>"$work/bp-$1.err" >"$work/bp-$1.json" ||
        { echo "bench: bypass failed:" >&2; cat "$work/bp-$1.err" >&2; exit 1; }
    python3 -c '
import json, sys
rates, final = [], None
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["type"] == "interval" and o["elapsed_s"] > 1.5:
        rates.append(int(o["tx_pps"]))
    elif o["type"] == "final":
        final = o
if final is None:
    sys.exit("bench: bypass printed no final report")
# Every request must have been answered: a drop here means the pcap and the server disagree
# (MAC, IP, port) and the rate would measure the drop path, not the RPC path.
rx, tx = final["rx"], final["tx"]
if rx == 0 or tx < 0.999 * rx:
    reasons = final.get("drops_by_reason")
    sys.exit(f"bench: bypass answered {tx} of {rx} requests; drops: {reasons}")
print("\n".join(map(str, rates)))
' "$work/bp-$1.json" >>"$work/bp.rates"
}

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print a[(NR+1)/2]} else {print int((a[NR/2]+a[NR/2+1])/2)}}'; }

: >"$work/tp.rates"
: >"$work/bp.rates"
for r in $(seq 1 "$ROUNDS"); do
    if [ "$ONLY" != bypass ]; then
        echo "round $r/$ROUNDS: testpmd 5tswap ..." >&2
        run_testpmd "$r"
    fi
    if [ "$ONLY" != testpmd ]; then
        echo "round $r/$ROUNDS: bypass serve rpc ..." >&2
        run_bypass "$r"
    fi
done

tp=$(median "$work/tp.rates")
bp=$(median "$work/bp.rates")
[ "$ONLY" = bypass ] || [ "$tp" -gt 0 ] || { echo "bench: no testpmd readings; log:" >&2; cat "$work/tp-1.log" >&2; exit 1; }
[ "$ONLY" = testpmd ] || [ "$bp" -gt 0 ] || { echo "bench: no bypass readings; log:" >&2; cat "$work/bp-1.err" >&2; exit 1; }

echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), DPDK $(pkg-config --modversion libdpdk)"
echo "setup:   net_pcap infinite_rx of $COUNT RPC echo requests ($frame-byte frames, $PAYLOAD-byte payload), tx dropped by the PMD,"
echo "         lcores $CORES (main + 1 worker), burst $BURST, 2 MiB hugepages, $ROUNDS x $SECS s each, median of 1 s readings"
python3 - "$tp" "$bp" <<'PY'
import sys
tp, bp = int(sys.argv[1]), int(sys.argv[2])
if tp:
    print(f"testpmd --forward-mode=5tswap : {tp / 1e6:8.2f} Mpps")
if bp:
    print(f"bypass serve --mode rpc       : {bp / 1e6:8.2f} Mpps")
if tp and bp:
    print(f"ratio bypass/testpmd          : {bp / tp:8.3f}  (target >= 1.0)")
PY
