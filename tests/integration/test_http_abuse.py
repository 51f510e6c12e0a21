"""Issue #14: idle connections, junk and a slowloris client must not starve /metrics.

The daemon polls three simulators every second with /metrics and the dashboard on loopback
ports. The test then holds 100 idle TCP connections open to each port, sends a few junk
requests, and runs a slowloris client on each port (a request head that never ends: one
byte every 0.2 s). While all that is held, a fresh GET of /metrics and of the dashboard API
must answer within 1 s (the issue: "the abuse case answers in well under 1 s"), several times,
and the daemon must keep polling (ntp_monitor_requests_total grows).

The cpp-httplib front (8 worker threads, one per connection) fails this: the idle
connections occupy every worker. The asynchronous server of issue #14 must pass it.

The connection limits (max_connections, max_connections_per_client in
export/http_server.hpp) have no daemon flag: they are the HTTP server's unit tests' business.
"""

from __future__ import annotations

import http.client
import resource
import socket
import threading
import time

import pytest

from helpers import fleet_config, http_get, metric, wait_for

IDLE_PER_PORT = 100
ANSWER_WITHIN_S = 1.0
SLOWLORIS_BYTE_EVERY_S = 0.2
# Head-of-request bytes that never complete a request; header lines keep it well formed.
_SLOW_HEAD = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 100_000

_JUNK = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello start
    b"BREW /pot HTCPCP/1.0\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",      # request line too long
    b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 2_000 + b"\r\n",   # headers too large
    b"\x00\xff\r\n\r\n" * 8,
    b"GET /metrics HTTP/9.9\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
]


class Slowloris(threading.Thread):
    """Sends _SLOW_HEAD one byte every SLOWLORIS_BYTE_EVERY_S until stopped or cut off."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.sent = 0
        self.cut_off_after_s = None  # set when the server closed the connection
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            for i in range(len(_SLOW_HEAD)):
                if self._stop_event.wait(SLOWLORIS_BYTE_EVERY_S if i else 0):
                    return
                try:
                    s.sendall(_SLOW_HEAD[i:i + 1])
                    self.sent += 1
                except OSError:
                    self.cut_off_after_s = time.monotonic() - start
                    return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def timed_get(port: int, path: str, timeout_s: float = 5.0) -> tuple[float, object]:
    """(seconds, status) of a GET on a fresh connection; status is the exception's repr when
    there was no answer within timeout_s."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return time.monotonic() - start, response.status
    except (OSError, http.client.HTTPException) as e:
        return time.monotonic() - start, repr(e)
    finally:
        conn.close()


def requests_sent(d, timeout_s: float = 5.0) -> float:
    """The daemon's requests to the three servers so far (its own counter, from /metrics)."""
    status, _, body = http_get(d.metrics_port, "/metrics", timeout_s=timeout_s)
    assert status == 200, status
    return sum(metric(body.decode(), "ntp_monitor_requests_total", server=name)
               for name in ("a", "b", "c"))


@pytest.fixture
def abused(simulator, daemon):
    """The daemon, then the abuse held open; yields (daemon, slowloris clients)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = daemon(fleet_config({"a": simulator(), "b": simulator(), "c": simulator()}))
    wait_for("every server polled", lambda: requests_sent(d) >= 3, 10)
    held: list[socket.socket] = []
    slow: list[Slowloris] = []
    try:
        for port in (d.metrics_port, d.api_port):
            for _ in range(IDLE_PER_PORT):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            for junk in _JUNK:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                held.append(s)
                try:
                    s.sendall(junk)
                except OSError:
                    pass  # the server may close it half-way: fine
            slow.append(Slowloris(port))
        for client in slow:
            client.start()
        time.sleep(1.0)  # the slowloris clients are mid-head, the idle connections settled
        yield d, slow
    finally:
        for client in slow:
            client.stop()
        for s in held:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_metrics_and_api_answer_within_1s_under_abuse(abused):
    d, slow = abused
    late = []
    for attempt in range(3):
        for port, path in ((d.metrics_port, "/metrics"), (d.api_port, "/api/v1/servers")):
            seconds, status = timed_get(port, path)
            if status != 200 or seconds >= ANSWER_WITHIN_S:
                late.append((attempt, path, round(seconds, 3), status))
        time.sleep(0.5)
    assert all(c.is_alive() or c.cut_off_after_s is not None for c in slow)
    assert not late, f"answers not within {ANSWER_WITHIN_S} s under abuse: {late}"


def test_daemon_keeps_polling_under_abuse(abused):
    d, _ = abused
    # A generous timeout: this test is about the poll loop, the one above about latency.
    first = requests_sent(d, timeout_s=30)
    time.sleep(3.5)  # three polls of each of the three servers
    second = requests_sent(d, timeout_s=30)
    assert second - first >= 6, (first, second)
    assert d.proc.poll() is None, d.log()
