#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (issue 11 §1) for a given time each, one at a time,
# and prints each run's executions from libFuzzer's final stats.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     defaults: all, 60
#   FUZZ_SANITIZER=none scripts/fuzz.sh ...    build without AddressSanitizer (faster)
#
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. The committed seeds
# (fuzz/corpus/TARGET) are read only; what libFuzzer finds goes to fuzz/work/TARGET
# (ignored by git), and crashes to fuzz/artifacts/TARGET. Replay the seeds on stable with
# `cargo test --test fuzz_corpus`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

target=${1:-all}
seconds=${2:-60}
sanitizer=${FUZZ_SANITIZER:-address}
all_targets=(wire_views server_graph)

case "$target" in
all) targets=("${all_targets[@]}") ;;
wire_views | server_graph) targets=("$target") ;;
*)
    echo "usage: $0 [all|wire_views|server_graph] [SECONDS]" >&2
    exit 2
    ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi

status=0
for t in "${targets[@]}"; do
    mkdir -p "work/$t"
    log="work/$t.log"
    echo "== $t: ${seconds}s, sanitizer $sanitizer"
    # -print_final_stats gives stat::number_of_executed_units; the last "#N" status line
    # is the fallback. The first corpus directory receives new inputs, the second is read.
    if cargo fuzz run -s "$sanitizer" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$t)"
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    grep -E '^#[0-9]+' "$log" | tail -1 || true
    echo "== $t: ${execs:-?} executions in ${seconds}s: $result"
done
exit "$status"
