#!/usr/bin/python3
"""What people and Prometheus read from a daemon watching a large fleet.

Prints figures; asserts nothing about them (a benchmark, not a timed test). For each N (by
default 1,000, 10,000 and 100,000), the daemon watches N servers on 127.A.B.C addresses (a
server list, `server_lists:`) polled every 16 s, all answered by ONE `ntp-monitor simulate`
on loopback, with no in-memory sample history (`history.live_samples: 0`) and no database.
Once every server has been polled 8 times (its clock filter is full), it measures:

- the JSON API: latency of a page of 100 servers (configuration order, sorted by -abs_offset,
  a page reached through five cursors, a q= search) and of /api/v1/summary, median and worst
  of REPEAT requests each, with the bytes of each answer;
- the daemon's resident memory before the API and dashboard requests and after them (the
  issue's bound: at most 5 % growth);
- /metrics in each `metrics.per_server` mode (switched by rewriting the configuration and
  SIGHUP): series and bytes per server, plain and gzipped, and the time to the last byte
  (median of 5). `full` is every series the daemon exported before the modes existed: its
  time is today's figure, beside which the others are printed;
- the dashboard in headless Chromium (bench/dashboard_scale.js): first meaningful paint, the
  worst main-thread round trip over --dashboard-seconds (the issue asks for 600), JS heap,
  renderer crashes, bytes fetched per refresh and rows in the DOM.

With --million, a last daemon watches 1,000,000 servers (poll 1024 s, as bench/scale.py) and
only the API figures are taken (the issue's target: a page of 100 in under 20 ms).

Usage: python3 bench/fleet_scale.py --build-dir build [--sizes 1000,10000,100000]
         [--dashboard-seconds 600] [--million]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as common  # noqa: E402  (shared helpers)
import helpers  # noqa: E402  (tests/integration, on the path through throughput)
from throughput import peers  # noqa: E402
from helpers import wait_for  # noqa: E402

HERE = Path(__file__).resolve().parent
POLL_S = 16
# Reads before the measured minutes (see run_size).
WARMUP_S = 120.0
MILLION_POLL_S = 1024
REPEAT = 30
MODES = ("full", "standard", "minimal")
CHROMIUM = Path("/usr/bin/chromium")


def config_for(sim_port: int, n: int, poll_s: float, mode: Optional[str]) -> tuple[str, dict]:
    extra = "history: {live_samples: 0}"
    if mode is not None:
        extra += f"\nmetrics: {{per_server: {mode}}}"
    return common.fleet_config(sim_port, n, poll_s, extra)


def timed_get(port: int, path: str, headers: Optional[dict] = None) -> tuple[float, bytes]:
    started = time.perf_counter()
    status, _, body = helpers.http_get(port, path, headers=headers, timeout_s=120)
    took = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return took, body


def latency(port: int, path: str) -> dict:
    times, size = [], 0
    for _ in range(REPEAT):
        took, body = timed_get(port, path)
        times.append(took)
        size = len(body)
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000,
            "bytes": size}


def api_figures(daemon: common.MonitorDaemon) -> dict:
    port = daemon.api_port
    out = {
        "page": latency(port, "/api/v1/servers?limit=100"),
        "page_sorted": latency(port, "/api/v1/servers?limit=100&sort=-abs_offset"),
        "page_search": latency(port, "/api/v1/servers?limit=100&q=127.1.3."),
        "summary": latency(port, "/api/v1/summary"),
    }
    # Five pages deep, then the sixth page timed.
    cursor = None
    for _ in range(5):
        path = "/api/v1/servers?limit=100&sort=delay"
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor)
        _, body = timed_get(port, path)
        cursor = json.loads(body)["next_cursor"]
    out["page_cursor"] = latency(
        port, "/api/v1/servers?limit=100&sort=delay&cursor=" + urllib.parse.quote(cursor or ""))
    return out


def metrics_figures(daemon: common.MonitorDaemon, n: int) -> dict:
    plain_times, size, series = [], 0, 0
    for _ in range(5):
        took, body = timed_get(daemon.metrics_port, "/metrics")
        plain_times.append(took)
        size = len(body)
    text = body.decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    server_series = sum(1 for line in text.splitlines()
                        if line and not line.startswith("#") and 'server="' in line)
    gz_times, gz_size = [], 0
    for _ in range(5):
        took, body = timed_get(daemon.metrics_port, "/metrics", {"Accept-Encoding": "gzip"})
        gz_times.append(took)
        gz_size = len(body)
        gzip.decompress(body)  # it must be gzip
    return {"series": series, "series_per_server": server_series / n,
            "bytes_per_server": size / n, "gzip_bytes_per_server": gz_size / n,
            "plain_ms": statistics.median(plain_times) * 1000,
            "gzip_ms": statistics.median(gz_times) * 1000}


def dashboard_figures(daemon: common.MonitorDaemon, modules: Path, seconds: int,
                      workdir: Path) -> dict:
    argv = ["node", str(HERE / "dashboard_scale.js"),
            "--url", f"http://127.0.0.1:{daemon.api_port}/",
            "--seconds", str(seconds), "--node-modules", str(modules),
            "--chromium", str(CHROMIUM), "--screenshot", str(workdir / "dashboard.png")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 300)
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip()[-500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def switch_mode(daemon: common.MonitorDaemon, sim_port: int, n: int, poll_s: float,
                mode: str) -> None:
    text, _ = config_for(sim_port, n, poll_s, mode)
    daemon.config_path.write_text(text)
    reloads = daemon.status()["config_reloads"]
    daemon.signal(signal.SIGHUP)

    def applied():
        status = daemon.status()
        return status is not None and status["config_reloads"] > reloads

    wait_for(f"reload to per_server: {mode}", applied, 120, interval_s=0.5)
    time.sleep(1.0)


def polled(daemon: common.MonitorDaemon, n: int):
    def done():
        status = daemon.status()
        return status is not None and status["entries"] == n and status["responses"] >= n
    return done


def run_size(workdir: Path, binary: Path, sim_port: int, n: int, poll_s: float, modes: bool,
             modules: Optional[Path], dashboard_s: int) -> dict:
    daemon = common.MonitorDaemon(workdir, binary,
                                  config_for(sim_port, n, poll_s, "standard" if modes else None))
    result: dict = {"n": n}
    with daemon.start():
        wait_for(f"{n} servers answered once", polled(daemon, n), 1800, interval_s=0.5)
        # Each server's clock filter holds its last 8 samples (RFC 5905 §10): until 8 polls
        # have passed, the daemon's memory still grows with every reply, requests or not.
        time.sleep(8 * poll_s + 3.0)
        # Nobody read the daemon while it waited, so it built no snapshot: the first reads
        # rebuild every entry while the snapshot published before the wait still holds the old
        # ones, a step of about one fleet's entries that the allocator then keeps for reuse.
        # Reads of /api/v1/status for WARMUP_S (twice that step's time, seen with a probe) let
        # RSS settle at what a read daemon needs before anything is measured.
        result["rss_unread_kib"] = daemon.rss_kib()
        deadline = time.monotonic() + WARMUP_S
        while time.monotonic() < deadline:
            daemon.status()
            time.sleep(1.0)
        # The control: how much RSS moves by itself (polling, snapshots) over a minute without
        # a request but /api/v1/status, so the growth after the API and dashboard can be read
        # against it.
        result["rss_idle_start_kib"] = daemon.rss_kib()
        for _ in range(60):
            daemon.status()
            time.sleep(1.0)
        result["rss_before_kib"] = daemon.rss_kib()
        result["api"] = api_figures(daemon)
        if modules is not None:
            result["dashboard"] = dashboard_figures(daemon, modules, dashboard_s, workdir)
        result["api_again"] = api_figures(daemon)
        result["rss_after_kib"] = daemon.rss_kib()
        if modes:
            result["metrics"] = {}
            for mode in MODES:
                switch_mode(daemon, sim_port, n, poll_s, mode)
                result["metrics"][mode] = metrics_figures(daemon, n)
    return result


def print_result(r: dict) -> None:
    n = r["n"]
    print(f"\n== {n} servers ==")
    grow = (r["rss_after_kib"] - r["rss_before_kib"]) / r["rss_before_kib"] * 100
    idle = (r["rss_before_kib"] - r["rss_idle_start_kib"]) / r["rss_idle_start_kib"] * 100
    print(f"RSS unread {r['rss_unread_kib'] / 1024:.1f} MiB, after {WARMUP_S:.0f} s of "
          f"/api/v1/status reads {r['rss_idle_start_kib'] / 1024:.1f} MiB")
    print(f"RSS {r['rss_idle_start_kib'] / 1024:.1f} MiB, a minute later without requests "
          f"{r['rss_before_kib'] / 1024:.1f} MiB ({idle:+.1f} %, the control)")
    print(f"RSS before {r['rss_before_kib'] / 1024:.1f} MiB, after API and dashboard "
          f"{r['rss_after_kib'] / 1024:.1f} MiB ({grow:+.1f} %)")
    for key, what in (("page", "page of 100, configuration order"),
                      ("page_sorted", "page of 100, sort=-abs_offset"),
                      ("page_cursor", "6th page of 100 through cursors, sort=delay"),
                      ("page_search", "page of 100, q=127.1.3."),
                      ("summary", "/api/v1/summary")):
        a = r["api"][key]
        print(f"  {what:<46} median {a['median_ms']:7.2f} ms  worst {a['max_ms']:7.2f} ms "
              f"{a['bytes']:>8} B")
    d = r.get("dashboard")
    if d is not None:
        if "error" in d:
            print(f"  dashboard: failed: {d['error']}")
        else:
            print("  dashboard: " + json.dumps(d, sort_keys=True))
    m = r.get("metrics")
    if m:
        today = m["full"]["plain_ms"]
        for mode in MODES:
            f = m[mode]
            print(f"  /metrics {mode:<8}: {f['series_per_server']:5.1f} series/server "
                  f"{f['bytes_per_server']:7.0f} B/server plain, "
                  f"{f['gzip_bytes_per_server']:6.0f} B/server gzip; scrape "
                  f"{f['plain_ms']:8.1f} ms plain, {f['gzip_ms']:8.1f} ms gzip "
                  f"(full, i.e. today: {today:.1f} ms plain)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--dashboard-seconds", type=int, default=600)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--million", action="store_true",
                        help="also the API figures of a 1,000,000-server daemon")
    args = parser.parse_args()
    binary = args.build_dir / "ntp-monitor"
    modules = args.build_dir / "web" / "test-driver" / "node_modules"
    if args.no_dashboard:
        modules = None
    elif not (modules / "playwright-core").is_dir() or not CHROMIUM.exists():
        print(f"no {modules}/playwright-core or {CHROMIUM}: build the target "
              "ntpmon_web_test_driver and install chromium, or pass --no-dashboard")
        return 2
    common.raise_fd_limit()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    with tempfile.TemporaryDirectory(prefix="ntpmon-fleet-") as tmp:
        tmp = Path(tmp)
        sim = peers.Simulator(tmp / "sim", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=6 * 3600).start()
        with sim:
            for n in sizes:
                print_result(run_size(tmp / f"n{n}", binary, sim.port, n, POLL_S, True, modules,
                                      args.dashboard_seconds))
                sys.stdout.flush()
            if args.million:
                print_result(run_size(tmp / "million", binary, sim.port, 1_000_000,
                                      MILLION_POLL_S, False, None, 0))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
