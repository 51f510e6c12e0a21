#!/usr/bin/env python3
"""One get_time round trip from Python (the ntp_monitor binding) against the same query from
C++ (bench/client_roundtrip.cpp: NtpClient::get_time, the call the binding makes), same
samples, same simulator, same run. The issue's target: Python costs under 1.2x C++.

    python3 bench/python_client.py [--build build] [--samples 4] [--iterations 200] [--rounds 5]

Starts `ntp-monitor simulate` on 127.0.0.1 (port chosen by the kernel), then alternates rounds:
C++ ITERATIONS calls (timed inside the C++ process), Python ITERATIONS calls. Prints the median
per call of each side over all rounds and their ratio; exits 1 when the ratio is 1.2 or more.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=REPO / "build")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=float, default=1.2)
    args = parser.parse_args()

    sys.path.insert(0, str(args.build / "python"))
    from ntp_monitor import NTPClient  # noqa: E402: from the build directory

    sim = subprocess.Popen([str(args.build / "ntp-monitor"), "simulate", "--listen",
                            "127.0.0.1:0", "--max-runtime", "600"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = sim.stdout.readline().strip()
        target = line.rsplit(" ", 1)[-1]
        if not line.startswith("listening on"):
            raise SystemExit(f"simulator said {line!r}")
        client = NTPClient(None)
        cpp_medians, py_medians = [], []
        for _ in range(args.rounds):
            out = subprocess.run([str(args.build / "bench" / "client_roundtrip"), target,
                                  str(args.samples), str(args.iterations)],
                                 capture_output=True, text=True, check=True)
            cpp_medians.append(json.loads(out.stdout)["median_us"])
            times = []
            for _ in range(args.iterations):
                start = time.perf_counter()
                client.get_time(target, samples=args.samples, interval=0.0, timeout=2.0)
                times.append((time.perf_counter() - start) * 1e6)
            py_medians.append(statistics.median(times))
    finally:
        sim.terminate()
        sim.wait(timeout=10)

    cpp, py = statistics.median(cpp_medians), statistics.median(py_medians)
    ratio = py / cpp
    print(f"get_time round trip, {args.samples} samples, {args.iterations} calls x "
          f"{args.rounds} rounds against {target}:")
    print(f"  C++    median {cpp:9.1f} us  (rounds: {', '.join(f'{v:.1f}' for v in cpp_medians)})")
    print(f"  Python median {py:9.1f} us  (rounds: {', '.join(f'{v:.1f}' for v in py_medians)})")
    print(f"  ratio Python/C++ = {ratio:.3f} (target < {args.limit})")
    return 0 if ratio < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
