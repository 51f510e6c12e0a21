"""Source port rotation (RFC 9109 §3) on the real daemon: it polls NTP responders on loopback
that record the source port of every request. With a pool of two sockets per family and a
2 s lifetime, the responders must see many ports over ~12 s, no port carrying requests for
longer than its lifetime, and every reply they sent (each held back 150 ms, so that replies
cross rotations and land on sockets already retired) counted as a response by the daemon,
with nothing unmatched or rejected."""

from __future__ import annotations

import heapq
import selectors
import socket
import struct
import threading
import time
from pathlib import Path

from helpers import Daemon, metric, wait_for

NTP_EPOCH_OFFSET = 2208988800
SERVERS = 12
POLL_S = 1.0           # each server's poll interval (the floor): timeout min(1 s, poll / 2) = 0.5 s
REPLY_DELAY_S = 0.15   # every reply held back this long (within the timeout)
LIFETIME_S = 2.0       # requests.source_port_lifetime_s
SOCKETS = 2            # requests.source_ports
RUN_S = 12.0


def ntp_now() -> int:
    t = time.time() + NTP_EPOCH_OFFSET
    return (int(t) << 32) | int((t % 1) * (1 << 32))


class Responders:
    """SERVERS minimal NTP servers (one UDP socket each on 127.0.0.1, one thread): each request
    is recorded as (monotonic time, source port) and answered REPLY_DELAY_S later as a
    synchronized stratum-2 server (origin = the request's transmit field)."""

    def __init__(self, count: int):
        self.sockets = []
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.sockets.append(s)
        self.requests: list[tuple[float, int]] = []
        self.replies_sent = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.sockets]

    def start(self) -> "Responders":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for s in self.sockets:
            s.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self.sockets:
            sel.register(s, selectors.EVENT_READ)
        due: list[tuple[float, int, socket.socket, bytes, tuple]] = []
        seq = 0
        while not self.stopping.is_set():
            wait = 0.05 if not due else max(0.0, min(0.05, due[0][0] - time.monotonic()))
            for key, _ in sel.select(wait):
                s = key.fileobj
                try:
                    data, peer = s.recvfrom(2048)
                except BlockingIOError:
                    continue
                if len(data) < 48:
                    continue
                now = time.monotonic()
                with self.lock:
                    self.requests.append((now, peer[1]))
                seq += 1
                heapq.heappush(due, (now + REPLY_DELAY_S, seq, s, data, peer))
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, _, s, data, peer = heapq.heappop(due)
                version = (data[0] >> 3) & 7
                xmt = data[40:48]
                t = ntp_now()
                reply = struct.pack("!BBbbII4sQ", (version << 3) | 4, 2, data[2], -20,
                                    1 << 8, 1 << 8, bytes([10, 0, 0, 1]),
                                    t - (10 << 32)) + xmt + struct.pack("!QQ", t, t)
                s.sendto(reply, peer)
                with self.lock:
                    self.replies_sent += 1
        sel.close()


def config(ports: list[int]) -> str:
    servers = "".join(f"  - {{name: s{k}, host: '127.0.0.1', port: {p}}}\n"
                      for k, p in enumerate(ports))
    return ("servers:\n" + servers + f"poll: {{min: {POLL_S}, max: {POLL_S}}}\n"
            f"requests: {{source_ports: {SOCKETS}, source_port_lifetime_s: {LIFETIME_S}}}\n")


def total(m: dict, name: str) -> float:
    return sum(metric(m, name, server=f"s{k}") or 0 for k in range(SERVERS))


def test_source_ports_rotate_and_no_reply_is_lost(tmp_path: Path):
    responders = Responders(SERVERS).start()
    daemon = Daemon(tmp_path, config(responders.ports))
    try:
        daemon.start()
        started = time.monotonic()
        wait_for("responses from every server",
                 lambda: all((metric(daemon.metrics(), "ntp_monitor_responses_total",
                                     server=f"s{k}") or 0) > 0 for k in range(SERVERS)), 10)
        time.sleep(max(0.0, RUN_S - (time.monotonic() - started)))
        # Stop answering, then let every request out end (timeout 0.5 s, linger, grace) before
        # counting: each reply sent must have been accepted by then.
        responders.stopping.set()
        responders.thread.join(5)
        time.sleep(3.0)
        m = daemon.metrics()
    finally:
        daemon.stop()
        responders.stop()

    with responders.lock:
        requests = list(responders.requests)
        replies = responders.replies_sent
    assert len(requests) > SERVERS * RUN_S / POLL_S / 2, len(requests)
    spans: dict[int, list[float]] = {}
    for at, port in requests:
        first_last = spans.setdefault(port, [at, at])
        first_last[1] = at
    print(f"requests {len(requests)}, replies {replies}, ports {len(spans)}, longest span "
          f"{max(b - a for a, b in spans.values()):.3f} s")
    # Several ports: the pool (2 sockets) replaced every ~2 s over ~12 s.
    assert len(spans) >= 6, sorted(spans)
    # None carried requests beyond its lifetime (slack: the loop's lateness and the scheduling of
    # this thread).
    longest = max(last - first for first, last in spans.values())
    assert longest <= LIFETIME_S + 0.3, {p: round(b - a, 3) for p, (a, b) in spans.items()}

    rotated = metric(m, "ntp_monitor_probe_source_ports_rotated_total")
    assert rotated is not None and rotated >= len(spans) - SOCKETS, (rotated, len(spans))
    # Retired sockets closed after their grace: the two sending and at most a few retired.
    open_now = metric(m, "ntp_monitor_probe_source_ports_open")
    assert open_now is not None and open_now <= SOCKETS + 2, open_now
    # Every reply the responders sent reached an open socket of the daemon and was accepted,
    # including those that arrived after the socket their request left from was retired.
    assert total(m, "ntp_monitor_responses_total") == replies, (
        total(m, "ntp_monitor_responses_total"), replies)
    assert (metric(m, "ntp_monitor_unmatched_datagrams_total") or 0) == 0
    rejected = {dict(labels).get("reason"): v for (name, labels), v in m.items()
                if name == "ntp_monitor_rejected_total" and v > 0}
    assert not rejected, rejected
