#!/usr/bin/python3
"""Probe throughput of the daemon against a minimal raw UDP loop, in the same run.

Prints figures; asserts nothing about them (a benchmark, not a timed test):

(a) the daemon (`ntp-monitor --config FILE`) polling N sources (default 20,000), each on its
    own loopback address 127.A.B.C, every second (the daemon never polls an address more
    often than once per second, even on loopback, so throughput comes from many sources),
    all answered by ONE `ntp-monitor simulate --listen 0.0.0.0:P`. After a warm-up, probes/s
    from the sum of ntp_monitor_requests_total / ntp_monitor_responses_total over a window,
    and the daemon's CPU per probe (utime + stime from /proc/PID/stat).
(b) bench/raw_udp_loop (C++, one socket, no event library) against the same simulator and
    the same address list: exchanges/s with 64 requests in flight (the simulator's and
    kernel's ceiling on this machine) and in lock-step (one in flight), and its CPU per
    exchange.
(c) the daemon saturated: as (a), but with more sources (default 150,000, each polled every
    second) than it can poll on this machine, so that its window of requests in flight
    (requests.max_in_flight) is always full and the loop thread always busy. Its answered
    probes/s is then the daemon's probe throughput, compared with the raw loop's exchanges/s
    (64 in flight): the ratio the issue's target is about. Polls it could not send in time are
    counted by the daemon (ntp_monitor_requests_unsent_total) and printed.

Placement: on a machine with two CPUs or more, the simulator runs on the last CPU and the client
being measured (the daemon's event-loop thread, or the raw loop) on CPU 0, each alone. The
simulator stands in for servers that are elsewhere on a network; left free, the scheduler puts
it on the client's CPU whenever a burst of requests wakes it, it preempts the client in the
middle of sendmmsg and evicts the client's cache, which no remote server can do. Both clients
get the same placement. --no-pin leaves placement to the scheduler (for comparison).

Ratios printed: for (c), the saturated daemon's answered probes/s / raw exchanges/s (the
throughput target); for (a), daemon probes/s / raw probes/s (the daemon's rate is capped at N/s
by the 1 s loopback poll floor, so this compares offered load with a ceiling), and the
efficiency ratio raw CPU per exchange / daemon CPU per probe (1.0 = the daemon costs no
more CPU per probe than the minimal loop; its reciprocal bounds how many probes/s one core
could sustain).

The peers come from tests/integration/peers.py (loopback only, killed with this process).
scale.py and scrape_load.py import the helpers below.

Usage: python3 bench/throughput.py --build-dir build [--sources 20000] [--window 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import helpers  # noqa: E402
import peers  # noqa: E402
from helpers import wait_for  # noqa: E402

CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def address(i: int) -> str:
    """Address i of the benchmark fleet: 127.A.B.C with C in 1..250 (as raw_udp_loop.cpp)."""
    return f"127.{1 + i // (250 * 256)}.{(i // 250) % 256}.{1 + i % 250}"


FLEET_LIST = "fleet.txt"


def fleet_config(port: int, n: int, poll_s: float, extra: str = "") -> tuple[str, dict]:
    """N servers at address(0..N-1):port: the YAML configuration and the server list file it
    names (one address per line, `server_lists:`), so N is not bounded by the 1 MiB limit of
    the YAML file."""
    yaml = "\n".join([
        "servers: []",
        "server_lists:",
        f"- {{path: {FLEET_LIST}, port: {port}}}",
        f"poll: {{min: {poll_s:g}, max: {poll_s:g}}}",
        extra]) + "\n"
    listing = "".join(f"{address(i)}\n" for i in range(n))
    return yaml, {FLEET_LIST: listing}


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def process_cpu_s(pid: int) -> float:
    """utime + stime of process `pid` so far (/proc/PID/stat fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S


class MonitorDaemon(helpers.Daemon):
    """helpers.Daemon on `binary` at a log level; start() does not wait for readiness (the
    benchmarks wait for what they measure, from started_at)."""

    def __init__(self, workdir: Path, binary: Path, config, log_level: str = "warning"):
        """config: the YAML text, or (YAML text, {file name: text}) as fleet_config gives."""
        config_text, files = config if isinstance(config, tuple) else (config, {})
        super().__init__(workdir, config_text, ["--log-level", log_level], binary=binary)
        for name, text in files.items():
            (self.workdir / name).write_text(text)
        self.started_at = 0.0

    def start(self) -> "MonitorDaemon":
        self.started_at = time.monotonic()
        return super().start(ready=lambda d: True)

    def _body(self, port: int, path: str, timeout_s: float) -> Optional[bytes]:
        """The body of a 200 answer, None without one; raises if the daemon has exited."""
        try:
            status, _, body = helpers.http_get(port, path, timeout_s=timeout_s)
            if status == 200:
                return body
        except OSError:
            pass
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
        return None

    def scrape(self, timeout_s: float = 60.0) -> Optional[str]:
        """/metrics as text, None if it does not answer."""
        body = self._body(self.metrics_port, "/metrics", timeout_s)
        return body.decode() if body is not None else None

    def status(self, timeout_s: float = 30.0) -> Optional[dict]:
        """/api/v1/status: totals without a line per server (cheap with a million)."""
        body = self._body(self.api_port, "/api/v1/status", timeout_s)
        return json.loads(body.decode()) if body is not None else None

    def cpu_s(self) -> float:
        return process_cpu_s(self.proc.pid)

    def rss_kib(self) -> int:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{self.proc.pid}/status").read_text(),
                          re.M)
        return int(match.group(1))


