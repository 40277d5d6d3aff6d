#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (issue 11 §1) for a given time each, one at a time,
# and prints each run's executions from libFuzzer's final stats.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     defaults: all, 60
#   FUZZ_RUNS=N scripts/fuzz.sh ...            also stop each target after N executions
#   FUZZ_SANITIZER=none scripts/fuzz.sh ...    build without AddressSanitizer (faster)
#
# `all` is every target in fuzz/fuzz_targets, whatever is there. Stable toolchain:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. The committed seeds
# (fuzz/corpus/TARGET) are read only; what libFuzzer finds goes to fuzz/work/TARGET
# (ignored by git), and crashes to fuzz/artifacts/TARGET. Replay the seeds on stable with
# `cargo test --test fuzz_corpus`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

target=${1:-all}
seconds=${2:-60}
runs=${FUZZ_RUNS:--1}
sanitizer=${FUZZ_SANITIZER:-address}
all_targets=()
for f in fuzz_targets/*.rs; do
    all_targets+=("$(basename "$f" .rs)")
done

if [[ "$target" == all ]]; then
    targets=("${all_targets[@]}")
elif [[ " ${all_targets[*]} " == *" $target "* ]]; then
    targets=("$target")
else
    (IFS='|'; echo "usage: $0 [all|${all_targets[*]}] [SECONDS]" >&2)
    exit 2
fi
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number" >&2; exit 2; }
[[ "$runs" =~ ^-?[0-9]+$ ]] || { echo "FUZZ_RUNS must be a whole number" >&2; exit 2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

# Flags one target needs beyond the common ones.
extra_flags() {
    case "$1" in
    # No single allocation above 1 MiB, whatever a record header claims (the reader
    # caps a record at MAX_CAPLEN, 256 KiB). Needs the sanitizer's malloc hooks.
    pcap_reader) echo "-malloc_limit_mb=1" ;;
    # Long inputs make each execution slow (a stream is cut and fed many ways); 4 KiB
    # already holds several whole messages and every split of a header.
    stream_framing) echo "-max_len=4096" ;;
    esac
}

status=0
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "corpus/$t"
    log="work/$t.log"
    echo "== $t: ${seconds}s, sanitizer $sanitizer"
    # -print_final_stats gives stat::number_of_executed_units; the last "#N" status line
    # is the fallback. The first corpus directory receives new inputs, the second is read.
    # shellcheck disable=SC2046 # extra_flags prints whole words
    if cargo fuzz run -s "$sanitizer" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 $(extra_flags "$t") \
        >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$t)"
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    grep -E '^#[0-9]+' "$log" | tail -1 || true
    echo "== $t: ${execs:-?} executions: $result"
done
exit "$status"
