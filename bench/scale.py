#!/usr/bin/python3
"""How the daemon scales with the number of servers it watches.

Prints figures; asserts nothing about them (a benchmark, not a timed test). For each N (by
default 10,000, 100,000 and 1,000,000), the daemon watches N servers on 127.A.B.C addresses
(a server list file, `server_lists:`) with a long poll (1024 s, so after the initial burst of 4
requests per server it is nearly idle), all answered by ONE
`ntp-monitor simulate --listen 0.0.0.0:P`:

- start-up time: from exec until /api/v1/status counts N entries and N requests sent (the
  iburst's later requests of the first servers count too; new sources start at 10,000 per
  second, so the last server's first poll leaves after N / 10,000 s), and until 4 N requests
  are sent (the initial burst of 4 requests per server complete);
- resident memory per server: (RSS after the burst - RSS of the same daemon watching 10
  servers) / (N - 10), without history (no database, and `history.live_samples: 0`: no
  in-memory sample rings either);
- CPU per probe: utime + stime (/proc/PID/stat) over the whole run, start-up included,
  divided by the requests sent;
- /metrics render time for 10,000 servers: time to the last byte of an uncompressed scrape
  (curl, median of 5), and its size. Progress is read from /api/v1/status, whose size does not
  grow with N, so polling it does not load the daemon.

The selection runs at its default pace (at most every N / 50,000 s).

Usage: python3 bench/scale.py --build-dir build [--sizes 10000,100000,1000000]
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
from helpers import wait_for  # noqa: E402

POLL_S = 1024
BURST = 4  # MonitorOptions::iburst_count
BASELINE_N = 10
# The issue measures memory per server excluding history: no in-memory sample rings either.
EXTRA = "history: {live_samples: 0}"


def run_one(workdir: Path, binary: Path, sim_port: int, n: int, render: bool) -> dict:
    daemon = common.MonitorDaemon(workdir, binary,
                                  common.fleet_config(sim_port, n, POLL_S, EXTRA))
    result = {"n": n}
    with daemon.start():
        state = {}

        def polled_once():
            status = daemon.status()
            return (status is not None and status["entries"] == n
                    and status["requests"] >= n)

        wait_for("every server polled once", polled_once, 900, interval_s=0.2)
        result["startup_s"] = time.monotonic() - daemon.started_at

        def burst_done():
            status = daemon.status()
            state.update(status or {})
            return status is not None and status["requests"] >= BURST * n

        wait_for("initial burst complete", burst_done, 900, interval_s=0.5)
        result["burst_s"] = time.monotonic() - daemon.started_at
        time.sleep(2.0)  # let the last replies and the snapshot settle
        result["rss_kib"] = daemon.rss_kib()
        result["cpu_s"] = daemon.cpu_s()
        status = daemon.status()
        result["requests"] = status["requests"]
        result["responses"] = status["responses"]
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
                        help="comma-separated N (default: 10000,100000,1000000)")
    args = parser.parse_args()
    binary = args.build_dir / "ntp-monitor"
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [10000, 100000, 1000000])

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
