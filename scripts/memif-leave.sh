#!/usr/bin/env bash
# memif clients coming and going against ONE running fast path (issue 11 §2, docs/memif.md):
# `bypass serve --mode rpc --poll-mode busy` on hugepages, its worker on CPU 1, a net_memif
# server port; then CYCLES clients of each kind, one at a time, from CPU 0:
#
#   orderly  `bypass load --transport dpdk` runs a short bounded load (--count) and exits 0.
#   abrupt   the same client with a long --duration, SIGKILLed 0-250 ms after its traffic
#            starts (after its "dpdk port" line), so it dies with requests in flight.
#   shutdown (only when KINDS names it) a client SIGKILLed and the server sent SIGINT back
#            to back (either first), so the server's port stop meets its handling of the
#            disconnect; it must exit 0 with a final report and a full mempool. A new
#            server follows.
#
# After each cycle the server must still be alive (a crash is counted, its exit status and
# stderr kept, and a new server started so the run goes on). At the end the server gets SIGINT
# and must exit 0 with a final JSON report whose mempool is full, leaving no hugepage file,
# socket or runtime folder of its own behind.
#
#   sudo scripts/memif-leave.sh            # 100 cycles of each kind
#   sudo scripts/memif-leave.sh 20         # 20 of each
#   sudo KINDS=abrupt BIN=target/debug/bypass scripts/memif-leave.sh 50
#
# Prints one line per kind (`orderly: cycles 100 crashes 0 failures 0`; a failure is a client
# that did not get every reply or never started, or a shutdown without exit 0, report or full
# pool) and a final line; exits 0 only when nothing crashed, no orderly or shutdown cycle
# failed and the end checks held.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLES="${1:-100}"
KINDS="${KINDS:-orderly abrupt}"
BIN="${BIN:-target/release/bypass}"
COUNT="${COUNT:-5000}"
case "$CYCLES" in '' | *[!0-9]*) echo "memif-leave: CYCLES is a number" >&2; exit 2 ;; esac
for k in $KINDS; do
    case "$k" in orderly | abrupt | shutdown) ;; *) echo "memif-leave: KINDS are orderly, abrupt, shutdown" >&2; exit 2 ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "memif-leave: run as root (hugepages)" >&2; exit 1; }