# CPUs for the client being measured and for the simulator (see the module comment), or None.
CLIENT_CPU: Optional[int] = None
SIMULATOR_CPU: Optional[int] = None


def plan_placement(pin: bool) -> str:
    """Chooses the CPUs; returns a line saying where things run."""
    global CLIENT_CPU, SIMULATOR_CPU
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        CLIENT_CPU = SIMULATOR_CPU = None
        return "placement: left to the scheduler"
    CLIENT_CPU, SIMULATOR_CPU = cpus[0], cpus[-1]
    return f"placement: client on CPU {CLIENT_CPU}, simulator on CPU {SIMULATOR_CPU}"


def place(pid: int, cpu: Optional[int]) -> None:
    """Puts every thread of process `pid` on `cpu` (no-op for None)."""
    if cpu is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except OSError:
            pass  # a thread that just ended


def raw_loop(build_dir: Path, port: int, n: int, window: int, seconds: float,
             stamps: bool = False) -> dict:
    binary = build_dir / "bench" / "raw_udp_loop"

    def setup() -> None:
        peers._child_setup()
        if CLIENT_CPU is not None:
            os.sched_setaffinity(0, {CLIENT_CPU})

    out = subprocess.run([str(binary), str(port), str(n), str(window), f"{seconds:g}",
                          "1" if stamps else "0"],
                         capture_output=True, text=True, timeout=seconds + 30, check=True,
                         preexec_fn=setup)
    return json.loads(out.stdout)


def udp_receive_buffer_errors() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer (all sockets)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def measure_daemon(workdir: Path, binary: Path, sim: peers.Simulator, n: int,
                   selection_interval_s: float, warmup_s: float, window_s: float,
                   extra_config: str = "") -> dict:
    """Probes/s and CPU per probe of a daemon polling N sources every second (extra_config:
    more YAML for its configuration)."""
    extra = f"selection: {{interval_s: {selection_interval_s:g}}}\n{extra_config}"
    daemon = MonitorDaemon(workdir, binary, fleet_config(sim.port, n, 1.0, extra))
    with daemon.start():
        place(daemon.proc.pid, CLIENT_CPU)
        wait_for("every source monitored",
                 lambda: (t := daemon.status()) and t["sources"] == n, 120, interval_s=0.5)
        time.sleep(warmup_s)

        def sample():
            # /api/v1/status: the totals without a line per server, so that reading them costs
            # the daemon next to nothing even with 150,000 servers.
            t0 = time.monotonic()
            status = daemon.status()
            t1 = time.monotonic()
            window = status.get("requests_window") or {}
            return {"at": (t0 + t1) / 2, "requests": status["requests"],
                    "responses": status["responses"], "cpu": daemon.cpu_s(),
                    "sim_cpu": process_cpu_s(sim.proc.pid), "unsent": window.get("unsent", 0),
                    "in_flight": window.get("in_flight", 0),
                    "unmatched": status["unmatched_datagrams"],
                    "buffer_drops": udp_receive_buffer_errors()}

        a = sample()
        time.sleep(window_s)
        b = sample()
        rss = daemon.rss_kib()
    elapsed = b["at"] - a["at"]
    d = {key: b[key] - a[key] for key in a}
    cpu = d["cpu"]
    return {
        "elapsed_s": elapsed,
        "requests_ps": d["requests"] / elapsed,
        "responses_ps": d["responses"] / elapsed,
        "cpu_per_probe_us": cpu / max(1.0, d["requests"]) * 1e6,
        "cpu_share": cpu / elapsed,
        "sim_cpu_share": d["sim_cpu"] / elapsed,
        "rss_kib": rss,
        "unsent_ps": d["unsent"] / elapsed,
        "answered_cpu_us": cpu / max(1.0, d["responses"]) * 1e6,
        "in_flight": b["in_flight"],
        "unmatched": d["unmatched"],
        "buffer_drops": d["buffer_drops"],
    }


