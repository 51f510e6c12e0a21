#!/usr/bin/python3
"""How the daemon scales with the number of servers it watches.

Prints figures; asserts nothing about them (a benchmark, not a timed test). For each N (by
default 10,000 and the largest N this machine allows), the daemon watches N servers on
127.A.B.C addresses with a long poll (1024 s, so after the initial burst of 4 requests per
server it is idle), all answered by ONE `ntp-monitor simulate --listen 0.0.0.0:P`:

- start-up time: from exec until /metrics lists N servers and every server has been polled
  once, and until the initial burst (4 requests per server) is complete;
- resident memory per server: (RSS after the burst - RSS of the same daemon watching 10
  servers) / (N - 10). There is no history store in this configuration, so nothing of it is
  counted;
- CPU per probe: utime + stime (/proc/PID/stat) over the whole run, start-up included,
  divided by the requests sent;
- /metrics render time for 10,000 servers: time to the last byte of an uncompressed scrape
  (curl, median of 5), and its size.

Limits (printed): the daemon keeps one UDP socket per address (the reply must come back to
the socket that asked), so N stays below the file-descriptor limit (`ulimit -n`), and the
configuration loader refuses files above 1 MiB (about 28,000 servers in the one-line form
used here). The selection is held off (selection.interval_s: 3600) because its cost grows
faster than N^2 (see docs/benchmarks.md); the figures are the probe path's.

Usage: python3 bench/scale.py --build-dir build [--sizes 10000,19000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as common  # noqa: E402  (shared helpers)
from throughput import peers  # noqa: E402

POLL_S = 1024
BURST = 4  # MonitorOptions::iburst_count
BASELINE_N = 10
EXTRA = "selection: {interval_s: 3600}"


def run_one(workdir: Path, binary: Path, sim_port: int, n: int, render: bool) -> dict:
    daemon = common.MonitorDaemon(workdir, binary,
                                  common.fleet_config(sim_port, n, POLL_S, EXTRA))
    result = {"n": n}
    with daemon.start():
        state = {}

        def polled_once():
            text = daemon.metrics()
            if text is None or common.metric_value(text, "ntp_monitor_servers") != n:
                return None
            return common.metric_sum(text, "ntp_monitor_requests_total") >= n

        common.wait_until("every server polled once", polled_once, 300, interval_s=0.2)
        result["startup_s"] = time.monotonic() - daemon.started_at

        def burst_done():
            text = daemon.metrics()
            requests = common.metric_sum(text, "ntp_monitor_requests_total")
            state["requests"] = requests
            state["responses"] = common.metric_sum(text, "ntp_monitor_responses_total")
            return requests >= BURST * n

        common.wait_until("initial burst complete", burst_done, 300, interval_s=0.5)
        result["burst_s"] = time.monotonic() - daemon.started_at
        time.sleep(1.0)  # let the last replies and the snapshot settle
        result["rss_kib"] = daemon.rss_kib()
        result["cpu_s"] = daemon.cpu_s()
        text = daemon.metrics()
        result["requests"] = common.metric_sum(text, "ntp_monitor_requests_total")
        result["responses"] = common.metric_sum(text, "ntp_monitor_responses_total")
        if render:
            times, size = [], 0
            for _ in range(5):
                out = subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                     f"http://127.0.0.1:{daemon.metrics_port}/metrics"],
                    capture_output=True, text=True, timeout=60, check=True)
                took, size = out.stdout.split()
                times.append(float(took))
            result["render_s"] = statistics.median(times)
            result["render_bytes"] = int(size)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--sizes", default=None,
                        help="comma-separated N (default: 10000 and the most the fd limit "
                             "and the 1 MiB configuration limit allow)")
    args = parser.parse_args()
    binary = args.build_dir / "ntp-monitor"
    common.raise_fd_limit()
    limit = min(common.max_sources(), 28000)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else sorted({min(10000, limit), limit}))
    for n in sizes:
        if n > limit:
            print(f"note: N={n} is above what this machine allows ({limit}: fd limit "
                  f"{common.max_sources() + 100}, 1 MiB configuration): skipped")
    sizes = [n for n in sizes if n <= limit]

    with tempfile.TemporaryDirectory(prefix="ntpmon-scale-") as tmp:
        tmp = Path(tmp)
        sim = peers.Simulator(tmp / "sim", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=3600).start()
        with sim:
            base = run_one(tmp / "base", binary, sim.port, BASELINE_N, render=False)
            results = [run_one(tmp / f"n{n}", binary, sim.port, n, render=(n == 10000))
                       for n in sizes]

    print(f"baseline: {BASELINE_N} servers, RSS {base['rss_kib'] / 1024:.1f} MiB")
    print(f"{'N':>8} {'start(s)':>9} {'burst(s)':>9} {'RSS MiB':>8} {'B/server':>9} "
          f"{'probes':>8} {'answered':>8} {'CPU us/probe':>13}")
    for r in results:
        per_server_b = (r["rss_kib"] - base["rss_kib"]) * 1024 / (r["n"] - BASELINE_N)
        print(f"{r['n']:>8} {r['startup_s']:>9.2f} {r['burst_s']:>9.2f} "
              f"{r['rss_kib'] / 1024:>8.1f} {per_server_b:>9.0f} {r['requests']:>8.0f} "
              f"{r['responses'] / max(1, r['requests']) * 100:>7.1f}% "
              f"{r['cpu_s'] / max(1, r['requests']) * 1e6:>13.1f}")
        if "render_s" in r:
            print(f"/metrics for {r['n']} servers: {r['render_s'] * 1000:.1f} ms to the last "
                  f"byte (median of 5, uncompressed, {r['render_bytes'] / 1e6:.1f} MB)")
    print(f"largest N reached: {max(r['n'] for r in results)} (target per server < 4096 B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
