#!/usr/bin/env bash
# The DPDK server and the DPDK client under valgrind memcheck once (issue 11 §4): a memif pair,
# the fast path in rpc mode, the client sending COUNT requests, then SIGINT to the server. Looks
# for invalid reads/writes, uses of uninitialised memory and leaks on the FFI edge.
# Usage: scripts/valgrind.sh [COUNT]   (default 2000). Needs root (memif socket, /var/run/dpdk).
# Output: each side's valgrind log in $OUT (default /tmp/bypass-valgrind) and a one-line verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
out=${OUT:-/tmp/bypass-valgrind}
bin=${BIN:-target/release/bypass}
[ -x "$bin" ] || cargo build --release
command -v valgrind >/dev/null || apt-get install -y valgrind
mkdir -p "$out"
sock=/run/bypass-valgrind-$$.sock
sp=vgs$$ cp=vgc$$
cleanup() {
    [ -n "${server:-}" ] && kill -KILL "$server" 2>/dev/null || true
    rm -rf "/var/run/dpdk/$sp" "/var/run/dpdk/$cp" "$sock"
}
trap cleanup EXIT
# No hugepages: valgrind cannot follow DPDK's hugepage remapping. --error-exitcode marks a
# memcheck error in the exit status.
vg=(valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite --track-origins=yes --num-callers=30)
eal() { echo "--lcores=$1 --no-huge --no-pci --no-telemetry -m 256 --file-prefix=$2 --vdev=$3"; }

# shellcheck disable=SC2046
"${vg[@]}" --log-file="$out/server.log" "$bin" serve --mode rpc --ip 198.18.0.1 \
    --poll-mode adaptive --json --duration 600 --interval-ms 60000 -- \
    $(eal 0@0,1@1 "$sp" "net_memif0,role=server,socket=$sock,socket-abstract=no") \
    > "$out/server.json" 2> "$out/server.stderr" &
server=$!
for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "valgrind: the server never made its memif socket" >&2; exit 1; }

set +e
# shellcheck disable=SC2046
"${vg[@]}" --log-file="$out/client.log" "$bin" load --transport dpdk --server 198.18.0.1:7777 \
    --client-ip 198.18.0.2 --window 8 --count "$count" --timeout-ms 2000 \
    --json "$out/client.json" -- \
    $(eal 0@0 "$cp" "net_memif0,role=client,socket=$sock,socket-abstract=no") \
    > "$out/client.stdout" 2> "$out/client.stderr"
client_rc=$?
# memif's disconnect handling races with a close (docs/memif.md): let it finish first.
sleep 2
kill -INT "$server"
wait "$server"
server_rc=$?
server=
set -e
summary() { grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$1" | sed 's/^==[0-9]*== //' | tr '\n' ';'; }
echo "valgrind: client exit $client_rc: $(summary "$out/client.log")"
echo "valgrind: server exit $server_rc: $(summary "$out/server.log")"
[ "$client_rc" = 0 ] && [ "$server_rc" = 0 ]
