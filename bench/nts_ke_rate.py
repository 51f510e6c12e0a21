#!/usr/bin/python3
"""NTS-KE handshakes per second against a local chronyd: sequential, and 2 in parallel.

Each handshake is one `ntp-monitor query --nts --samples 1` run (process start, TCP connect,
TLS 1.3 handshake with certificate verification, NTS-KE records, key export, then one NTS
request). Two figures per case, in the same run:
- end to end: query processes per second (wall clock), and the same for plain queries
  (`--samples 1` without NTS) as the baseline that isolates the NTS-KE cost;
- in process: 1 / mean of the query's own `nts_ke_seconds` (connect + TLS + records), the rate
  one client thread could sustain if it did nothing but NTS-KE.
chronyd (its NTS-KE helper processes at their default count) and a throw-away CA come from
tests/integration/peers.py (loopback only, no CAP_SYS_TIME).

Usage: python3 bench/nts_ke_rate.py --binary build/ntp-monitor [--count 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import peers  # noqa: E402


def run_queries(argv: list[str], count: int, workers: int) -> tuple[float, list[float]]:
    """Runs `count` queries split over `workers` threads; returns (wall s, nts_ke_seconds)."""
    durations: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for _ in range(n):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            result = json.loads(out.stdout)[0]
            with lock:
                if out.returncode != 0:
                    failures.append(result.get("error") or out.stderr)
                elif result.get("nts_ke_seconds") is not None:
                    durations.append(result["nts_ke_seconds"])

    threads = [threading.Thread(target=worker, args=(count // workers,)) for _ in range(workers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    if failures:
        print(f"  {len(failures)} failed queries, first: {failures[0]}")
    return wall, durations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=str(peers.monitor_binary()))
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())

    with tempfile.TemporaryDirectory(prefix="nts-ke-rate-") as tmp:
        work = Path(tmp)
        ca = peers.make_test_ca(work / "pki", "ca")
        cert = peers.make_server_cert(work / "pki", ca, "server")
        with peers.NtsChronyServer(work / "chrony", *cert).start() as server:
            target = f"127.0.0.1:{server.port}"
            plain = [binary, "query", "--json", "--samples", "1", "--timeout", "1", target]
            nts = [binary, "query", "--json", "--samples", "1", "--timeout", "1", "--nts",
                   "--ntske-port", str(server.nts_port), "--ca-file", str(ca[0]), target]
            for workers in (1, 2):
                label = "sequential" if workers == 1 else f"{workers} in parallel"
                plain_wall, _ = run_queries(plain, args.count, workers)
                nts_wall, durations = run_queries(nts, args.count, workers)
                n = args.count // workers * workers
                extra_ms = (nts_wall - plain_wall) / n * workers * 1e3
                print(f"{label:14s} NTS queries {n / nts_wall:6.1f}/s, plain queries "
                      f"{n / plain_wall:6.1f}/s (NTS-KE adds {extra_ms:.2f} ms per query "
                      f"per worker); in process: NTS-KE median "
                      f"{statistics.median(durations) * 1e3:.2f} ms -> "
                      f"{workers / statistics.mean(durations):.0f} handshakes/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
