#!/usr/bin/env python3
"""Read an HdrHistogram interval log with the PyPI `hdrhistogram` package and
print what it decoded as JSON, so Rust tests can check our .hlog writer
against an independent reader.

Usage: python3 tests/check_hlog.py FILE.hlog
Needs: pip install hdrhistogram
"""
import json
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

LOW, HIGH, DIGITS = 1, 60_000_000_000, 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def stats(h):
    out = {
        "count": h.get_total_count(),
        "max": h.get_max_value(),
        "min": h.get_min_value(),
    }
    for name, p in PERCENTILES.items():
        out[name] = h.get_value_at_percentile(p)
    return out


def main(path):
    reader = HistogramLogReader(path, HdrHistogram(LOW, HIGH, DIGITS))
    total = HdrHistogram(LOW, HIGH, DIGITS)
    by_tag = {}
    intervals = []
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        tag = h.get_tag() or ""
        intervals.append(
            {
                "tag": tag,
                "start_ms": round(h.get_start_time_stamp()),
                "end_ms": round(h.get_end_time_stamp()),
                "count": h.get_total_count(),
                "max": h.get_max_value(),
            }
        )
        total.add(h)
        by_tag.setdefault(tag, HdrHistogram(LOW, HIGH, DIGITS)).add(h)
    reader.close()
    result = {
        "start_time_sec": reader.get_start_time_sec(),
        "intervals": intervals,
        "all": stats(total),
        "tags": {t: stats(h) for t, h in sorted(by_tag.items())},
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_hlog.py FILE.hlog")
    main(sys.argv[1])