def report(n: int, runs: dict, raw_fast: dict, raw_step: dict, raw_stamped: dict,
           efficiencies: dict) -> None:
    """Prints one run's figures and appends its CPU efficiencies (plain, stamped) by interval."""
    raw_cpu_per_exchange_us = raw_fast["cpu_s"] / max(1, raw_fast["exchanges"]) * 1e6
    print(f"raw loop: {raw_fast['per_second']:10.1f} exchanges/s with 64 in flight "
          f"({raw_cpu_per_exchange_us:.2f} us CPU per exchange, {raw_fast['timeouts']} lost)")
    print(f"          {raw_step['per_second']:10.1f} exchanges/s in lock-step (1 in flight)")
    raw_stamped_us = raw_stamped["cpu_s"] / max(1, raw_stamped["exchanges"]) * 1e6
    print(f"          {raw_stamped['per_second']:10.1f} exchanges/s with kernel T1/T4 stamps as the "
          f"daemon takes them ({raw_stamped_us:.2f} us CPU per exchange)")
    for interval, r in sorted(runs.items()):
        label = ("selection every 1 s (default)" if interval == 1.0
                 else f"selection held off (selection.interval_s {interval:g})")
        print(f"daemon, {label}:")
        print(f"          {r['requests_ps']:10.1f} requests/s  {r['responses_ps']:10.1f} "
              f"responses/s  (window {r['elapsed_s']:.1f} s; ideal {n}/s)")
        print(f"          {r['cpu_per_probe_us']:10.2f} us CPU per probe (utime+stime), "
              f"{r['cpu_share'] * 100:.0f} % of a CPU; RSS {r['rss_kib'] / 1024:.1f} MiB; "
              f"simulator {r['sim_cpu_share'] * 100:.0f} % of a CPU")
        print(f"          ratio daemon / raw: {r['responses_ps'] / raw_fast['per_second']:.3f} "
              f"(64 in flight), {r['responses_ps'] / raw_step['per_second']:.3f} (lock-step)")
        plain = raw_cpu_per_exchange_us / r["cpu_per_probe_us"]
        stamped = raw_stamped_us / r["cpu_per_probe_us"]
        print(f"          CPU efficiency raw / daemon: {plain:.3f} (target >= 0.5); "
              f"stamped raw / daemon: {stamped:.3f}; "
              f"one core at the daemon's cost: {1e6 / r['cpu_per_probe_us']:.0f} probes/s")
        efficiencies[interval].append((plain, stamped))


