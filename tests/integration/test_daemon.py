"""The monitoring daemon (`ntp-monitor` without a sub-command) against a fleet on loopback.

Real binary, real sockets: simulators (`ntp-monitor simulate`) and one chronyd on unique
loopback ports, the daemon polling them every second, its /metrics and JSON API read over
HTTP, signals sent to it, and a webhook receiver (python http.server) in the test. Every
wait is a poll with a deadline, so a slow machine makes a test slower, not flaky.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import peers
from helpers import POLL_S, fleet_config, metric, wait_for


class WebhookReceiver:
    """A python http.server that records every POSTed JSON body (or never answers)."""

    def __init__(self, hang: bool = False):
        self.bodies: list[dict] = []
        self.hang = hang
        self._release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.hang:
                    receiver._release.wait(60)
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def alerts(self, status: str, alertname: str) -> list[dict]:
        return [a for b in list(self.bodies) for a in b["alerts"]
                if a["status"] == status and a["labels"]["alertname"] == alertname]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------------------
# Start-up


def test_bad_config_prints_every_error_and_exits_2(tmp_path, monitor):
    config = tmp_path / "bad.yaml"
    config.write_text("servers:\n  - host: a\n    port: 0\nalerts: {hold: 0}\n")
    result = peers.run_monitor(["--config", str(config), "--prometheus-port", "0",
                                "--web-dashboard", "0", "--listen-address", "127.0.0.1"],
                               timeout_s=10)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{config}:3:11: 'port' must be an integer from 1 to 65535, got '0'",
        f"{config}:4:16: 'hold' must be an integer from 1 to 100 (polls), got '0'",
    ]


def test_port_in_use_is_one_line_and_exit_2(tmp_path, monitor):
    config = tmp_path / "ok.yaml"
    config.write_text("servers:\n  - host: 127.0.0.1\n    port: 9\n")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = peers.run_monitor(["--config", str(config), "--prometheus-port", str(port),
                                    "--web-dashboard", str(peers.free_tcp_port()),
                                    "--listen-address", "127.0.0.1"], timeout_s=10)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ntp-monitor: cannot listen: ") and str(port) in lines[0]


def test_sub_commands_still_work(tmp_path, monitor):
    config = tmp_path / "ok.yaml"
    config.write_text("servers:\n  - pool: localhost\n    max_addresses: 2\n")
    result = peers.run_monitor(["check-config", str(config)], timeout_s=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{config}: ok (1 server)\n"


# ----------------------------------------------------------------------------------------
# The fleet


def test_fleet_metrics_falseticker_api_and_promtool(daemon, simulator, chrony):
    sims = {name: simulator() for name in ("a", "b", "c")}
    sims["liar"] = simulator("--offset", "0.5")
    targets = {name: (s.address, s.port) for name, s in sims.items()}
    targets["chrony"] = ("127.0.0.1", chrony.port)
    d = daemon(fleet_config(targets))

    def settled():
        m = d.metrics()
        up = {n: metric(m, "ntp_monitor_server_up", server=n) for n in targets}
        if not (all(v == 1 for v in up.values()) and
                metric(m, "ntp_monitor_server_info", server="liar", state="falseticker") == 1):
            return None
        # Its offset alert fires after alerts.hold (3) bad polls, which can be later.
        liar_alerts = {a["alert"] for a in d.servers()["liar"]["alerts"]}
        return m if "offset" in liar_alerts else None

    m = wait_for("every server up, the liar a falseticker with its offset alert", settled, 20)
    # The liar's offset is the simulator's +0.5 s (loopback: microseconds of error).
    assert metric(m, "ntp_monitor_server_offset_seconds", server="liar") == \
        pytest.approx(0.5, abs=0.01)
    for name in ("a", "b", "c", "chrony"):
        assert abs(metric(m, "ntp_monitor_server_offset_seconds", server=name)) < 0.01
        assert metric(m, "ntp_monitor_server_info", server=name, state="falseticker") is None
    assert metric(m, "ntp_monitor_server_stratum", server="chrony") == chrony.stratum
    assert metric(m, "ntp_monitor_servers") == 5
    assert sum(metric(m, "ntp_monitor_server_selected", server=n) for n in targets) == 1
    assert metric(m, "ntp_monitor_server_selected", server="liar") == 0
    assert metric(m, "ntp_monitor_truechimers") == 4
    assert metric(m, "ntp_monitor_requests_total", server="a") >= 3

    # The JSON API speaks the query command's field names plus the daemon's view.
    servers = d.servers()
    assert set(servers) == set(targets)
    liar = servers["liar"]
    assert liar["state"] == "falseticker" and liar["selected"] is False
    assert liar["offset"] == pytest.approx(0.5, abs=0.01)
    assert liar["consensus_offset"] == pytest.approx(0.5, abs=0.01)
    assert liar["ok"] is True and liar["port"] == sims["liar"].port
    assert liar["address"] == "127.0.0.1" and liar["stratum"] == 2
    assert "offset" in {a["alert"] for a in liar["alerts"]}  # +500 ms > 50 ms
    for key in ("delay", "jitter", "refid", "leap", "version", "root_delay", "root_dispersion",
                "root_distance", "poll", "error", "host", "authenticated"):
        assert key in liar
    selection = d.api("/api/v1/selection")
    assert selection["selected"] in {"a", "b", "c", "chrony"}
    assert len(selection["truechimers"]) == 4 and selection["majority"] is True
    assert "liar" in selection["falsetickers"]
    assert abs(selection["system_offset"]) < 0.01

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    check = subprocess.run([promtool, "check", "metrics"], input=d.metrics_text(),
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr

    rc, took_s = d.terminate()
    assert rc == 0
    assert took_s < 2.0


def test_failover_unreachable_alert_and_webhook(daemon, simulator, tmp_path):
    ports = [peers.free_udp_port() for _ in range(3)]
    sims = {name: simulator(listen=f"127.0.0.1:{port}")
            for name, port in zip(("a", "b", "c"), ports)}
    with WebhookReceiver() as hook:
        extra = f"alerts:\n  hold: 2\n  webhook: {{url: '{hook.url}', timeout_s: 2}}\n"
        targets = {name: ("127.0.0.1", s.port) for name, s in sims.items()}
        d = daemon(fleet_config(targets, extra, poll_max=2))
        first = wait_for("a server selected",
                         lambda: d.api("/api/v1/selection")["selected"], 20)
        sims[first].stop()
        killed_at = time.monotonic()
        # Within 4 polls (plus the reply timeout and one selection interval).
        deadline_s = 4 * POLL_S + 2.0
        other = wait_for("another server selected",
                         lambda: (lambda s: s if s not in (None, first) else None)(
                             d.api("/api/v1/selection")["selected"]),
                         deadline_s, interval_s=0.1)
        assert time.monotonic() - killed_at <= deadline_s
        assert other in set(sims) - {first}

        wait_for("unreachable alert active", lambda: metric(
            d.metrics(), "ntp_monitor_alert_active", server=first,
            alert="NtpServerUnreachable") == 1, 15)
        assert d.servers()[first]["state"] == "unreachable"
        fired = wait_for("webhook got the firing alert",
                         lambda: hook.alerts("firing", "NtpServerUnreachable"), 10)
        body = next(b for b in hook.bodies if b["alerts"][0] is fired[0])
        assert body["version"] == "4" and body["status"] == "firing"
        assert fired[0]["labels"] == {"alertname": "NtpServerUnreachable", "server": first,
                                      "address": "127.0.0.1", "severity": "warning"}
        assert fired[0]["annotations"]["summary"]
        assert fired[0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", fired[0]["startsAt"])

        # Back on the same port: the alert clears and a resolved notification follows.
        restarted = simulator(listen=f"127.0.0.1:{sims[first].port}")
        assert restarted.port == sims[first].port
        wait_for("unreachable alert cleared", lambda: metric(
            d.metrics(), "ntp_monitor_alert_active", server=first,
            alert="NtpServerUnreachable") in (None, 0), 20)
        resolved = wait_for("webhook got the resolved alert",
                            lambda: hook.alerts("resolved", "NtpServerUnreachable"), 10)
        assert resolved[0]["labels"]["server"] == first
        assert resolved[0]["startsAt"] == fired[0]["startsAt"]
        assert resolved[0]["endsAt"] > resolved[0]["startsAt"]
        # The log names the alert as the webhook and the metric label do.
        assert any("alert=NtpServerUnreachable" in line for line in d.log_events("alert_firing"))
        assert d.log_events("alert_resolved")
        # Both notifications were accepted, and /metrics says so (a snapshot may lag a poll).
        wait_for("webhook counters exported", lambda: (metric(
            d.metrics(), "ntp_monitor_webhook_sent_total") or 0) >= 2, 5)
        assert metric(d.metrics(), "ntp_monitor_webhook_failed_total") == 0
        rc, took_s = d.terminate()
        assert rc == 0 and took_s < 2.0


def test_kiss_of_death_rate_slows_and_deny_stops(daemon, simulator):
    sims = {"a": simulator(), "b": simulator(), "rate": simulator("--kiss", "RATE"),
            "deny": simulator("--kiss", "DENY")}
    targets = {name: (s.address, s.port) for name, s in sims.items()}
    d = daemon(fleet_config(targets, poll_max=16))

    def deny_stopped():
        m = d.metrics()
        return m if metric(m, "ntp_monitor_kod_total", server="deny", code="DENY") else None

    m = wait_for("DENY counted", deny_stopped, 15)
    deny_requests = metric(m, "ntp_monitor_requests_total", server="deny")
    wait_for("RATE poll interval above the 1 s minimum", lambda: (metric(
        d.metrics(), "ntp_monitor_server_poll_interval_seconds", server="rate") or 0) > POLL_S,
        15)
    time.sleep(4 * POLL_S)
    m = d.metrics()
    assert metric(m, "ntp_monitor_requests_total", server="deny") == deny_requests
    assert metric(m, "ntp_monitor_server_poll_interval_seconds", server="rate") > POLL_S
    assert metric(m, "ntp_monitor_kod_total", server="rate", code="RATE") >= 1
    assert d.servers()["deny"]["state"] == "kod"
    # The others go on at the 1 s poll.
    a_before = metric(m, "ntp_monitor_requests_total", server="a")
    time.sleep(3 * POLL_S)
    assert metric(d.metrics(), "ntp_monitor_requests_total", server="a") >= a_before + 2


# ----------------------------------------------------------------------------------------
# Signals


def test_sighup_reload_keeps_counters_and_adds_servers(daemon, simulator):
    sims = {name: simulator() for name in ("a", "b", "c")}
    targets = {name: (s.address, s.port) for name, s in sims.items()}
    d = daemon(fleet_config({k: targets[k] for k in ("a", "b")}))
    before = wait_for("a polled a few times", lambda: (lambda v: v if v and v >= 4 else None)(
        metric(d.metrics(), "ntp_monitor_requests_total", server="a")), 15)

    d.config_path.write_text(fleet_config(targets, "alert_thresholds: {offset_ms: 20}\n"))
    d.signal(signal.SIGHUP)
    m = wait_for("c added", lambda: (lambda m: m if metric(
        m, "ntp_monitor_requests_total", server="c") else None)(d.metrics()), 10)
    assert metric(m, "ntp_monitor_config_reloads_total") == 1
    # Counters of the unchanged server continue from where they were, not from zero.
    assert metric(m, "ntp_monitor_requests_total", server="a") >= before
    time.sleep(2 * POLL_S)
    assert metric(d.metrics(), "ntp_monitor_requests_total", server="a") > before
    assert len(d.log_events("config_reloaded")) == 1

    # A broken file: logged on one line, counted, the old configuration keeps running.
    d.config_path.write_text("servers:\n  - host: a\n    port: 0\n")
    d.signal(signal.SIGHUP)
    wait_for("reload failure counted", lambda: metric(
        d.metrics(), "ntp_monitor_config_reload_failures_total") == 1, 10)
    failures = d.log_events("config_reload_failed")
    assert len(failures) == 1
    assert "'port' must be an integer from 1 to 65535" in failures[0]
    assert "keeping the running configuration" in failures[0]
    c_before = metric(d.metrics(), "ntp_monitor_requests_total", server="c")
    time.sleep(2 * POLL_S)
    m = d.metrics()
    assert metric(m, "ntp_monitor_requests_total", server="c") > c_before
    assert metric(m, "ntp_monitor_servers") == 3
    assert d.proc.poll() is None

    rc, took_s = d.terminate()
    assert rc == 0 and took_s < 2.0
    assert d.log_events("daemon_stopped")


def test_sigint_also_stops(daemon, simulator):
    s = simulator()
    d = daemon(fleet_config({"a": (s.address, s.port)}))
    start = time.monotonic()
    d.signal(signal.SIGINT)
    assert d.proc.wait(timeout=10) == 0
    assert time.monotonic() - start < 2.0


# ----------------------------------------------------------------------------------------
# Webhook robustness, pools, logging


def test_hanging_webhook_never_stops_polling(daemon, simulator):
    s = simulator("--offset", "0.5")
    ok = simulator()
    with WebhookReceiver(hang=True) as hook:
        extra = (f"alerts:\n  hold: 1\n  webhook: {{url: '{hook.url}', timeout_s: 30, "
                 "queue_size: 2}\n")
        d = daemon(fleet_config({"liar": (s.address, s.port), "ok": (ok.address, ok.port)},
                                extra))
        wait_for("offset alert fired", lambda: metric(
            d.metrics(), "ntp_monitor_alert_active", server="liar",
            alert="NtpServerOffsetHigh") == 1, 15)
        before = metric(d.metrics(), "ntp_monitor_requests_total", server="ok")
        time.sleep(3 * POLL_S)
        assert metric(d.metrics(), "ntp_monitor_requests_total", server="ok") >= before + 2
        # The sender is stuck in a 30 s request; SIGTERM still ends the daemon at once.
        rc, took_s = d.terminate()
        assert rc == 0 and took_s < 2.0


def test_pool_monitors_at_most_max_addresses(daemon):
    # localhost has 127.0.0.1 and ::1 on Debian; nothing listens on port 9 (discard): the
    # sources exist, unanswered, which is all this test needs.
    d = daemon("servers:\n  - pool: localhost\n    port: 9\n    max_addresses: 1\n"
               "poll: {min: 1, max: 1}\n")
    rows = wait_for("the pool resolved", lambda: [
        s for s in d.api("/api/v1/servers")["servers"] if s["address"]], 10)
    assert len(rows) == 1
    assert rows[0]["name"] == "localhost" and rows[0]["address"] in ("127.0.0.1", "::1")
    assert rows[0]["port"] == 9


def test_json_log_format(daemon, simulator):
    s = simulator()
    d = daemon(fleet_config({"a": (s.address, s.port)}), "--log-format", "json",
               "--log-level", "debug")
    wait_for("a polled", lambda: metric(d.metrics(), "ntp_monitor_responses_total",
                                        server="a"), 10)
    d.terminate()
    lines = [json.loads(line) for line in d.log().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "daemon_started" in events and "source_added" in events
    assert "daemon_stopped" in events
    for line in lines:
        assert list(line)[:3] == ["ts", "level", "event"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
        assert line["level"] in ("debug", "info", "warning", "error")


# ----------------------------------------------------------------------------------------
# Overload: more polls than the window of requests in flight lets out


def test_window_full_polls_wait_their_turn_and_are_counted(daemon, simulator):
    # Twelve sources polled every second through a window of 2 requests to a server that
    # answers after 0.3 s: at most ~6.7 requests/s can leave, half of the 12 asked for.
    s = simulator("--return-delay", "0.3")
    targets = {f"s{i:02d}": (s.address, s.port) for i in range(12)}
    d = daemon(fleet_config(targets, "requests: {max_in_flight: 2}\n"))
    wait_for("requests replaced before they left", lambda: (metric(
        d.metrics(), "ntp_monitor_requests_unsent_total") or 0) > 0, 15)
    for _ in range(5):
        m = d.metrics()
        assert metric(m, "ntp_monitor_requests_in_flight") <= 2
        time.sleep(0.3)
    # Every source keeps its turn: each one gets answers, none starves.
    wait_for("every source answered", lambda: all(
        (metric(d.metrics(), "ntp_monitor_responses_total", server=name) or 0) > 0
        for name in targets), 20)
    m = d.metrics()
    # Nothing was lost or mismatched on the way: the waiting happens before sending.
    assert sum(v for (n, _), v in m.items() if n == "ntp_monitor_rejected_total") == 0
    assert metric(m, "ntp_monitor_unmatched_datagrams_total") == 0
    status = d.api("/api/v1/status")["requests_window"]
    assert status["in_flight"] <= 2 and status["unsent"] > 0
    wait_for("the overload logged", lambda: d.log_events("requests_unsent"), 10)

    # A larger window on SIGHUP: nothing waits any more, and no request is replaced.
    d.config_path.write_text(fleet_config(targets, "requests: {max_in_flight: 64}\n"))
    d.signal(signal.SIGHUP)
    wait_for("reload applied", lambda: metric(
        d.metrics(), "ntp_monitor_config_reloads_total") == 1, 10)
    time.sleep(2 * POLL_S)  # requests that waited before the reload have left or been replaced
    before = metric(d.metrics(), "ntp_monitor_requests_unsent_total")
    time.sleep(3 * POLL_S)
    m = d.metrics()
    assert metric(m, "ntp_monitor_requests_unsent_total") == before
    assert metric(m, "ntp_monitor_requests_waiting") == 0
