#!/usr/bin/env python3
"""Groups a `perf record` profile's self time by crate or kernel area.

Usage: perf_by_crate.py PERF_DATA [--time START,END]

Reads `perf report --no-children --sort symbol` and sums the percentages of the symbols
into the groups used in docs/BENCHMARKS.md. The grouping is by symbol name, so it is a
reading aid, not an exact attribution (an inlined function counts where it was inlined).
"""

import collections
import re
import subprocess
import sys

GROUPS = [
    ("kernel: scheduling, wake-ups, epoll", "k",
     r"switch|schedule|futex|wake|spin|epoll|ep_|irq|hrtimer|tick|idle|select_task|update_|enqueue_task|dequeue|pick_|psi|cpuacct|account"),
    ("kernel: UDP send/receive, system calls, copies", "k", r"."),
    ("encryption (ring, rustls)", ".", r"ring|aes|gcm|ghash|chacha|poly|PacketKey|HeaderProtection|rustls"),
    ("quinn + quinn-proto", ".", r"quinn"),
    ("tokio (tasks, channels, timers)", ".", r"tokio|mio"),
    ("allocation, copies, Bytes", ".", r"malloc|free|memmove|memcpy|memset|realloc|_int_|bytes::|alloc::"),
    ("switchboard code", ".", r"switchboard"),
    ("tracing, clock reads, other", ".", r"."),
]


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = ["perf", "report", "-i", sys.argv[1], "--no-children", "--sort", "symbol",
           "--stdio", "-g", "none"]
    if len(sys.argv) > 3 and sys.argv[2] == "--time":
        cmd += ["--time", sys.argv[3]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    sums = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[(.)\]\s+(.*?)\s*$", line)
        if not m:
            continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
        for name, group_kind, pattern in GROUPS:
            if group_kind == kind and re.search(pattern, sym):
                sums[name] += pct
                break
    for name, pct in sums.most_common():
        print(f"{pct:6.1f} %  {name}")


if __name__ == "__main__":
    main()