def report_saturated(n: int, r: dict, raw_fast: dict, ratios: list) -> None:
    """Prints the saturated daemon's figures and appends its throughput ratio."""
    ratio = r["responses_ps"] / raw_fast["per_second"]
    print(f"daemon saturated ({n} sources polled every second, selection every 1 s):")
    print(f"          {r['responses_ps']:10.1f} answered probes/s  ({r['requests_ps']:.1f} polls/s "
          f"asked for, {r['unsent_ps']:.1f}/s replaced before they left; {r['in_flight']:.0f} in "
          f"flight at the end; window {r['elapsed_s']:.1f} s)")
    print(f"          {r['answered_cpu_us']:10.2f} us CPU per answered probe, "
          f"{r['cpu_share'] * 100:.0f} % of a CPU; RSS {r['rss_kib'] / 1024:.1f} MiB; simulator "
          f"{r['sim_cpu_share'] * 100:.0f} % of a CPU")
    print(f"          in the window: {r['unmatched']:.0f} datagrams unmatched, "
          f"{r['buffer_drops']} UDP datagrams dropped by full receive buffers (whole machine)")
    saturated = r["unsent_ps"] > 0 or r["cpu_share"] > 0.9
    print(f"          probe throughput daemon / raw loop (64 in flight): {ratio:.3f} "
          f"(target >= 0.5)" + ("" if saturated else
                                "  NOT SATURATED: raise --saturate-sources"))
    ratios.append(ratio)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", type=Path, default=peers.build_dir())
    parser.add_argument("--sources", type=int, default=20000)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="measurement window, s")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure everything this many times, then print the medians")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave CPU placement to the scheduler")
    parser.add_argument("--saturate-sources", type=int, default=150000,
                        help="sources of the saturated run (more than the daemon can poll "
                             "every second); 0 skips it")
    args = parser.parse_args()
    placement = plan_placement(not args.no_pin)
    binary = args.build_dir / "ntp-monitor"
    n = args.sources

    with tempfile.TemporaryDirectory(prefix="ntpmon-throughput-") as tmp:
        tmp = Path(tmp)
        per_run_s = 3 * args.warmup + 6 * args.window + 420
        sim = peers.Simulator(tmp / "sim", listen="0.0.0.0:0", binary=binary,
                              max_runtime_s=args.repeat * per_run_s + 300).start()
        place(sim.proc.pid, SIMULATOR_CPU)
        efficiencies: dict[float, list[tuple[float, float]]] = {1.0: [], 3600.0: []}
        saturated_ratios: list[float] = []
        with sim:
            print(f"machine: {os.cpu_count()} CPUs; sources: {n} on 127.x.y.z, poll 1 s, one "
                  f"wildcard simulator; {placement}")
            for repeat in range(args.repeat):
                if args.repeat > 1:
                    print(f"--- run {repeat + 1} of {args.repeat}")
                # (a) the daemon with the default selection interval (1 s), and with the
                # selection held off (interval 3600 s), which isolates the probe path; the
                # order alternates from run to run, so neither always comes first.
                intervals = (1.0, 3600.0) if repeat % 2 == 0 else (3600.0, 1.0)
                runs = {interval: measure_daemon(tmp / f"daemon-{repeat}-{interval:g}", binary,
                                                 sim, n, interval, args.warmup, args.window)
                        for interval in intervals}
                # (b) the raw loop: same simulator, same addresses.
                raw_fast = raw_loop(args.build_dir, sim.port, n, 64, args.window)
                raw_step = raw_loop(args.build_dir, sim.port, n, 1, args.window)
                raw_stamped = raw_loop(args.build_dir, sim.port, n, 64, args.window, stamps=True)
                report(n, runs, raw_fast, raw_step, raw_stamped, efficiencies)
                if args.saturate_sources > 0:
                    saturated = measure_daemon(tmp / f"daemon-{repeat}-saturated", binary, sim,
                                               args.saturate_sources, 1.0, args.warmup,
                                               args.window)
                    report_saturated(args.saturate_sources, saturated, raw_fast,
                                     saturated_ratios)
    if args.repeat > 1:
        print(f"--- median of {args.repeat} runs, CPU efficiency raw / daemon (plain loop; loop "
              f"with kernel stamps), target >= 0.5:")
        for interval, values in efficiencies.items():
            label = "default" if interval == 1.0 else "selection held off"
            plain = statistics.median(v[0] for v in values)
            stamped = statistics.median(v[1] for v in values)
            print(f"          {label}: {plain:.3f}; {stamped:.3f}")
        if saturated_ratios:
            print(f"--- median of {args.repeat} runs, probe throughput of the saturated daemon / "
                  f"raw loop, target >= 0.5: {statistics.median(saturated_ratios):.3f} "
                  f"(runs: {', '.join(f'{r:.3f}' for r in saturated_ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
