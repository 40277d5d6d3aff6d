#!/usr/bin/env bash
# The soak (issue 11 §3): the fast path (`bypass serve --mode rpc`, busy poll, hugepages) for
# MINUTES minutes under two loads at once: the DPDK client (`bypass load --transport dpdk`,
# closed loop, window 1) over net_memif, and net_pcap replaying RPC echo requests forever
# (infinite_rx, replies dropped by the PMD). Every SAMPLE_S seconds it samples the server's
# and the client's RSS (/proc/PID/status VmRSS) and open fds (/proc/PID/fd), and the buffers
# out of the server's pool (`mempool_in_use` of serve's JSON interval line) into soak.csv.
#
#   sudo scripts/soak.sh            # 10 minutes
#   sudo scripts/soak.sh 2          # the shortest meaningful run (first and last minute differ)
#   sudo KEEP=/tmp/soak scripts/soak.sh 10   # keep the CSV, JSON lines and hlog there
#
# Pass/fail lines at the end (exit 1 if any fails):
#   rss      growth of each process's RSS after warm-up (WARMUP_S, default 30 s) <= RSS_BOUND_KB
#            (default 1024 kB): the largest sample after warm-up minus the first one
#   fds      each process's open fds identical in every sample after warm-up
#   pool     the peak of mempool_in_use in the second half of the samples after warm-up
#            within POOL_BOUND (default 64) buffers of the first half's peak (a sample swings
#            with what sits in rings; a leak climbs); mempool.in_use == 0 in serve's final
#            report (pool full at exit)
#   counters serve: rx == tx + drops; per port, rx - tx - tx_drops >= 0 and those residuals sum
#            to the graph's drops; ipackets == rx + drained and opackets == tx where the PMD
#            keeps port stats (net_pcap); memif end to end: client tx_frames == server rx and
#            server tx == client rx_frames exactly (the client finishes first and waits for
#            every reply it is owed); client sent == received + lost; both pools full at exit
#   drift    p50 and p99 of the first and the last minute (the client's .hlog, one interval
#            per second): drift = last - first must be covered by the spread: the widest range
#            of the six 10-second windows inside the first or the last minute, and the largest
#            step between consecutive minutes other than first -> last itself (so a steady
#            drift over 3+ minutes is caught even when each step is small)
#
# Needs root, hugetlbfs, python3 with the PyPI `hdrh` module (pip install hdrhistogram).
# CPUs: the control lcore and the client on CLIENT_CPU (0), both server workers on
# SERVER_CPU (1). Addresses from 198.18.0.0/15; nothing outside this run's prefixes and
# temporary folder is touched, and those are removed on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${1:-10}"
SAMPLE_S="${SAMPLE_S:-5}"
WARMUP_S="${WARMUP_S:-30}"
RSS_BOUND_KB="${RSS_BOUND_KB:-1024}"
POOL_BOUND="${POOL_BOUND:-64}"
CLIENT_CPU="${CLIENT_CPU:-0}"
SERVER_CPU="${SERVER_CPU:-1}"
IP=198.18.120.1
CLIENT_IP=198.18.120.2
MAC=02:00:00:00:00:01
BIN="${BIN:-target/release/bypass}"
GEN="${GEN:-target/release/examples/gen_rpc_pcap}"

die() { echo "soak: $*" >&2; exit 1; }
[[ "$MINUTES" =~ ^[0-9]+$ ]] && [ "$MINUTES" -ge 2 ] || die "MINUTES must be a whole number >= 2"
[ "$(id -u)" -eq 0 ] || die "run as root (hugepages, DPDK)"
grep -qs " hugetlbfs " /proc/mounts || die "no hugetlbfs mounted: run scripts/setup.sh"
python3 -c 'import hdrh.log' 2>/dev/null || die "python3 needs the hdrh module: pip install hdrhistogram"
if [ "$BIN" = target/release/bypass ]; then
    cargo build --release --quiet --bin bypass --example gen_rpc_pcap
fi

