#!/usr/bin/env bash
# The project's test command: format, lints, then every test (unit, golden, integration).
# Integration tests spawn DPDK processes on virtual PMDs and need root; they skip (saying so)
# otherwise. Run scripts/setup.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
