#!/usr/bin/python3
"""/metrics under connection abuse (issue #14): ntp-monitor against node_exporter, same run.

Prints figures; asserts nothing about them (a benchmark, not a timed test).

For each exporter, on loopback:
  unloaded: --scrapes GETs of /metrics back to back, each on a fresh connection with
            `Accept-Encoding: gzip` (as Prometheus asks), timed from connect to the last body
            byte: median and p99.
  abused:   --idle TCP connections opened and held (they send nothing), then --slowloris
            clients sending a request head one byte every 0.2 s, then the same scrapes again
            (each with a --scrape-timeout; the phase stops after --phase-budget seconds).
Figures: loaded/unloaded latency ratio (the issue's target: < 2x), scrapes that got no
answer, RSS growth per idle connection (VmRSS of /proc/PID/status before and after opening
them; target < 10 KiB), how many idle connections and slowloris clients the server had
closed by the end of the phase, and for ntp-monitor its probe rate before and during the
abuse (growth of its own request counter over each phase, at least --probe-window seconds,
read from /api/v1/status on the dashboard port, which is not abused, so that the figure does
not depend on the /metrics latency).

ntp-monitor watches --servers servers (default 1,000, each on its own 127.A.B.C, polled every
second, answered by one `ntp-monitor simulate` on 0.0.0.0) as bench/throughput.py sets them
up. node_exporter is Debian's prometheus-node-exporter (scripts/install-deps installs it for
the benchmarks; this script runs /usr/bin/prometheus-node-exporter itself on 127.0.0.1 with a
few cheap collectors and stops it; it is never run as a service). The file-descriptor soft
limit is raised to the hard one for this process and the servers it starts.

Usage: python3 bench/http_abuse.py --build-dir build [--servers 1000] [--idle 10000]
                                   [--slowloris 100] [--scrapes 100] [--no-node-exporter]
"""

from __future__ import annotations

import argparse
import errno
import http.client
import math
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as common  # noqa: E402  (shared helpers)
from throughput import peers  # noqa: E402
from helpers import wait_for  # noqa: E402

NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
NODE_EXPORTER_ARGS = ["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo",
                      "--collector.loadavg", "--collector.stat"]
SLOW_BYTE_EVERY_S = 0.2
# The abusers come from addresses of their own, the scrapes from 127.0.0.1, as Prometheus and
# an abusive client are different hosts. (From one address, the per-client connection cap,
# 10,000 by default, refuses that address's connections beyond it: the scraper's too.)
IDLE_SOURCE = "127.0.0.2"
SLOW_SOURCE = "127.0.0.3"


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def scrape(port: int, timeout_s: float) -> tuple[float, Optional[bytes]]:
    """(seconds, gzip body or None without a 200 answer within timeout_s)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        body = response.read()
        return time.monotonic() - start, body if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return time.monotonic() - start, None
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def scrape_phase(port: int, count: int, timeout_s: float, budget_s: float) -> dict:
    times, failures, size = [], 0, 0
    start = time.monotonic()
    for _ in range(count):
        if time.monotonic() - start > budget_s:
            break
        seconds, body = scrape(port, timeout_s)
        if body is None:
            failures += 1
        else:
            times.append(seconds)
            size = len(body)
    return {"median_ms": statistics.median(times) * 1e3 if times else float("nan"),
            "p99_ms": percentile(times, 0.99) * 1e3, "answered": len(times),
            "failed": failures, "bytes": size, "elapsed_s": time.monotonic() - start}


def open_idle(port: int, count: int) -> list[socket.socket]:
    """`count` connections, non-blocking connects completed through one epoll."""
    sel = selectors.DefaultSelector()
    pending, done = 0, []
    deadline = time.monotonic() + 60
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((IDLE_SOURCE, 0))
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE)
        pending += 1
        while pending > 512 or (pending and len(done) + pending == count):
            for key, _ in sel.select(timeout=1):
                sel.unregister(key.fileobj)
                pending -= 1
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    done.append(key.fileobj)
                else:
                    key.fileobj.close()
            if time.monotonic() > deadline:
                break
        if time.monotonic() > deadline:
            break
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
        key.fileobj.close()
    sel.close()
    return done


def still_open(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has not closed (reset or EOF)."""
    n = 0
    for s in sockets:
        try:
            n += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


