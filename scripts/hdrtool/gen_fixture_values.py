#!/usr/bin/env python3
"""Generate the deterministic input data sets for the .hgrm fixtures.

Each data set is written as "value count" lines (run-length form) so that
large sample counts stay small on disk. The expected .hgrm outputs are then
produced by the Java reference (scripts/hdrtool/regen_fixtures.sh), never by the Rust
code under test.
"""
import collections
import math
import random
import sys
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")


def three_sig(v):
    # Quantise to 3 significant digits so the run-length files stay small
    # while values still spread across many histogram buckets.
    if v < 1000:
        return v
    mag = 10 ** (int(math.log10(v)) - 2)
    return (v // mag) * mag


def write(name, counter):
    with open(OUT / f"{name}.values", "w") as f:
        f.write(f"# {name}: value_ns count\n")
        for v in sorted(counter):
            f.write(f"{v} {counter[v]}\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20240601)

    write("empty", collections.Counter())
    write("one_value", collections.Counter({1234567: 1}))
    write("constant", collections.Counter({5000: 10000}))

    uniform = collections.Counter()
    for v in range(1000, 1_000_000, 997):
        uniform[v] += 5
    write("uniform", uniform)

    bimodal = collections.Counter()
    for _ in range(50_000):
        if rng.random() < 0.9:
            v = int(rng.gauss(2_000, 150))
        else:
            v = int(rng.gauss(50_000, 5_000))
        bimodal[max(v, 1)] += 1
    write("bimodal", bimodal)

    longtail = collections.Counter()
    for _ in range(200_000):
        v = int(rng.lognormvariate(math.log(3_000), 1.2))
        if rng.random() < 0.001:
            v = int(rng.paretovariate(1.1) * 1_000_000)
        longtail[three_sig(min(max(v, 1), 59_000_000_000))] += 1
    write("longtail", longtail)

    # Values at and just above zero, where index 0 and unit-width buckets matter.
    write("small", collections.Counter({0: 3, 1: 7, 2: 1, 3: 5, 10: 2, 2047: 4, 2048: 1, 2049: 9}))

    # Ten million samples push the percentile ticks deep into the 9s.
    write("deep", collections.Counter({1000: 10_000_000, 1500: 10, 59_000_000_000: 1}))


if __name__ == "__main__":
    main()
