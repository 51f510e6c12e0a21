#!/usr/bin/python3
"""Saturated probe throughput with and without source port rotation, in the same run.

Prints figures; asserts nothing (a benchmark, not a timed test). The daemon polls more sources
than it can (throughput.py's case (c)) against one simulator, and its answered probes/s is
measured for each configuration below, alternating, `--repeat` times; then the medians and
their ratio. Configurations: a baseline binary (--baseline-build-dir, e.g. a build of the code
before rotation), this build with a single socket that never rotates (source_ports: 1, a day's
lifetime, no request budget: the old behaviour), and this build with the defaults (4 sockets
per family, 30 s, 65,536 requests) and with a fast rotation (1 s) that stresses it.

Usage: python3 bench/source_ports.py --build-dir build [--baseline-build-dir DIR]
       [--sources 60000] [--window 15] [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import throughput
from throughput import measure_daemon, peers, place, plan_placement

SINGLE = ("requests: {source_ports: 1, source_port_lifetime_s: 86400, "
          "source_port_requests: 0}")
FAST = "requests: {source_port_lifetime_s: 1}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--baseline-build-dir", type=Path, default=None)
    parser.add_argument("--sources", type=int, default=60000)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    placement = plan_placement(True)
    binary = args.build_dir / "ntp-monitor"
    configs = []
    if args.baseline_build_dir:
        configs.append(("baseline build", args.baseline_build_dir / "ntp-monitor", ""))
    configs += [("one socket, no rotation", binary, SINGLE),
                ("rotation, defaults", binary, ""),
                ("rotation every 1 s", binary, FAST)]
    results: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    with tempfile.TemporaryDirectory(prefix="ntpmon-ports-") as tmp:
        tmp = Path(tmp)
        sim = peers.Simulator(tmp / "sim", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=3600).start()
        place(sim.proc.pid, throughput.SIMULATOR_CPU)
        with sim:
            print(f"sources: {args.sources}, poll 1 s; {placement}")
            for repeat in range(args.repeat):
                order = configs if repeat % 2 == 0 else list(reversed(configs))
                for name, path, extra in order:
                    r = measure_daemon(tmp / f"d-{repeat}-{len(results[name])}-{hash(name)}",
                                       path, sim, args.sources, 1.0, args.warmup, args.window,
                                       extra)
                    results[name].append(r["responses_ps"])
                    print(f"run {repeat + 1}: {name}: answered {r['responses_ps']:,.0f}/s, "
                          f"requests {r['requests_ps']:,.0f}/s, unsent {r['unsent_ps']:,.0f}/s, "
                          f"CPU {r['answered_cpu_us']:.2f} us/answer, unmatched "
                          f"{r['unmatched']}, buffer drops {r['buffer_drops']}", flush=True)
    base_name = configs[0][0]
    base = statistics.median(results[base_name])
    print(f"--- medians of {args.repeat} runs (answered probes/s, ratio to {base_name}):")
    for name, values in results.items():
        m = statistics.median(values)
        print(f"  {name}: {m:,.0f}/s  ratio {m / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
