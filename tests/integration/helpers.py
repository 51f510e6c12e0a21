"""What the integration tests share besides the peers: waiting with a deadline, HTTP on
loopback, reading /metrics, and the monitoring daemon on free loopback ports."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import peers

POLL_S = 1.0  # the poll interval fleet_config gives (poll.min)


def wait_for(what: str, predicate: Callable[[], object], deadline_s: float,
             interval_s: float = 0.2, ignore: tuple[type[BaseException], ...] = ()):
    """predicate()'s first true value, polled every interval_s; AssertionError after
    deadline_s. An exception of a type in `ignore` counts as a false value."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
            if last:
                return last
        except ignore as e:
            last = e
        time.sleep(interval_s)
    raise AssertionError(f"not within {deadline_s} s: {what} (last: {last!r})")


def http_get(port: int, path: str, headers: Optional[dict] = None,
             timeout_s: float = 5) -> tuple[int, dict, bytes]:
    """GET http://127.0.0.1:PORT/PATH: (status, headers with lower-case names, body); 4xx/5xx
    are returned, not raised."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# ----------------------------------------------------------------------------------------
# Prometheus text exposition

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict, float]]:
    """(name, labels, value) of every sample line, in order."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"unparsable sample line: {line!r}"
        out.append((match.group(1), dict(_LABEL.findall(match.group(2) or "")),
                    float(match.group(3))))
    return out


def parse_metrics(text: str) -> dict:
    """{(name, frozenset(labels.items())): value} of a Prometheus text exposition."""
    return {(name, frozenset(labels.items())): value for name, labels, value in samples(text)}


def metric(metrics: Union[dict, str], name: str, **labels) -> Optional[float]:
    """The value of the one sample of `name` whose labels include `labels`; `metrics` is
    what parse_metrics returns, or the exposition text itself."""
    if isinstance(metrics, str):
        found = [v for n, ls, v in samples(metrics)
                 if n == name and all(ls.get(k) == want for k, want in labels.items())]
    else:
        want = set(labels.items())
        found = [v for (n, ls), v in metrics.items() if n == name and want <= set(ls)]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


# ----------------------------------------------------------------------------------------
# The monitoring daemon


def server_entries(**targets) -> str:
    """YAML server entries, one per name=(host, port) or name=Simulator."""
    out = ""
    for name, target in targets.items():
        host, port = (target.address, target.port) if isinstance(target, peers.Simulator) \
            else target
        out += f"  - {{name: {name}, host: '{host}', port: {port}}}\n"
    return out


def fleet_config(targets: dict, extra: str = "", poll_max: float = 1) -> str:
    """A configuration polling `targets` (see server_entries) every POLL_S seconds."""
    return ("servers:\n" + server_entries(**targets) +
            f"poll: {{min: {POLL_S:g}, max: {poll_max:g}}}\n" + extra)


class Daemon(peers.Peer):
    """`ntp-monitor --config FILE` with /metrics (metrics_port) and the dashboard and API
    (api_port) on free loopback ports, its log in workdir/daemon.log."""

    name = "daemon"

    def __init__(self, workdir: Path, config_text: str, extra_args: Sequence[str] = (),
                 listen: str = "127.0.0.1", binary: Optional[Path] = None):
        super().__init__(workdir)
        self.binary = Path(binary) if binary else peers.monitor_binary()
        self.config_path = self.workdir / "servers.yaml"
        self.config_path.write_text(config_text)
        self.metrics_port = peers.free_tcp_port()
        self.api_port = peers.free_tcp_port()
        self.listen = listen
        self.extra_args = list(extra_args)

    def argv(self) -> list[str]:
        return [str(self.binary), "--config", str(self.config_path),
                "--prometheus-port", str(self.metrics_port),
                "--web-dashboard", str(self.api_port), "--listen-address", self.listen,
                ] + self.extra_args

    def start(self, ready: Optional[Callable[["Daemon"], object]] = None) -> "Daemon":
        """Starts the daemon and waits until ready(self) (default: self.ready()) is true;
        fails with the log if it exits or is not ready within 10 s."""
        self.proc = peers.spawn(self.argv(), self.log_path)
        check = ready or type(self).ready
        try:
            wait_for("daemon ready", lambda: self.proc.poll() is not None or check(self),
                     10.0, interval_s=0.1, ignore=(OSError, http.client.HTTPException))
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log()}") from None
        assert self.proc.poll() is None, f"daemon exited:\n{self.log()}"
        return self

    def ready(self) -> bool:
        """/readyz on the metrics port and the server list on the API port answer 200."""
        return (http_get(self.metrics_port, "/readyz", timeout_s=2)[0] == 200
                and http_get(self.api_port, "/api/v1/servers?limit=1", timeout_s=2)[0] == 200)

    def get(self, port: int, path: str) -> bytes:
        """The body of a 200 answer."""
        status, _, body = http_get(port, path)
        assert status == 200, (port, path, status, body[:300])
        return body

    def metrics_text(self) -> str:
        return self.get(self.metrics_port, "/metrics").decode()

    def metrics(self) -> dict:
        return parse_metrics(self.metrics_text())

    def api(self, path: str):
        return json.loads(self.get(self.api_port, path))

    def server_list(self) -> list:
        """Every entry of /api/v1/servers, following next_cursor across its pages."""
        entries: list = []
        cursor = None
        while True:
            body = self.api("/api/v1/servers?limit=10000"
                            + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""))
            entries += body["servers"]
            cursor = body["next_cursor"]
            if cursor is None:
                return entries

    def servers(self) -> dict:
        return {s["name"]: s for s in self.server_list()}

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds until exit)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            peers.stop_process(self.proc)
            raise AssertionError(f"daemon ignored SIGTERM:\n{self.log()}")
        return rc, time.monotonic() - start

    def log(self) -> str:
        """The whole log (Peer.log gives only its end)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self, event: str) -> list[str]:
        return [line for line in self.log().splitlines() if f"event={event}" in line]