tag="soak-$$"
work=$(mktemp -d "/tmp/bypass-$tag.XXXXXX")
serve_pid=""
client_pid=""
cleanup() {
    for p in $client_pid $serve_pid; do
        kill -INT "$p" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP" && cp "$work"/*.csv "$work"/*.json "$work"/*.hlog "$work"/*.err "$KEEP"/ 2>/dev/null || true
    fi
    rm -rf "$work" /var/run/dpdk/"$tag"-*
    find /dev/hugepages -maxdepth 1 -name "$tag-*" -delete 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$GEN" "$work/rpc.pcap" 1024 0 "$MAC" "$IP" >/dev/null
memif() { echo "--vdev=net_memif0,role=$1,socket=$work/memif.sock,socket-abstract=no"; }
secs=$((MINUTES * 60))

# Telemetry stays on (no --no-telemetry): it costs nothing until someone connects.
"$BIN" serve --mode rpc --ip "$IP" --mac "$MAC" --poll-mode busy --json --interval-ms 1000 \
    --duration "$((secs + 120))" -- \
    "--lcores=0@$CLIENT_CPU,1@$SERVER_CPU,2@$SERVER_CPU" --no-pci --huge-unlink \
    --file-prefix "$tag-s" "$(memif server)" "--vdev=net_pcap0,rx_pcap=$work/rpc.pcap,infinite_rx=1" \
    >"$work/serve.json" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 300); do
    grep -qs '"type":"interval"' "$work/serve.json" && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; die "bypass serve did not start"; }
    sleep 0.1
done
grep -qs '"type":"interval"' "$work/serve.json" || die "bypass serve never reported"

# The client is measured 15 s longer than MINUTES, so its last whole minute (it starts
# measuring 5-8 s in, after EAL, ARP and warm-up) is whole. It finishes on its own, waiting
# for the replies still owed, and leaves the busy server (safe since issue 11, docs/memif.md);
# only then is the server stopped, so nothing is in flight and the memif counts match exactly.
"$BIN" load --transport dpdk --server "$IP:7777" --client-ip "$CLIENT_IP" --warmup 5 \
    --duration "$((secs + 15))" --json "$work/client.json" --hlog "$work/client.hlog" -- \
    "--lcores=0@$CLIENT_CPU" --no-pci --huge-unlink --file-prefix "$tag-c" "$(memif client)" \
    >/dev/null 2>"$work/client.err" &
client_pid=$!

