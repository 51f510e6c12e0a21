"""The daemon as a service: systemd's readiness protocol and the `healthcheck` sub-command.

sd_notify: the test plays systemd's part. It binds an AF_UNIX datagram socket, starts the real
daemon with NOTIFY_SOCKET pointing at it (as systemd does for a Type=notify unit) and reads
what the daemon says: READY=1 only once /metrics answers, RELOADING=1 then READY=1 around a
SIGHUP (a good file and a rejected one), STOPPING=1 on SIGTERM.

healthcheck: the container image's HEALTHCHECK (no curl, no shell in the image) against the
same daemon: 0 on 2xx, 1 on a refused connection or a non-2xx answer, 2 on a URL it cannot use.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

import peers
from helpers import Daemon, fleet_config, wait_for


class NotifyListener:
    """The service manager's end of $NOTIFY_SOCKET: one datagram per sd_notify call."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def receive(self, timeout_s: float) -> dict[str, str]:
        self.sock.settimeout(timeout_s)
        data = self.sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.messages.append(fields)
        return fields

    def close(self) -> None:
        self.sock.close()


class NotifiedDaemon(Daemon):
    def __init__(self, workdir: Path, config_text: str, notify_socket: Path):
        super().__init__(workdir, config_text)
        self.notify_socket = notify_socket

    def start(self) -> "NotifiedDaemon":
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_socket))
        self.proc = peers.spawn(self.argv(), self.log_path, env=env)
        return self


@pytest.fixture
def simulator(tmp_path, monitor):
    with peers.Simulator(tmp_path / "sim").start() as sim:
        yield sim


@pytest.fixture
def listener(tmp_path):
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    path = Path("/tmp") / f"ntpmon-notify-{os.getpid()}-{time.monotonic_ns()}"
    lst = NotifyListener(path)
    yield lst
    lst.close()
    path.unlink(missing_ok=True)


def test_sd_notify_ready_reload_stop(tmp_path, simulator, listener):
    config = fleet_config({"sim": ("127.0.0.1", simulator.port)})
    d = NotifiedDaemon(tmp_path / "daemon", config, listener.path).start()
    try:
        ready = listener.receive(15)
        assert ready.get("READY") == "1", f"first message {ready}:\n{d.log()}"
        assert ready.get("STATUS") == "monitoring 1 server"
        # Ready means serving: /metrics answers at once, without waiting.
        assert "ntp_monitor_" in d.metrics_text()

        # A good reload: RELOADING=1 with the monotonic time systemd asks for, then READY=1.
        d.config_path.write_text(fleet_config({"sim": ("127.0.0.1", simulator.port),
                                               "sim2": ("127.0.0.1", simulator.port)}))
        before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.signal(signal.SIGHUP)
        reloading = listener.receive(10)
        assert reloading.get("RELOADING") == "1", reloading
        assert int(reloading["MONOTONIC_USEC"]) >= before_us
        again = listener.receive(10)
        assert again.get("READY") == "1" and again.get("STATUS") == "monitoring 2 servers", again

        # A rejected file: the old configuration keeps running, and the service is ready.
        d.config_path.write_text("servers: [\n")
        d.signal(signal.SIGHUP)
        assert listener.receive(10).get("RELOADING") == "1"
        kept = listener.receive(10)
        assert kept.get("READY") == "1" and kept.get("STATUS") == "monitoring 2 servers", kept
        wait_for("reload failure logged", lambda: d.log_events("config_reload_failed"), 5)

        d.proc.send_signal(signal.SIGTERM)
        stopping = listener.receive(10)
        assert stopping.get("STOPPING") == "1", stopping
        assert stopping.get("STATUS") == "stopping (SIGTERM)"
        assert d.proc.wait(timeout=10) == 0
    finally:
        d.stop()


def test_sd_notify_nothing_before_the_ports_listen(tmp_path, listener):
    # A port that is taken: the daemon exits 2 and never says READY=1, so systemd reports the
    # start as failed instead of a running service that serves nothing.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        d = NotifiedDaemon(tmp_path / "daemon", fleet_config({"sim": ("127.0.0.1", 9)}),
                           listener.path)
        d.metrics_port = busy.getsockname()[1]
        d.start()
        assert d.proc.wait(timeout=15) == 2, d.log()
    listener.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.sock.recv(4096)


def test_healthcheck_exit_codes(tmp_path, simulator, monitor):
    d = Daemon(tmp_path / "daemon", fleet_config({"sim": ("127.0.0.1", simulator.port)}))
    d.start()
    try:
        def healthcheck(*args):
            return peers.run_monitor(["healthcheck", "--timeout", "5", *args], timeout_s=30)

        ok = healthcheck(f"http://127.0.0.1:{d.metrics_port}/healthz")
        assert ok.returncode == 0, ok.stderr
        assert healthcheck(f"http://127.0.0.1:{d.api_port}/api/v1/status").returncode == 0

        missing = healthcheck(f"http://127.0.0.1:{d.metrics_port}/no-such-page")
        assert missing.returncode == 1
        assert "HTTP 404" in missing.stderr

        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]  # bound, not listening: connections are refused
            refused = healthcheck(f"http://127.0.0.1:{port}/healthz")
        assert refused.returncode == 1
        assert refused.stderr.startswith("ntp-monitor healthcheck: http://127.0.0.1:")

        for bad in ("127.0.0.1:9100/healthz", "ftp://127.0.0.1/", "http://"):
            usage = healthcheck(bad)
            assert usage.returncode == 2, (bad, usage.stderr)
    finally:
        d.stop()
