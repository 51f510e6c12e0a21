#!/usr/bin/python3
"""What the JSON API's fleet endpoints cost a daemon watching many servers.

Prints figures; asserts nothing (a benchmark, not a timed test). For each N (default 100,000),
the daemon watches N servers on 127.A.B.C addresses answered by one `ntp-monitor simulate`
(bench/throughput.py's fleet, poll 1024 s, no history), and once the initial burst is done:

- the time to the last byte (curl, median of 20 after a first request) and the size of: a page
  of 100 of /api/v1/servers in configuration order, sorted by -abs_offset (the first request
  on a snapshot builds the order: shown apart), a page deep in the list (after walking to the
  middle with limit=10000 pages), a q= search, and /api/v1/summary;
- the daemon's RSS after the burst, after 1000 requests of /api/v1/status (the control: what
  publishing snapshots on demand does alone) and after 200 rounds of the requests above.

Usage: python3 bench/api_scale.py --build-dir build [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as common  # noqa: E402  (shared helpers)
from throughput import peers  # noqa: E402
from helpers import wait_for  # noqa: E402

POLL_S = 1024
BURST = 4
EXTRA = "history: {live_samples: 0}"
ROUNDS = 200


def curl(port: int, path: str) -> tuple[float, int, bytes]:
    out = subprocess.run(["curl", "-s", "-w", "\n%{time_total} %{size_download} %{http_code}",
                          f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, timeout=120, check=True)
    body, _, tail = out.stdout.rpartition(b"\n")
    took, size, code = tail.decode().split()
    assert code == "200", (path, code, body[:200])
    return float(took), int(size), body


def run_one(workdir: Path, binary: Path, sim_port: int, n: int) -> dict:
    daemon = common.MonitorDaemon(workdir, binary, common.fleet_config(sim_port, n, POLL_S, EXTRA))
    r: dict = {"n": n}
    with daemon.start():
        def burst_done():
            status = daemon.status()
            return status is not None and status["entries"] == n and \
                status["requests"] >= BURST * n
        wait_for("initial burst complete", burst_done, 1800, interval_s=0.5)
        time.sleep(2.0)
        port = daemon.api_port
        # Control: as many requests of /api/v1/status (constant size) as the API rounds make,
        # for what publishing snapshots on demand alone does to the RSS.
        r["rss_start_kib"] = daemon.rss_kib()
        for _ in range(ROUNDS * 5):
            curl(port, "/api/v1/status")
        time.sleep(1.0)
        r["rss_before_kib"] = daemon.rss_kib()

        # Walk to the middle of the -delay order with the largest pages.
        cursor = None
        for _ in range(max(1, n // 2 // 10000)):
            query = {"limit": 10000, "sort": "-delay"}
            if cursor:
                query["cursor"] = cursor
            cursor = json.loads(curl(port, "/api/v1/servers?" + urllib.parse.urlencode(query))[2])[
                "next_cursor"]
        paths = {
            "page of 100, configuration order": "/api/v1/servers?limit=100",
            "page of 100, sort=-abs_offset": "/api/v1/servers?limit=100&sort=-abs_offset",
            "page of 100 in the middle, sort=-delay":
                "/api/v1/servers?" + urllib.parse.urlencode(
                    {"limit": 100, "sort": "-delay", "cursor": cursor or ""}),
            "page of 100, q=127.1.": "/api/v1/servers?limit=100&q=127.1.",
            "summary": "/api/v1/summary",
        }
        first = curl(port, paths["page of 100, sort=-abs_offset"].replace("-abs_offset", "jitter"))
        r["first_sorted_s"] = first[0]  # a new order on this snapshot (jitter: not built yet)
        figures = {}
        for label, path in paths.items():
            curl(port, path)
            times = []
            size = 0
            for _ in range(20):
                took, size, _ = curl(port, path)
                times.append(took)
            figures[label] = (statistics.median(times), size)
        r["figures"] = figures
        for _ in range(ROUNDS):
            for path in paths.values():
                curl(port, path)
        time.sleep(1.0)
        r["rss_after_kib"] = daemon.rss_kib()
    return r


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--sizes", default="100000")
    args = parser.parse_args()
    binary = args.build_dir / "ntp-monitor"
    common.raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="ntpmon-api-scale-") as tmp:
        tmp = Path(tmp)
        sim = peers.Simulator(tmp / "sim", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=3600).start()
        with sim:
            results = [run_one(tmp / f"n{n}", binary, sim.port, int(n))
                       for n in args.sizes.split(",")]
    for r in results:
        before, after = r["rss_before_kib"] / 1024, r["rss_after_kib"] / 1024
        start = r["rss_start_kib"] / 1024
        print(f"N = {r['n']}: RSS {start:.1f} MiB after the burst, {before:.1f} MiB after "
              f"{ROUNDS * 5} requests of /api/v1/status (control), {after:.1f} MiB after "
              f"{ROUNDS} rounds of the requests below ({(after - before) / before * 100:+.1f}%)")
        print(f"  first sorted page on a snapshot (builds the order): "
              f"{r['first_sorted_s'] * 1000:.1f} ms")
        for label, (took, size) in r["figures"].items():
            print(f"  {label:<42} {took * 1000:8.1f} ms {size:>9} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