# Samples: seconds since the client started, then per process RSS (kB) and fds, then the
# server's pool use and packet rate (its last interval line).
# Running, not a zombie: a child that exited stays signalable until it is waited for.
alive() { [ -e "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
echo "t_s,serve_rss_kb,serve_fds,client_rss_kb,client_fds,mempool_in_use,serve_rx_pps" >"$work/soak.csv"
start=$(date +%s)
echo "soak: ${MINUTES} min (+5 s client warm-up), samples every ${SAMPLE_S} s; server $serve_pid, client $client_pid" >&2
next=0
while alive "$client_pid" && alive "$serve_pid"; do
    now=$(($(date +%s) - start))
    # Bounded: the client's run plus a minute for EAL, ARP, warm-up and its final wait.
    [ "$now" -lt $((secs + 80)) ] || { echo "soak: the client overran its run" >&2; break; }
    if [ "$now" -lt "$next" ]; then
        sleep 0.5
        continue
    fi
    next=$((now + SAMPLE_S))
    last=$(grep '"type":"interval"' "$work/serve.json" | tail -n 1)
    pool=$(sed -nE 's/.*"mempool_in_use":([0-9]+).*/\1/p' <<<"$last")
    pps=$(sed -nE 's/.*"rx_pps":([0-9.e+]+).*/\1/p' <<<"$last" | head -n 1)
    c_rss=$(rss "$client_pid")
    [ -n "$c_rss" ] || break
    echo "$now,$(rss "$serve_pid"),$(fds "$serve_pid"),$c_rss,$(fds "$client_pid"),$pool,$pps" >>"$work/soak.csv"
done
# Bounded stops: SIGINT, up to 30 s for the final report, then the exit status (128+N: a
# death by signal N).
stop_rc=0
stop() { # pid; sets stop_rc
    if alive "$1"; then
        kill -INT "$1" 2>/dev/null || true
        for _ in $(seq 300); do alive "$1" || break; sleep 0.1; done
        alive "$1" && kill -KILL "$1" 2>/dev/null || true
    fi
    stop_rc=0
    wait "$1" || stop_rc=$?
}
stop "$client_pid"
client_rc=$stop_rc
client_pid=""
stop "$serve_pid"
serve_rc=$stop_rc
serve_pid=""

python3 - "$work" "$WARMUP_S" "$RSS_BOUND_KB" "$POOL_BOUND" "$serve_rc" "$client_rc" <<'EOF'
import csv, json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

work, warmup_s, rss_bound, pool_bound = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
serve_rc, client_rc = int(sys.argv[5]), int(sys.argv[6])
failed = []

def line(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        failed.append(what)

def verdict():
    print("soak: " + ("PASS" if not failed else f"FAIL ({len(failed)} checks)"))
    sys.exit(1 if failed else 0)

def tail(name):
    return " | ".join(l.strip() for l in open(f"{work}/{name}").readlines()[-3:])

line(serve_rc == 0, f"bypass serve exit status {serve_rc}" + (f": {tail('serve.err')}" if serve_rc else ""))
line(client_rc == 0, f"bypass load exit status {client_rc}" + (f": {tail('client.err')}" if client_rc else ""))

rows = list(csv.DictReader(open(f"{work}/soak.csv")))
after = [r for r in rows if float(r["t_s"]) >= warmup_s]
print(f"samples: {len(rows)} ({len(after)} after the {warmup_s:.0f} s warm-up)")
if len(after) < 2:
    line(False, "too few samples after warm-up to judge RSS, fds and pool")
else:
    for who in ("serve", "client"):
        rss = [int(r[f"{who}_rss_kb"]) for r in after]
        growth = max(rss) - rss[0]
        line(growth <= rss_bound, f"rss {who}: {rss[0]} kB after warm-up, max {max(rss)} kB, "
             f"last {rss[-1]} kB, growth {growth} kB (bound {rss_bound} kB)")
        fds = [int(r[f"{who}_fds"]) for r in after]
        line(len(set(fds)) == 1, f"fds {who}: {min(fds)}..{max(fds)} after warm-up (bound: no change)")
    # A sample catches whatever sits in rings and caches at that instant, so it swings by a
    # burst or two (1,088-1,281 in a 2-minute run); a leak climbs. The later half's peak may
    # exceed the earlier half's by at most the bound.
    pool = [int(r["mempool_in_use"]) for r in after if r["mempool_in_use"]]
    half = len(pool) // 2
    early, late = pool[:half] or [0], pool[half:] or [0]
    line(len(pool) >= 2 and max(late) - max(early) <= pool_bound,
         f"pool in use after warm-up: {min(pool, default=0)}..{max(pool, default=0)}; peak of the first "
         f"half {max(early)}, of the second {max(late)} (bound: the second within {pool_bound} of the first)")

serve = [json.loads(l) for l in open(f"{work}/serve.json")]
fin = serve[-1] if serve else {}
if fin.get("type") != "final" or client_rc != 0:
    line(False, "no final report from both programs: counters and latency not judged")
    verdict()
line(fin["mempool"]["in_use"] == 0,
     f"pool full at exit: in_use {fin['mempool']['in_use']} of {fin['mempool']['capacity']}")
rx, tx, drops = fin["rx"], fin["tx"], fin["drops"]
line(rx == tx + drops, f"serve rx {rx} == tx {tx} + drops {drops}")
tx_drops = sum(w["tx_drops"] for w in fin["workers"])
graph_drops = drops - tx_drops
residual = 0
for w in fin["workers"]:
    r = w["rx"] - w["tx"] - w["tx_drops"]
    residual += r
    line(r >= 0, f"port {w['port']}: rx {w['rx']} = tx {w['tx']} + tx_drops {w['tx_drops']} + graph drops {r}")
line(residual == graph_drops, f"per-port graph drops sum {residual} == graph drops {graph_drops} "
     f"({fin['drops_by_reason']})")
by_port = {w["port"]: w for w in fin["workers"]}
for p in fin["ports"]:
    s, w = p["stats"], by_port[p["name"]]
    if s["ipackets"] or s["opackets"]:
        line(s["ipackets"] == w["rx"] + p["drained"] and s["opackets"] == w["tx"],
             f"port {p['name']} stats: ipackets {s['ipackets']} == rx + drained {p['drained']}, "
             f"opackets {s['opackets']} == tx; imissed {s['imissed']}, rx_nombuf {s['rx_nombuf']}")
dpdk = [l for l in open(f"{work}/client.err") if l.startswith("dpdk: ")]
cl = json.loads(dpdk[-1][len("dpdk: "):])
m = by_port["net_memif0"]
# The client finished first and waited for what it was owed: every frame either way arrived.
unseen_req, unseen_reply = cl["tx_frames"] - m["rx"], m["tx"] - cl["rx_frames"]
line(unseen_req == 0 and unseen_reply == 0,
     f"memif end to end: client tx_frames {cl['tx_frames']} - server rx {m['rx']} = {unseen_req}, "
     f"server tx {m['tx']} - client rx_frames {cl['rx_frames']} = {unseen_reply} "
     f"(bound: 0, nothing in flight when the client left)")
line(cl["mempool"]["in_use"] == 0, f"client pool full at exit: in_use {cl['mempool']['in_use']}")
s = json.load(open(f"{work}/client.json"))["summary"]
line(s["sent"] == s["received"] + s["lost"],
     f"client sent {s['sent']} == received {s['received']} + lost {s['lost']} "
     f"(late {s['late']}, {s['achieved_rate']:.0f} req/s)")
pcap = by_port["net_pcap0"]
print(f"load: memif {m['rx'] / fin['elapsed_s']:.0f} pkt/s, pcap replay {pcap['rx'] / fin['elapsed_s'] / 1e6:.2f} Mpps "
      f"over {fin['elapsed_s']:.0f} s")

# Latency by minute and by 10 s window, from the one-second intervals of the client's log.
reader = HistogramLogReader(f"{work}/client.hlog", HdrHistogram(1, 60_000_000_000, 3))
secs = []
while (h := reader.get_next_interval_histogram()) is not None:
    secs.append(h)
reader.close()
t0 = secs[0].get_start_time_stamp()

def merged(hs):
    m = HdrHistogram(1, 60_000_000_000, 3)
    for h in hs:
        m.add(h)
    return m

def at(start_s, length_s):
    return [h for h in secs if start_s <= (h.get_start_time_stamp() - t0) / 1000 < start_s + length_s]

minutes = len(secs) // 60
mins = [merged(at(60 * k, 60)) for k in range(minutes)]
print("minute  count     p50_us   p99_us")
for k, h in enumerate(mins):
    print(f"{k + 1:>6}  {h.get_total_count():>8}  {h.get_value_at_percentile(50) / 1e3:>7.2f}  "
          f"{h.get_value_at_percentile(99) / 1e3:>7.2f}")
for name, q in (("p50", 50.0), ("p99", 99.0)):
    vals = [h.get_value_at_percentile(q) for h in mins]
    windows = {}
    for k in (0, minutes - 1):
        w = [merged(at(60 * k + 10 * j, 10)).get_value_at_percentile(q) for j in range(6)]
        windows[k] = (min(w), max(w))
    steps = [abs(vals[i + 1] - vals[i]) for i in range(minutes - 1) if not (i == 0 and minutes == 2)]
    spread = max([hi - lo for lo, hi in windows.values()] + steps)
    drift = vals[-1] - vals[0]
    first, last = windows[0], windows[minutes - 1]
    line(abs(drift) <= spread,
         f"drift {name}: first minute {vals[0] / 1e3:.2f} us [10 s windows {first[0] / 1e3:.2f}..{first[1] / 1e3:.2f}], "
         f"last {vals[-1] / 1e3:.2f} us [{last[0] / 1e3:.2f}..{last[1] / 1e3:.2f}], drift {drift / 1e3:+.2f} us, "
         f"spread {spread / 1e3:.2f} us")
verdict()
EOF
