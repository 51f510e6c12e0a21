#!/usr/bin/python3
"""Accuracy of `ntp-monitor query` against chronyd as a reference client, in the same run.

Prints figures; asserts nothing about them (a benchmark, not a timed test):

(a) loopback: a real chronyd (`local stratum 3`) serves the host clock, so the true offset
    is 0. R runs of `ntp-monitor query --json` and R runs of `chronyd -Q` (one offset
    measured with iburst, clock untouched) against the same server; median |offset| of
    each and their ratio (ntp-monitor / chronyd; below 1 means closer to the truth).
(b) impaired path: the project's simulator with a known offset (10 ms), 40 % of requests
    delayed 6 ms on the way out and 40 % of replies delayed 10 ms on the way back. The
    asymmetric delays bias single samples by up to +-5 ms; the clock filter (lowest delay
    of 8) should recover the true offset. R runs with --samples 8, R with --samples 1, R of
    chronyd -Q; median and 90th percentile |error| in ms.

The peers come from tests/integration/peers.py (same start/stop/safety code as the suite:
loopback only, no CAP_SYS_TIME, killed with this process).

Usage: python3 bench/accuracy.py --binary build/ntp-monitor [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import peers  # noqa: E402

TRUE_OFFSET_S = 0.010
IMPAIRMENT = [
    "--offset", f"{TRUE_OFFSET_S}",
    "--forward-delay", "0.006", "--forward-delay-probability", "0.4",
    "--return-delay", "0.010", "--return-delay-probability", "0.4",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def monitor_offsets(binary: Path, target: str, runs: int, options: list[str]) -> tuple[list, int]:
    """Offsets (s) of `runs` query runs; also the number of runs without a valid answer."""
    offsets, failed = [], 0
    for _ in range(runs):
        rc, result, _ = peers.query_json([target], *options, binary=binary)
        if rc != 0 or not result or not result[0].get("ok"):
            failed += 1
            continue
        offsets.append(float(result[0]["offset"]))
    return offsets, failed


def chrony_offsets(workdir: Path, port: int, runs: int) -> tuple[list, int]:
    offsets, failed = [], 0
    for i in range(runs):
        value = peers.chrony_client_offset(workdir / f"chronyc-{i}", port)
        if value is None:
            failed += 1
        else:
            offsets.append(value)
    return offsets, failed


def summary(name: str, errors_s: list[float], failed: int, seconds: float) -> float:
    if not errors_s:
        print(f"  {name:<34} no valid run ({failed} failed)")
        return float("nan")
    med = statistics.median(errors_s)
    print(f"  {name:<34} median {med * 1e3:8.4f} ms   p90 {percentile(errors_s, 0.9) * 1e3:8.4f} ms"
          f"   max {max(errors_s) * 1e3:8.4f} ms   runs {len(errors_s)}"
          f" (+{failed} failed)   {seconds:5.1f} s")
    return med


def timed(fn, *args):
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


def loopback(binary: Path, workdir: Path, runs: int) -> None:
    print(f"(a) loopback, real chronyd serving the host clock (true offset 0), {runs} runs each")
    with peers.ChronyServer(workdir / "server", stratum=3, ipv6=False).start() as server:
        target = f"127.0.0.1:{server.port}"
        options = ["--samples", "4", "--interval", "0.2"]
        (mon, mon_failed), mon_s = timed(monitor_offsets, binary, target, runs, options)
        (chr_, chr_failed), chr_s = timed(chrony_offsets, workdir / "a", server.port, runs)
    med_mon = summary("ntp-monitor query --samples 4", [abs(o) for o in mon], mon_failed,
                      mon_s)
    med_chr = summary("chronyd -Q (iburst)", [abs(o) for o in chr_], chr_failed, chr_s)
    if med_chr > 0:
        print(f"  ratio median |offset| ntp-monitor / chronyd: {med_mon / med_chr:.2f}")
    print()


def impaired(binary: Path, workdir: Path, runs: int, seed: int) -> None:
    print(f"(b) simulator: offset {TRUE_OFFSET_S * 1e3:g} ms, 40% +6 ms forward, 40% +10 ms "
          f"return; {runs} runs each, |error| = |offset - {TRUE_OFFSET_S * 1e3:g} ms|")
    sim = peers.Simulator(workdir / "sim", args=IMPAIRMENT + ["--seed", str(seed)],
                          binary=binary)
    with sim.start():
        results = {}
        for name, options in (
            ("ntp-monitor query --samples 8", ["--samples", "8", "--interval", "0.1"]),
            ("ntp-monitor query --samples 1", ["--samples", "1"]),
        ):
            (offs, failed), secs = timed(monitor_offsets, binary, sim.target, runs, options)
            results[name] = summary(name, [abs(o - TRUE_OFFSET_S) for o in offs], failed, secs)
        (chr_, chr_failed), chr_s = timed(chrony_offsets, workdir / "b", sim.port, runs)
        results["chronyd -Q"] = summary("chronyd -Q (iburst)",
                                        [abs(o - TRUE_OFFSET_S) for o in chr_], chr_failed,
                                        chr_s)
    eight = results["ntp-monitor query --samples 8"]
    print(f"  target: --samples 8 median under 0.1 ms -> "
          f"{'met' if eight < 0.0001 else 'NOT met'} ({eight * 1e3:.4f} ms)")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, default=peers.REPO / "build" / "ntp-monitor")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12345, help="simulator seed for (b)")
    parser.add_argument("--only", choices=["loopback", "impaired"], help="run one part")
    args = parser.parse_args()
    binary = args.binary.resolve()
    if not binary.is_file():
        print(f"accuracy.py: {binary} not found; build the ntp-monitor target first",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ntpmon-accuracy-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "loopback"):
            loopback(binary, workdir, args.runs)
        if args.only in (None, "impaired"):
            impaired(binary, workdir, args.runs, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
