#!/usr/bin/env bash
# Miri over the unit tests that run without FFI (issue 11 §4; docs/robustness.md says which):
# undefined behaviour, out-of-bounds and uninitialised reads, aliasing violations (Stacked
# Borrows) in the wire views, the graph and its nodes on the plain byte buffer, the stats code.
# Needs the nightly toolchain with the miri component (the script adds it if rustup can).
# Usage: scripts/miri.sh [TEST-FILTER ...]   (default: the modules below, about 15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
cargo +nightly miri setup >/dev/null

# The modules Miri can run: no DPDK, no sockets, no TSC (src/os/tsc.rs falls back to a clock).
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(wire:: graph:: stats:: drops:: options:: pcap::)

# Isolation off: a few tests read the clock or write temporary files. Two CPUs, as here: some
# tests check CPU lists against the affinity mask.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation -Zmiri-num-cpus=2}"
status=0
for f in "${filters[@]}"; do
    echo "miri: $f" >&2
    cargo +nightly miri test --lib -- "$f" || status=1
done
exit $status
