#!/usr/bin/python3
"""Probe accuracy while /metrics is scraped in a tight loop, against the same daemon quiet.

Prints figures; asserts nothing about them (a benchmark, not a timed test).

The daemon watches, every second, a chronyd (`local stratum 3`, serving the host clock, so
the true offset is 0; skipped when chronyd is missing) and a simulator at offset 0 on
127.0.0.1, plus --padding servers (default 1,000) on 127.A.B.C with a long poll so that each
scrape renders a realistic page (about 3.8 KB per server). Two phases of --window seconds on
the same warm daemon:

  quiet:  only the 1 Hz sampling of the measured servers' series (one small scrape/s);
  loaded: that, plus --scrapers threads each fetching /metrics back to back with
          `Accept-Encoding: gzip` (as Prometheus does), which keeps the HTTP workers busy.

For each measured server and phase: the standard deviation and maximum |offset| of the
daemon's successive filtered offsets (ntp_monitor_server_offset_seconds, a new value per
sample), its own jitter estimate (ntp_monitor_server_jitter_seconds, RFC 5905 peer jitter)
at the end of the phase, and the mean delay. Also scrapes/s and the daemon's CPU share.

Usage: python3 bench/scrape_load.py --build-dir build [--window 30] [--scrapers 2]
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as common  # noqa: E402  (shared helpers)
from throughput import peers  # noqa: E402
from helpers import wait_for  # noqa: E402

_SERVER_SAMPLE = re.compile(r'^(ntp_monitor_server_\w+)\{server="([^"]*)"[^}]*\} (\S+)$', re.M)


def server_values(text: str, names: set[str]) -> dict:
    """{server: {metric: value}} for the measured servers only."""
    out: dict = {}
    for metric, server, value in _SERVER_SAMPLE.findall(text):
        if server in names:
            out.setdefault(server, {})[metric] = float(value)
    return out


class Scrapers:
    """Threads fetching /metrics back to back on keep-alive connections."""

    def __init__(self, port: int, count: int):
        self.port = port
        self.count = count
        self.scrapes = 0
        self.bytes = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(count)]

    def _loop(self) -> None:
        conn: Optional[http.client.HTTPConnection] = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                body = conn.getresponse().read()
                with self._lock:
                    self.scrapes += 1
                    self.bytes += len(body)
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def phase(daemon: common.MonitorDaemon, names: set[str], window_s: float) -> dict:
    """Samples the measured servers once a second for window_s; returns per-server figures."""
    offsets: dict = {n: [] for n in names}
    delays: dict = {n: [] for n in names}
    last_stamp: dict = {}
    last: dict = {}
    cpu0, t0 = daemon.cpu_s(), time.monotonic()
    while time.monotonic() - t0 < window_s:
        text = daemon.scrape()
        if text:
            last = server_values(text, names)
            for name, values in last.items():
                stamp = values.get("ntp_monitor_server_last_sample_timestamp_seconds")
                if stamp is None or last_stamp.get(name) == stamp:
                    continue
                last_stamp[name] = stamp
                offsets[name].append(values["ntp_monitor_server_offset_seconds"])
                delays[name].append(values["ntp_monitor_server_delay_seconds"])
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    figures = {}
    for name in names:
        o = offsets[name]
        figures[name] = {
            "samples": len(o),
            "stddev_us": statistics.pstdev(o) * 1e6 if len(o) > 1 else float("nan"),
            "max_abs_us": max(abs(x) for x in o) * 1e6 if o else float("nan"),
            "mean_delay_us": statistics.fmean(delays[name]) * 1e6 if o else float("nan"),
            "jitter_us": last.get(name, {}).get("ntp_monitor_server_jitter_seconds",
                                                float("nan")) * 1e6,
        }
    return {"servers": figures, "cpu_share": (daemon.cpu_s() - cpu0) / elapsed,
            "elapsed_s": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--window", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--scrapers", type=int, default=2, help="scrape threads when loaded")
    parser.add_argument("--padding", type=int, default=1000,
                        help="extra servers (long poll) that make each scrape realistic")
    args = parser.parse_args()
    binary = args.build_dir / "ntp-monitor"
    common.raise_fd_limit()
    have_chrony = shutil.which("chronyd") is not None or Path(peers.CHRONYD).exists()

    with tempfile.TemporaryDirectory(prefix="ntpmon-scrape-") as tmp:
        tmp = Path(tmp)
        pad = peers.Simulator(tmp / "pad", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=3 * args.window + 600).start()
        sim = peers.Simulator(tmp / "sim", binary=binary,
                              max_runtime_s=3 * args.window + 600).start()
        chrony = peers.ChronyServer(tmp / "chrony", stratum=3, ipv6=False).start() \
            if have_chrony else None
        try:
            measured = [f"- {{name: simulator, host: 127.0.0.1, port: {sim.port}, poll: 1}}"]
            if chrony is not None:
                measured.append(f"- {{name: chronyd, host: 127.0.0.1, port: {chrony.port}, "
                                f"poll: 1}}")
            config, files = common.fleet_config(pad.port, args.padding, 1024,
                                                "selection: {interval_s: 3600}")
            config = config.replace("servers: []\n", "servers:\n" + "\n".join(measured) + "\n",
                                    1)
            # The padding servers keep the 1024 s poll; the measured ones poll every second.
            config = config.replace("poll: {min: 1024, max: 1024}", "poll: {min: 1, max: 1024}")
            config = (config, files)
            names = {"simulator"} | ({"chronyd"} if chrony is not None else set())
            daemon = common.MonitorDaemon(tmp / "daemon", binary, config)
            with daemon.start():
                wait_for(
                    "measured servers sampled",
                    lambda: (t := daemon.scrape()) and all(
                        "ntp_monitor_server_offset_seconds" in v
                        for v in server_values(t, names).values())
                    and len(server_values(t, names)) == len(names), 60, interval_s=0.5)
                time.sleep(10)  # let the clock filters fill (8 samples)
                quiet = phase(daemon, names, args.window)
                with Scrapers(daemon.metrics_port, args.scrapers) as scrapers:
                    loaded = phase(daemon, names, args.window)
                scrape_rate = scrapers.scrapes / loaded["elapsed_s"]
                scrape_kb = scrapers.bytes / max(1, scrapers.scrapes) / 1e3
        finally:
            if chrony is not None:
                chrony.stop()
            sim.stop()
            pad.stop()

    print(f"daemon watching {len(names)} servers at poll 1 s + {args.padding} padding "
          f"servers; {args.window:g} s per phase")
    print(f"loaded phase: {args.scrapers} scrapers, {scrape_rate:.1f} scrapes/s "
          f"({scrape_kb:.0f} kB gzip each)")
    print(f"daemon CPU: quiet {quiet['cpu_share'] * 100:.0f} %, "
          f"loaded {loaded['cpu_share'] * 100:.0f} % of a CPU (HTTP workers included)")
    print(f"{'server':>10} {'phase':>7} {'samples':>8} {'stddev us':>10} {'max|off| us':>12} "
          f"{'jitter us':>10} {'delay us':>9}")
    for name in sorted(names):
        for label, p in (("quiet", quiet), ("loaded", loaded)):
            f = p["servers"][name]
            print(f"{name:>10} {label:>7} {f['samples']:>8} {f['stddev_us']:>10.2f} "
                  f"{f['max_abs_us']:>12.2f} {f['jitter_us']:>10.2f} "
                  f"{f['mean_delay_us']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