class Slowloris(threading.Thread):
    """`count` connections, each sending a request head one byte every 0.2 s (round robin)."""

    def __init__(self, port: int, count: int):
        super().__init__(daemon=True)
        self.port = port
        self._sent: dict[socket.socket, int] = {}  # head bytes sent on each socket
        self.sockets = [self._connect() for _ in range(count)]
        self.cut = 0
        self._head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1_000_000
        self._stop_event = threading.Event()

    def run(self) -> None:
        alive = list(self.sockets)
        while alive and not self._stop_event.wait(SLOW_BYTE_EVERY_S):
            for s in list(alive):
                try:
                    at = self._sent.get(s, 0)
                    s.send(self._head[at:at + 1], socket.MSG_DONTWAIT)
                    self._sent[s] = at + 1
                except OSError:
                    # Cut by the server: an attacker comes back at once, so that `count`
                    # slow clients stay open all along (each starting its head again).
                    alive.remove(s)
                    self.cut += 1
                    try:
                        fresh = self._connect()
                    except OSError:
                        continue
                    self.sockets.append(fresh)
                    alive.append(fresh)

    def _connect(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((SLOW_SOURCE, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        return s

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        for s in self.sockets:
            s.close()


def probe_rate(probes: Callable[[], float], p0: float, t0: float, window_s: float) -> float:
    """Probes/s since (p0, t0), the window stretched to window_s: polls come in bursts, so a
    window of a few scrapes could fall between two of them."""
    time.sleep(max(0.0, t0 + window_s - time.monotonic()))
    return (probes() - p0) / (time.monotonic() - t0)


def measure(name: str, port: int, pid: int, args, probes: Optional[Callable[[], float]]):
    out = {"name": name}
    p0, t0 = (probes(), time.monotonic()) if probes else (0.0, 0.0)
    out["unloaded"] = scrape_phase(port, args.scrapes, args.scrape_timeout, args.phase_budget)
    if probes:
        out["probes_before"] = probe_rate(probes, p0, t0, args.probe_window)
    rss0 = vm_rss_kib(pid)
    idle = open_idle(port, args.idle)
    time.sleep(1.0)  # let the server accept them all
    rss1 = vm_rss_kib(pid)
    out["idle_opened"] = len(idle)
    out["rss_per_idle_kib"] = (rss1 - rss0) / max(1, len(idle))
    slow = Slowloris(port, args.slowloris)
    slow.start()
    try:
        time.sleep(1.0)
        if probes:
            # A long timeout: the probe count must not depend on /metrics' latency.
            p0, t0 = probes(), time.monotonic()
        out["loaded"] = scrape_phase(port, args.scrapes, args.scrape_timeout, args.phase_budget)
        if probes:
            out["probes_during"] = probe_rate(probes, p0, t0, args.probe_window)
        out["idle_still_open"] = still_open(idle)
        out["slowloris_cut"] = slow.cut
        out["rss_end_mib"] = vm_rss_kib(pid) / 1024
    finally:
        slow.stop()
        for s in idle:
            s.close()
    return out


def daemon_probes(daemon) -> Callable[[], float]:
    """The daemon's requests sent so far, from /api/v1/status on the dashboard port (the
    abuse is on the metrics port: a cpp-httplib front never answers /metrics under it)."""
    def total() -> float:
        status = daemon.status(timeout_s=60)
        if status is None:
            raise OSError("no /api/v1/status answer")
        return float(status["requests"])
    return total


def report(results: list[dict], args) -> None:
    print(f"abuse: {args.idle} idle connections + {args.slowloris} slowloris clients "
          f"(1 byte / {SLOW_BYTE_EVERY_S:g} s) on the /metrics port; {args.scrapes} scrapes per "
          f"phase on fresh connections, gzip, timeout {args.scrape_timeout:g} s")
    rows = [
        ("/metrics size (gzip, kB)", lambda r: f"{r['unloaded']['bytes'] / 1e3:.0f}"),
        ("unloaded median (ms)", lambda r: f"{r['unloaded']['median_ms']:.1f}"),
        ("unloaded p99 (ms)", lambda r: f"{r['unloaded']['p99_ms']:.1f}"),
        ("abused median (ms)", lambda r: f"{r['loaded']['median_ms']:.1f}"),
        ("abused p99 (ms)", lambda r: f"{r['loaded']['p99_ms']:.1f}"),
        ("median ratio abused/unloaded",
         lambda r: f"{r['loaded']['median_ms'] / r['unloaded']['median_ms']:.2f}x"),
        ("p99 ratio abused/unloaded",
         lambda r: f"{r['loaded']['p99_ms'] / r['unloaded']['p99_ms']:.2f}x"),
        ("abused scrapes answered / failed",
         lambda r: f"{r['loaded']['answered']} / {r['loaded']['failed']}"),
        ("idle connections opened", lambda r: f"{r['idle_opened']}"),
        ("RSS growth per idle conn (KiB)", lambda r: f"{r['rss_per_idle_kib']:.2f}"),
        ("idle still open at the end", lambda r: f"{r['idle_still_open']}"),
        ("slowloris cut off by the server", lambda r: f"{r['slowloris_cut']}"),
        ("RSS at the end (MiB)", lambda r: f"{r['rss_end_mib']:.0f}"),
        ("probes/s unloaded", lambda r: f"{r['probes_before']:.0f}" if "probes_before" in r
         else "-"),
        ("probes/s abused", lambda r: f"{r['probes_during']:.0f}" if "probes_during" in r
         else "-"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}" + "".join(f" {r['name']:>16}" for r in results))
    for label, cell in rows:
        print(f"{label:{width}}" + "".join(f" {cell(r):>16}" for r in results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--slowloris", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--scrape-timeout", type=float, default=10.0)
    parser.add_argument("--phase-budget", type=float, default=90.0,
                        help="seconds at most per scrape phase")
    parser.add_argument("--probe-window", type=float, default=10.0,
                        help="seconds at least over which the probe rate is measured")
    parser.add_argument("--no-node-exporter", action="store_true")
    args = parser.parse_args()
    binary = args.build_dir / "ntp-monitor"
    common.raise_fd_limit()  # inherited by the servers started below
    results = []
    with tempfile.TemporaryDirectory(prefix="ntpmon-abuse-") as tmp:
        tmp = Path(tmp)
        sim = peers.Simulator(tmp / "sim", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=3600).start()
        try:
            daemon = common.MonitorDaemon(tmp / "daemon", binary,
                                          common.fleet_config(sim.port, args.servers, 1))
            with daemon.start():
                probes = daemon_probes(daemon)
                wait_for("every server polled", lambda: probes() >= args.servers, 60,
                         interval_s=1, ignore=(OSError, AssertionError))
                time.sleep(5)  # past the iburst: the steady 1 probe/s per server
                results.append(measure("ntp-monitor", daemon.metrics_port, daemon.proc.pid,
                                       args, probes))
        finally:
            sim.stop()
        if not args.no_node_exporter:
            if not NODE_EXPORTER.exists():
                print(f"{NODE_EXPORTER} missing (scripts/install-deps installs "
                      "prometheus-node-exporter): node_exporter column skipped")
            else:
                port = peers.free_tcp_port()
                log = tmp / "node-exporter.log"
                proc = peers.spawn([str(NODE_EXPORTER), f"--web.listen-address=127.0.0.1:{port}",
                                    *NODE_EXPORTER_ARGS], log)
                try:
                    wait_for("node_exporter answers", lambda: scrape(port, 2)[1] is not None,
                             20, interval_s=0.2)
                    results.append(measure("node_exporter", port, proc.pid, args, None))
                finally:
                    peers.stop_process(proc)
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
