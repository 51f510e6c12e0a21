#!/usr/bin/python3
"""CPU per probe of the monitoring daemon: plain vs NTS vs symmetric key, in the same run.

End to end: one `ntp-monitor` daemon per mode polls N server entries (all pointing at one local
chronyd, so N probes per second at the one-second loopback poll) for a measured window after a
warm-up (NTS-KE done, filters full). The daemon's CPU time (utime + stime from /proc/PID/stat)
over the window divided by the requests it sent in the window (sum of
ntp_monitor_requests_total) is the CPU per probe: sockets, timers, the monitor, the crypto and
the snapshot publishing, everything the daemon does per probe. Prints each figure and the
ratios NTS/plain and key/plain (issue target: NTS <= 3x plain).

chronyd serves plain, NTS (a throw-away CA made with openssl) and a SHA256 key; peers.py
starts and stops it (loopback only, no CAP_SYS_TIME).

Usage: python3 bench/nts_cost.py --binary build/ntp-monitor [--servers 100] [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import peers  # noqa: E402
from helpers import Daemon, parse_metrics  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def requests(d: Daemon) -> float:
    m = parse_metrics(d.metrics_text())
    return sum(v for (name, _), v in m.items() if name == "ntp_monitor_requests_total")


def measure(workdir: Path, mode: str, entries: str, extra: str, n: int, warmup_s: float,
            seconds: float) -> tuple[float, float]:
    config = "servers:\n" + "".join(entries.replace("@I@", str(i)) for i in range(n)) + \
        "poll: {min: 1, max: 1}\nalerts: {certificate_expiry_days: 0}\n" + extra
    d = Daemon(workdir / mode, config)
    d.start()
    try:
        time.sleep(warmup_s)
        c0, r0 = cpu_s(d.proc.pid), requests(d)
        time.sleep(seconds)
        c1, r1 = cpu_s(d.proc.pid), requests(d)
        m = parse_metrics(d.metrics_text())
        failed = sum(v for (name, labels), v in m.items()
                     if name == "ntp_monitor_rejected_total" and v > 0)
        up = sum(v for (name, _), v in m.items() if name == "ntp_monitor_server_up")
        if up < n or failed:
            print(f"  warning: {mode}: {up:g} of {n} up, {failed:g} rejected replies")
    finally:
        d.stop()
    probes = r1 - r0
    return (c1 - c0) / probes, probes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=str(peers.monitor_binary()))
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=6.0)
    args = parser.parse_args()
    os.environ["NTPMON_BUILD_DIR"] = str(Path(args.binary).resolve().parent)

    with tempfile.TemporaryDirectory(prefix="nts-cost-") as tmp:
        work = Path(tmp)
        ca = peers.make_test_ca(work / "pki", "ca")
        cert = peers.make_server_cert(work / "pki", ca, "server")
        server = peers.NtsChronyServer(work / "chrony", *cert)
        keys = server.workdir / "chrony.keys"
        keys.write_text("3 SHA256 HEX:" + "a5" * 32 + "\n")
        with open(server.conf_path, "a") as conf:
            conf.write(f"keyfile {keys}\n")
        with server.start():
            common = "name: s@I@, host: 127.0.0.1, port: %d" % server.port
            modes = {
                "plain": ("  - {%s}\n" % common, ""),
                "nts": ("  - {%s, nts: true, ntske_port: %d, ca_file: '%s'}\n"
                        % (common, server.nts_port, ca[0]), ""),
                "key": ("  - {%s, key: 3}\n" % common, f"key_file: '{keys}'\n"),
            }
            results = {}
            for mode, (entry, extra) in modes.items():
                per_probe_s, probes = measure(work, mode, entry, extra,
                                              args.servers, args.warmup, args.seconds)
                results[mode] = per_probe_s
                print(f"{mode:6s} {per_probe_s * 1e6:8.1f} us CPU per probe "
                      f"({probes:.0f} probes in {args.seconds:g} s, {args.servers} servers)")
    plain = results["plain"]
    print(f"NTS/plain {results['nts'] / plain:.2f}x (target <= 3x)   "
          f"key/plain {results['key'] / plain:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