grep -qs " hugetlbfs " /proc/mounts || { echo "memif-leave: no hugetlbfs: run scripts/setup.sh" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --quiet

tag="memif-leave-$$"
sock="/run/bypass-$tag.sock"
OUT="${OUT:-$(mktemp -d /tmp/$tag.XXXX)}"
mkdir -p "$OUT"
server_pid=""
client_pid=""
servers=0
cleanup() {
    [ -n "$client_pid" ] && kill -KILL "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -f "$sock" /dev/hugepages/"$tag"-*
    rm -rf /var/run/dpdk/"$tag"-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eal=(--no-pci --huge-unlink --no-telemetry -m 256)

start_server() {
    servers=$((servers + 1))
    rm -f "$sock"
    "$BIN" serve --mode rpc --ip 198.18.0.1 --poll-mode busy --json --interval-ms 600000 \
        --duration 86400 -- --lcores=0@0,1@1 "${eal[@]}" --file-prefix "$tag-s$servers" \
        "--vdev=net_memif0,role=server,socket=$sock,socket-abstract=no" \
        >"$OUT/server$servers.json" 2>"$OUT/server$servers.err" &
    server_pid=$!
    for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
    echo "memif-leave: the server did not make its socket (see $OUT/server$servers.err)" >&2
    exit 1
}

# Alive and not a zombie: a crashed child stays in the table until it is waited for.
server_alive() {
    local st
    st=$(cut -d' ' -f3 "/proc/$server_pid/stat" 2>/dev/null) || return 1
    [ "$st" != Z ]
}

# Called after each cycle: counts a crash of the server (and starts a new one) for kind $1.
check_server() {
    sleep 0.3 # let it handle the disconnect; a crash shows within microseconds of it
    server_alive && return 0
    local rc=0
    wait "$server_pid" || rc=$?
    echo "memif-leave: $1 cycle $2: the server died (status $rc, $OUT/server$servers.err)" >&2
    crashes[$1]=$((${crashes[$1]} + 1))
    server_pid=""
    start_server
}

client() { # prefix count-or-duration-args... ; runs in the background, sets client_pid
    local prefix=$1
    shift
    "$BIN" load --transport dpdk --server 198.18.0.1:7777 --client-ip 198.18.0.2 --window 8 \
        --timeout-ms 500 "$@" -- --lcores=0@0 "${eal[@]}" --file-prefix "$prefix" \
        "--vdev=net_memif0,role=client,socket=$sock,socket-abstract=no" \
        >/dev/null 2>"$OUT/client.err" &
    client_pid=$!
}

orderly_cycle() {
    client "$tag-c$1" --count "$COUNT"
    local rc=0 t=0
    while kill -0 "$client_pid" 2>/dev/null && [ "$(cut -d' ' -f3 /proc/$client_pid/stat 2>/dev/null)" != Z ]; do
        t=$((t + 1))
        [ "$t" -lt 600 ] || { kill -KILL "$client_pid"; break; } # 30 s bound
        sleep 0.05
    done
    wait "$client_pid" || rc=$?
    client_pid=""
    if [ "$rc" -ne 0 ] || ! grep -q '"replies":'"$COUNT"',' "$OUT/client.err"; then
        failures[${2:-orderly}]=$((${failures[${2:-orderly}]} + 1))
        cp "$OUT/client.err" "$OUT/orderly-client-$1.err"
    fi
    rm -rf /var/run/dpdk/"$tag-c$1"
}

abrupt_cycle() {
    client "$tag-c$1" --duration 30
    local t=0
    until grep -qs "bypass load: dpdk port" "$OUT/client.err"; do
        t=$((t + 1))
        if [ "$t" -ge 400 ] || ! kill -0 "$client_pid" 2>/dev/null; then # 20 s bound
            failures[abrupt]=$((${failures[abrupt]} + 1))
            cp "$OUT/client.err" "$OUT/abrupt-client-$1.err"
            break
        fi
        sleep 0.05
    done
    sleep "0.$(printf '%03d' $((RANDOM % 250)))"
    kill -KILL "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
    client_pid=""
    rm -rf /var/run/dpdk/"$tag-c$1"
}

# Stops the server with SIGINT and checks its exit: status 0, a final report, every buffer
# back. Sets end_rc and the final report's fields.
stop_server() { # [sent]: SIGINT already sent
    [ "${1:-}" = sent ] || kill -INT "$server_pid" 2>/dev/null || true
    end_rc=0
    wait "$server_pid" || end_rc=$?
    server_pid=""
    local last
    last=$(tail -n 1 "$OUT/server$servers.json")
    final=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["type"], r["mempool"]["in_use"], r["rx"], r["tx"], r["drops"])' "$last" 2>/dev/null || echo "none")
    read -r ftype in_use rx tx drops <<<"$final" || true
    [ "$end_rc" -eq 0 ] && [ "${ftype:-}" = final ] && [ "${in_use:-x}" = 0 ]
}

shutdown_cycle() {
    client "$tag-c$1" --duration 30
    local t=0
    until grep -qs "bypass load: dpdk port" "$OUT/client.err"; do
        t=$((t + 1))
        [ "$t" -lt 400 ] && kill -0 "$client_pid" 2>/dev/null || break # 20 s bound
        sleep 0.05
    done
    sleep "0.$(printf '%03d' $((RANDOM % 250)))"
    # Back to back, in either order: the server's port stop meets the disconnect.
    if [ $((RANDOM % 2)) -eq 0 ]; then
        kill -KILL "$client_pid"; kill -INT "$server_pid"
    else
        kill -INT "$server_pid"; kill -KILL "$client_pid"
    fi
    wait "$client_pid" 2>/dev/null || true
    client_pid=""
    rm -rf /var/run/dpdk/"$tag-c$1"
    if ! stop_server sent; then
        echo "memif-leave: shutdown cycle $1: status $end_rc, report ${ftype:-none}, in use ${in_use:-?} ($OUT/server$servers.err)" >&2
        if [ "$end_rc" -ge 128 ]; then
            crashes[shutdown]=$((${crashes[shutdown]} + 1))
        else
            failures[shutdown]=$((${failures[shutdown]} + 1))
        fi
    fi
    start_server
}

declare -A crashes=([orderly]=0 [abrupt]=0 [shutdown]=0) failures=([orderly]=0 [abrupt]=0 [shutdown]=0) done_=([orderly]=0 [abrupt]=0 [shutdown]=0)
start_server
for i in $(seq "$CYCLES"); do
    for k in $KINDS; do
        "${k}_cycle" "$i"
        check_server "$k" "$i"
        done_[$k]=$((${done_[$k]} + 1))
    done
done

# The end: SIGINT, exit 0, a final report with every buffer back, nothing left behind.
end_ok=1
stop_server || true
rc=$end_rc
[ "$rc" -eq 0 ] || { echo "memif-leave: the server exited with status $rc" >&2; end_ok=0; }
[ "${ftype:-}" = final ] || { echo "memif-leave: no final report" >&2; end_ok=0; }
[ "${in_use:-x}" = 0 ] || { echo "memif-leave: server mempool in use at exit: ${in_use:-?}" >&2; end_ok=0; }
left=$(ls -d "$sock" /dev/hugepages/"$tag"-* 2>/dev/null || true)
[ -z "$left" ] || { echo "memif-leave: left behind: $left" >&2; end_ok=0; }
# DPDK 22.11 with a shared config (memif needs one) keeps its config and fbarray files in
# /var/run/dpdk/<prefix> after a clean exit; they are not ours to count as a leak.
rm -rf /var/run/dpdk/"$tag"-*

for k in $KINDS; do
    echo "$k: cycles ${done_[$k]} crashes ${crashes[$k]} failures ${failures[$k]}"
done
echo "end: server exit $rc, final report ${ftype:-none}, mempool in use ${in_use:-?}, rx ${rx:-?} tx ${tx:-?} drops ${drops:-?}, servers started $servers, logs in $OUT"
total=0
for k in $KINDS; do total=$((total + ${crashes[$k]})); done
[ "$total" -eq 0 ] && [ "${failures[orderly]}" -eq 0 ] && [ "${failures[shutdown]}" -eq 0 ] && [ "$end_ok" -eq 1 ]
