"""Issue #18, case 1: SIGTERM ends the daemon within 2 s whatever its HTTP clients do.

The daemon polls two simulators every second with history on (a SQLite file). On each HTTP
port the test then holds, at the moment of SIGTERM:
- a slowloris client: a request head that never ends, one byte every 0.2 s;
- 200 idle connections that never send a byte;
- a client that pipelines requests and never reads an answer, so the server's writes stall
  on a full socket buffer;
- (metrics port) a /probe scrape of a target that never answers, whose route waits for the
  first sample;
and, on a second daemon with TLS, connections stalled inside the TLS handshake.

The daemon must stop accepting, close every connection, flush history and exit with status 0
within 2 s (README, "Stopping"). History must hold every sample the daemon had taken.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import peers
from helpers import Daemon, fleet_config, metric, wait_for

EXIT_WITHIN_S = 2.0
IDLE_PER_PORT = 200


class StalledClients:
    """The clients listed in the module's docstring, on one port, held until close()."""

    def __init__(self, port: int, probe_target: str = ""):
        self.port = port
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.probe_target = probe_target

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sockets.append(sock)
        return sock

    def _slowloris(self, sock: socket.socket) -> None:
        head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
        for byte in head:
            if self.stop.wait(0.2):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    def _pipeline(self, sock: socket.socket) -> None:
        request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                sock.send(request * 64)
            except (socket.timeout, BlockingIOError):
                continue  # the server stopped reading: its writes are stalled on us
            except OSError:
                return

    def start(self) -> "StalledClients":
        for _ in range(IDLE_PER_PORT):
            self._connect()
        for worker, sock in ((self._slowloris, self._connect()),
                             (self._pipeline, self._connect())):
            thread = threading.Thread(target=worker, args=(sock,), daemon=True)
            thread.start()
            self.threads.append(thread)
        if self.probe_target:
            sock = self._connect()
            sock.sendall(f"GET /probe?target={self.probe_target} HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\n\r\n".encode())
        return self

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=2)
        for sock in self.sockets:
            sock.close()


def sample_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM samples").fetchone()[0]


def test_sigterm_exits_within_2s_whatever_the_http_clients_do(tmp_path, simulator):
    sims = {"a": simulator(), "b": simulator()}
    config = fleet_config({k: (s.address, s.port) for k, s in sims.items()},
                          "history: {path: history.db, max_age_days: 1}\n")
    d = Daemon(tmp_path / "daemon", config).start()
    try:
        wait_for("samples taken", lambda: (metric(d.metrics(), "ntp_monitor_responses_total",
                                                  server="b") or 0) >= 3, 15)
        silent_port = peers.free_udp_port()
        polled = metric(d.metrics(), "ntp_monitor_responses_total", server="a")
        clients = [StalledClients(d.metrics_port, f"127.0.0.1:{silent_port}").start(),
                   StalledClients(d.api_port).start()]
        try:
            # Still polling and serving while the clients stall (the pipelining ones fill
            # their socket buffers meanwhile): they hold nothing the daemon needs.
            wait_for("polls answered while the clients stall", lambda: metric(
                d.metrics(), "ntp_monitor_responses_total", server="a") >= polled + 2, 5)
            m = d.metrics()
            responses = metric(m, "ntp_monitor_responses_total", server="a")
            assert metric(m, "ntp_monitor_http_connections_open") >= IDLE_PER_PORT
            rc, took_s = d.terminate()
        finally:
            for c in clients:
                c.close()
        assert rc == 0, d.log()
        assert took_s < EXIT_WITHIN_S, f"exit took {took_s:.2f} s"
        assert d.log_events("daemon_stopped")
        # Every response taken before SIGTERM is a row: history was flushed on the way out.
        assert sample_rows(d.workdir / "history.db") >= 2 * responses - 2
    finally:
        d.stop()


def test_sigterm_exits_within_2s_with_stalled_tls_handshakes(tmp_path, simulator):
    ca = peers.make_test_ca(tmp_path, "ca")
    peers.make_server_cert(tmp_path, ca, "server", dns=("localhost",), ips=("127.0.0.1",))
    workdir = tmp_path / "daemon"
    workdir.mkdir()
    for name in ("server.pem", "server.key"):
        (workdir / name).write_bytes((tmp_path / name).read_bytes())
    (workdir / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n")
    s = simulator()
    d = Daemon(workdir, fleet_config({"a": (s.address, s.port)}),
               ["--web-config", str(workdir / "web.yml")])
    # Ready once the TLS port accepts TCP: a handshake is not needed to stall one.
    d.start(lambda d: socket.create_connection(("127.0.0.1", d.metrics_port), 1).close()
            or True)
    stalled = []
    try:
        for port in (d.metrics_port, d.api_port):
            for i in range(50):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if i % 2:
                    sock.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))  # ClientHello start
                stalled.append(sock)
        time.sleep(0.2)
        rc, took_s = d.terminate()
        assert rc == 0, d.log()
        assert took_s < EXIT_WITHIN_S, f"exit took {took_s:.2f} s"
    finally:
        for sock in stalled:
            sock.close()
        d.stop()
