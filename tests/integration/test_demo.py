"""`ntp-monitor demo`: the simulated fleet and the daemon watching it, in one process.

Real binary on free loopback ports. The demo must show every feature on its own: the
falseticker classified as one, the 80 ms server alerting on its offset (while still a
truechimer), the slow server alerting on delay, the Kiss-o'-Death server counted under RATE,
the server that dies raising the unreachable alert, metrics that promtool accepts, the JSON
API, and a clean stop on --duration and on Ctrl-C (SIGINT) within 2 s. Waits are polls with
deadlines; the demo's own --duration bounds every run.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

import peers
from helpers import http_get, metric, samples, wait_for

FLEET = ("good-1", "good-2", "good-3", "offset-80ms", "falseticker", "slow", "kod-rate", "dies")


class Demo:
    def __init__(self, workdir: Path, *args: str):
        self.metrics_port = peers.free_tcp_port()
        self.api_port = peers.free_tcp_port()
        self.stdout_path = workdir / "demo.out"
        self.log_path = workdir / "demo.log"
        argv = [str(peers.monitor_binary()), "demo", "--prometheus-port", str(self.metrics_port),
                "--web-dashboard", str(self.api_port), *args]
        # stdout to its own file, stderr (the daemon's log) to another.
        self.proc = peers.spawn(argv, self.log_path, stdout_path=self.stdout_path)

    def metrics(self) -> Optional[str]:
        try:
            status, _, body = http_get(self.metrics_port, "/metrics", timeout_s=3)
        except OSError:
            return None
        return body.decode() if status == 200 else None

    def banner(self) -> str:
        return self.stdout_path.read_text()

    def stop(self) -> None:
        peers.stop_process(self.proc)

    def context(self) -> str:
        return f"\n--- stdout\n{self.banner()}\n--- log\n{peers._tail(self.log_path)}"


@pytest.fixture
def demo(tmp_path, monitor):
    started: list[Demo] = []

    def make(*args: str) -> Demo:
        d = Demo(tmp_path, *args)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def test_demo_shows_every_feature_and_stops_after_duration(demo):
    d = demo("--duration", "20", "--die-after", "6")
    start = time.monotonic()

    def everything_shown():
        text = d.metrics()
        if text is None:
            return None
        ready = (
            metric(text, "ntp_monitor_server_info", server="falseticker", state="falseticker") == 1
            and metric(text, "ntp_monitor_alert_active", server="offset-80ms",
                       alert="NtpServerOffsetHigh") == 1
            and metric(text, "ntp_monitor_alert_active", server="slow",
                       alert="NtpServerDelayHigh") == 1
            and (metric(text, "ntp_monitor_kod_total", server="kod-rate", code="RATE") or 0) >= 1
            and metric(text, "ntp_monitor_alert_active", server="dies",
                       alert="NtpServerUnreachable") == 1)
        return text if ready else None

    try:
        text = wait_for("every demo feature visible in /metrics", everything_shown, 18)
    except AssertionError as e:
        raise AssertionError(str(e) + d.context()) from None

    # The fleet is exactly the advertised one, each on its own loopback address.
    assert metric(text, "ntp_monitor_servers") == len(FLEET)
    addresses = {ls["server"]: ls["address"] for n, ls, _ in samples(text)
                 if n == "ntp_monitor_server_up"}
    assert addresses == {name: f"127.0.0.{11 + i}" for i, name in enumerate(FLEET)}

    # Offsets are the simulator's knobs; loopback adds microseconds, not milliseconds.
    assert metric(text, "ntp_monitor_server_offset_seconds", server="falseticker") == \
        pytest.approx(0.5, abs=0.005)
    assert metric(text, "ntp_monitor_server_offset_seconds", server="offset-80ms") == \
        pytest.approx(0.080, abs=0.005)
    # The 80 ms server is honest about its error: an offset alert, not a falseticker.
    assert metric(text, "ntp_monitor_server_info", server="offset-80ms", state="falseticker") \
        is None
    # Absent (standard mode: never fired) or 0.
    assert metric(text, "ntp_monitor_alert_active", server="offset-80ms",
                  alert="NtpServerFalseticker") in (None, 0)
    assert metric(text, "ntp_monitor_alert_active", server="falseticker",
                  alert="NtpServerFalseticker") == 1
    # 150 ms each way.
    assert metric(text, "ntp_monitor_server_delay_seconds", server="slow") == \
        pytest.approx(0.300, abs=0.02)
    for name in ("good-1", "good-2", "good-3"):
        assert metric(text, "ntp_monitor_server_up", server=name) == 1
        assert abs(metric(text, "ntp_monitor_server_offset_seconds", server=name)) < 0.005
        for alert in ("NtpServerOffsetHigh", "NtpServerDelayHigh", "NtpServerFalseticker",
                      "NtpServerUnreachable", "NtpKissOfDeath"):
            assert metric(text, "ntp_monitor_alert_active", server=name, alert=alert) in (None, 0)
    # A server that only ever sent KoD has no sample and is not up.
    assert metric(text, "ntp_monitor_server_up", server="kod-rate") == 0
    assert metric(text, "ntp_monitor_server_offset_seconds", server="kod-rate") is None
    assert metric(text, "ntp_monitor_server_up", server="dies") == 0
    assert metric(text, "ntp_monitor_majority") == 1
    selected = [ls["server"] for n, ls, v in samples(text)
                if n == "ntp_monitor_server_selected" and v == 1]
    assert len(selected) == 1 and selected[0] in {"good-1", "good-2", "good-3", "offset-80ms",
                                                  "slow"}

    # The JSON API on the dashboard port sees the same fleet.
    status, _, body = http_get(d.api_port, "/api/v1/servers", timeout_s=3)
    assert status == 200
    servers = {s["name"]: s for s in json.loads(body)["servers"]}
    assert set(servers) == set(FLEET)
    assert servers["falseticker"]["state"] == "falseticker"
    assert servers["kod-rate"]["kod"].get("RATE", 0) >= 1

    promtool = shutil.which("promtool")
    if promtool is not None:
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr

    # --duration 20 ends the demo by itself, cleanly.
    rc = d.proc.wait(timeout=max(1.0, 20 + 5 - (time.monotonic() - start)))
    took_s = time.monotonic() - start
    assert rc == 0, d.context()
    assert 19.0 < took_s < 24.0
    banner = d.banner()
    assert f"http://127.0.0.1:{d.metrics_port}/metrics" in banner
    assert f"http://127.0.0.1:{d.api_port}/" in banner
    config = re.search(r"^Config:\s+(\S+)$", banner, re.M)
    assert config, banner
    # The temporary configuration is removed on exit.
    assert not Path(config.group(1)).exists()
    log = d.log_path.read_text()
    assert "event=daemon_stopping reason=SIGTERM" in log
    if promtool is None:
        pytest.skip("promtool not installed: metrics format not checked")


def test_demo_ctrl_c_stops_within_two_seconds(demo):
    d = demo("--duration", "60")
    wait_for("metrics served", lambda: d.metrics() is not None and
             metric(d.metrics(), "ntp_monitor_server_up", server="good-1") == 1, 15)
    sent = time.monotonic()
    d.proc.send_signal(signal.SIGINT)
    rc = d.proc.wait(timeout=5)
    took_s = time.monotonic() - sent
    assert rc == 0, d.context()
    assert took_s < 2.0, f"took {took_s:.2f} s"
    assert "event=daemon_stopping reason=SIGINT" in d.log_path.read_text()
