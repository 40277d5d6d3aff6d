#!/usr/bin/env bash
# Prepares a Debian machine for bypass, as root: packages, hugepages, hugetlbfs.
# Idempotent: every step checks first and says what it did or that nothing was needed.
#
#   sudo scripts/setup.sh                  # 1024 x 2 MiB hugepages (2 GiB)
#   sudo HUGEPAGES=4096 scripts/setup.sh   # more, for big pools or many ports
#   sudo HUGEPAGES=0 scripts/setup.sh      # packages only (tests run with --no-huge)
set -euo pipefail

HUGEPAGES="${HUGEPAGES:-1024}"
HUGE_MOUNT="${HUGE_MOUNT:-/dev/hugepages}"
PACKAGES=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev
          sockperf iproute2 iputils-ping tcpdump ethtool python3-pip libhdrhistogram-java)

say() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (packages, hugepages, mounts): sudo $0" >&2
    exit 1
fi
if ! [[ "$HUGEPAGES" =~ ^[0-9]+$ ]]; then
    echo "setup: HUGEPAGES must be a number of 2 MiB pages, got '$HUGEPAGES'" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v javac >/dev/null 2>&1; then
    missing+=(default-jdk-headless)
fi
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
else
    say "packages: all present"
fi

if python3 -c 'import hdrh' 2>/dev/null; then
    say "python hdrhistogram: present"
else
    say "installing python hdrhistogram (reads .hlog files in the tests)"
    pip3 install -q --break-system-packages hdrhistogram 2>/dev/null || pip3 install -q hdrhistogram
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup: no Rust toolchain found (cargo); install one with rustup first" >&2
    exit 1
fi

cur=$(cat /proc/sys/vm/nr_hugepages)
if [ "$cur" -ge "$HUGEPAGES" ]; then
    say "hugepages: $cur x 2 MiB reserved (wanted $HUGEPAGES)"
else
    echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages
    got=$(cat /proc/sys/vm/nr_hugepages)
    say "hugepages: reserved $got x 2 MiB (wanted $HUGEPAGES)"
    if [ "$got" -lt "$HUGEPAGES" ]; then
        say "warning: the kernel gave fewer pages than asked (fragmented memory?)"
    fi
fi

if [ "$HUGEPAGES" -gt 0 ]; then
    if grep -qs " hugetlbfs " /proc/mounts; then
        say "hugetlbfs: mounted at $(awk '$3=="hugetlbfs"{print $2; exit}' /proc/mounts)"
    else
        mkdir -p "$HUGE_MOUNT"
        mount -t hugetlbfs nodev "$HUGE_MOUNT"
        say "hugetlbfs: mounted at $HUGE_MOUNT"
    fi
fi

say "DPDK $(pkg-config --modversion libdpdk) ready"
