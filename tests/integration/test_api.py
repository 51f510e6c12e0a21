"""The daemon's JSON API (docs/API.md) and its history store, against the real binary.

Simulators on loopback (three honest, one falseticker at +0.5 s, one answering every request
with a RATE kiss), the daemon polling them every second with its history in a temporary SQLite
file. The tests read every endpoint and check each documented field, then restart the daemon
(samples recorded before the restart come back after it), start it on a file of junk bytes
(it keeps monitoring, history answers 503, the metric says 0), and check the 400 / 404 / 503
answers and the strict `history:` configuration keys.
"""

from __future__ import annotations

import calendar
import json
import re
import time
import urllib.parse
from pathlib import Path
from typing import Optional

import pytest

import peers
from helpers import POLL_S, Daemon, fleet_config, http_get, metric, wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class ApiDaemon(Daemon):
    """helpers.Daemon on a fleet of simulators with its history in a file (or in memory);
    restartable on the same files, on new ports each start."""

    def __init__(self, workdir: Path, servers: dict[str, peers.Simulator],
                 history: Optional[str] = "history.db"):
        text = fleet_config(servers)
        if history is not None:
            # Relative: taken from the configuration file's directory.
            text += f"history: {{path: {history}, max_age_days: 1}}\n"
        super().__init__(workdir, text)
        self.history_path = self.workdir / history if history else None

    def start(self) -> "ApiDaemon":
        self.metrics_port = peers.free_tcp_port()
        self.api_port = peers.free_tcp_port()
        return super().start()

    def json(self, path: str) -> tuple[int, dict]:
        status, headers, body = http_get(self.api_port, path)
        assert headers["content-type"] == "application/json; charset=utf-8", (path, headers)
        return status, json.loads(body)

    def api(self, path: str) -> dict:
        status, body = self.json(path)
        assert status == 200, (path, body)
        return body

    def metric(self, name: str) -> Optional[float]:
        return metric(self.metrics_text(), name)

    def history(self, name: str, **params) -> tuple[int, dict]:
        query = urllib.parse.urlencode(params)
        return self.json(f"/api/v1/servers/{urllib.parse.quote(name)}/history"
                         + (f"?{query}" if query else ""))


@pytest.fixture
def daemons(tmp_path, monitor):
    started: list[ApiDaemon] = []

    def make(servers: dict, **kwargs) -> ApiDaemon:
        d = ApiDaemon(tmp_path / f"daemon{len(started)}", servers, **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def fleet(simulator) -> dict:
    sims = {name: simulator() for name in ("a", "b", "c")}
    sims["liar"] = simulator("--offset", "0.5")
    sims["kod"] = simulator("--kiss", "RATE")
    return sims


def settled(d: ApiDaemon) -> dict:
    def check():
        s = d.servers()
        return s if (s["liar"]["state"] == "falseticker" and s["kod"]["state"] == "kod"
                     and any(s[n]["state"] == "selected" for n in "abc")
                     and any(a["alert"] == "kod" for a in s["kod"]["alerts"])) else None
    return wait_for("liar a falseticker, kod in kod state, one of a/b/c selected", check, 25)


SERVER_KEYS = {
    "name", "host", "address", "port", "ok", "error", "offset", "delay", "jitter", "stratum",
    "refid", "leap", "version", "root_delay", "root_dispersion", "root_distance", "poll",
    "reach", "state", "selected", "consensus_offset", "authenticated", "last_sample_at",
    "last_sample_unix", "requests", "responses", "alerts",
}


def test_every_endpoint_per_the_contract(daemons, simulator):
    sims = fleet(simulator)
    d = daemons(sims).start()
    servers = settled(d)
    time.sleep(2 * POLL_S)  # a few more samples into the store

    body = d.api("/api/v1/servers")
    assert RFC3339.match(body["generated_at"])
    assert [s["name"] for s in body["servers"]] == list(sims)  # configuration order
    for s in body["servers"]:
        assert SERVER_KEYS <= set(s), SERVER_KEYS - set(s)
        assert s["host"] == "127.0.0.1" and s["address"] == "127.0.0.1"
        assert s["port"] == sims[s["name"]].port
        assert s["authenticated"] == "none"
        assert s["state"] in ("selected", "candidate", "falseticker", "unreachable",
                              "unsynchronized", "kod", "pending")
        assert s["selected"] == (s["state"] == "selected")
        assert s["requests"] >= s["responses"]
    servers = {s["name"]: s for s in body["servers"]}
    for name in ("a", "b", "c"):
        s = servers[name]
        assert s["ok"] is True and s["error"] is None
        assert abs(s["offset"]) < 0.005 and 0 < s["delay"] < 0.01 and s["jitter"] >= 0
        assert s["stratum"] == 2 and s["leap"] == 0 and s["version"] == 4
        assert s["refid"] == "127.127.1.1" and s["reach"] == 255 and s["poll"] == POLL_S
        assert s["root_delay"] == 0 and s["root_dispersion"] == 0 and s["root_distance"] > 0
        assert RFC3339.match(s["last_sample_at"])
        generated = calendar.timegm(time.strptime(body["generated_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(s["last_sample_unix"] - generated) < 5
        assert s["last_sample_at"] == time.strftime(
            "%Y-%m-%dT%H:%M:%S", time.gmtime(int(s["last_sample_unix"]))) + s["last_sample_at"][19:]
        assert s["alerts"] == []
    liar = servers["liar"]
    assert liar["state"] == "falseticker" and liar["selected"] is False
    assert liar["offset"] == pytest.approx(0.5, abs=0.01)
    assert liar["consensus_offset"] == pytest.approx(0.5, abs=0.01)
    offset_alert = next(a for a in liar["alerts"] if a["alert"] == "offset")
    assert RFC3339.match(offset_alert["since"]) and "500" in offset_alert["message"]
    kod = servers["kod"]
    assert kod["state"] == "kod" and kod["offset"] is None and kod["stratum"] is None
    assert kod["kod"]["RATE"] >= 1 and kod["responses"] == 0

    sel = d.api("/api/v1/selection")
    assert RFC3339.match(sel["generated_at"])
    assert sel["selected"] in ("a", "b", "c") and sel["selected_address"] == "127.0.0.1"
    assert servers[sel["selected"]]["state"] == "selected"
    assert abs(sel["system_offset"]) < 0.005 and sel["system_jitter"] >= 0
    assert sorted(sel["truechimers"]) == ["a", "b", "c"]
    assert sel["falsetickers"] == ["liar"]
    assert sel["majority"] is True
    assert sel["selection_changes"] >= 1
    assert sel["recent_changes"] and sel["recent_changes"][0]["to"] == sel["selected"]
    for change in sel["recent_changes"]:
        assert {"at", "from", "to", "reason"} <= set(change) and RFC3339.match(change["at"])
    times = [c["at"] for c in sel["recent_changes"]]
    assert times == sorted(times, reverse=True)  # newest first
    failover = sel["last_failover"]
    assert failover is None or (failover["from"] and {"at", "to", "reason"} <= set(failover))

    alerts = d.api("/api/v1/alerts")
    active = {(a["server"], a["alert"]) for a in alerts["active"]}
    assert ("liar", "offset") in active and ("kod", "kod") in active
    assert not any(server in ("a", "b", "c") for server, _ in active)
    for a in alerts["active"]:
        assert {"server", "address", "alert", "since", "message"} <= set(a)
        assert a["address"] == "127.0.0.1" and RFC3339.match(a["since"])
    recent = alerts["recent"]
    assert {(r["server"], r["alert"], r["status"]) for r in recent} >= {
        ("liar", "offset", "firing"), ("kod", "kod", "firing")}
    for r in recent:
        assert {"at", "server", "address", "alert", "status", "message"} <= set(r)
    assert [r["at"] for r in recent] == sorted((r["at"] for r in recent), reverse=True)

    status, hist = d.history("a")
    assert status == 200, hist
    assert hist["server"] == "a" and hist["source"] == "database"
    assert RFC3339.match(hist["since"]) and RFC3339.match(hist["until"])
    assert hist["step"] == 4  # one hour by default, at most 1,000 points
    assert hist["points"], hist
    now = time.time()
    for p in hist["points"]:
        assert set(p) == {"t", "offset", "offset_min", "offset_max", "delay", "jitter",
                          "stratum", "count"}
        assert p["t"] % 4 == 0 and now - 120 < p["t"] <= now
        assert p["offset_min"] <= p["offset"] <= p["offset_max"]
        assert p["stratum"] == 2 and 1 <= p["count"] <= 5 and p["delay"] > 0
    status, liar_hist = d.history("liar", step=1)
    assert status == 200 and liar_hist["step"] == 1
    assert all(p["offset"] == pytest.approx(0.5, abs=0.01) for p in liar_hist["points"])
    assert all(p["count"] == 1 for p in liar_hist["points"])  # 1 s polls, 1 s buckets
    # The KoD server never gave a sample: known, but no points.
    status, kod_hist = d.history("kod")
    assert status == 200 and kod_hist["points"] == []

    assert d.metric("ntp_monitor_history_enabled") == 1
    assert d.metric("ntp_monitor_history_writable") == 1
    for reason in ("full", "readonly", "io", "busy", "missing", "other"):
        assert metric(d.metrics_text(), "ntp_monitor_history_write_errors_total",
                      reason=reason) == 0
    assert d.metric("ntp_monitor_history_dropped_total") == 0
    assert http_get(d.api_port, "/healthz")[0] == 200
    assert http_get(d.api_port, "/readyz")[0] == 200


def test_bad_parameters_unknown_server_and_paths(daemons, simulator):
    d = daemons({"a": simulator()}).start()
    wait_for("a sampled", lambda: d.servers()["a"]["last_sample_at"], 10)
    for params, reason in [
        ({"since": "yesterday"}, "'since' must be an RFC 3339 time or Unix seconds"),
        ({"until": "2026-13-01T00:00:00Z"}, "'until' must be an RFC 3339 time or Unix seconds"),
        ({"since": "1700000100", "until": "1700000000"}, "'since' must be before 'until'"),
        ({"step": "0"}, "'step' must be a whole number of seconds, at least 1"),
        ({"step": "1.5"}, "'step' must be a whole number of seconds, at least 1"),
        ({"since": "0", "until": "1700000000", "step": "1"}, "use a larger step"),
    ]:
        status, body = d.history("a", **params)
        assert status == 400, (params, body)
        assert reason in body["error"], (params, body)
    status, body = d.history("nobody")
    assert status == 404 and "nobody" in body["error"]
    for path in ("/api/v1/nothing", "/api/v1/servers/a/other", "/api/v2/servers"):
        status, body = d.json(path)
        assert status == 404 and "error" in body, path
    # RFC 3339 with an offset and Unix seconds name the same range.
    now = int(time.time())
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 60))
    a = d.history("a", since=iso, until=str(now), step="60")
    b = d.history("a", since=str(now - 60), until=str(now), step="60")
    assert a[0] == b[0] == 200 and a[1]["since"] == b[1]["since"]


def test_history_survives_a_restart(daemons, simulator):
    sims = {"a": simulator(), "liar": simulator("--offset", "0.5"), "b": simulator()}
    d = daemons(sims)
    d.start()
    wait_for("liar's offset alert", lambda: any(
        a["alert"] == "offset" for a in d.servers()["liar"]["alerts"]), 15)
    time.sleep(3 * POLL_S)
    first_run_end = time.time()
    d.stop()
    assert "history database" in d.log() and "closed" in d.log()
    stopped_at = int(first_run_end) + 1

    d.start()
    # Everything up to the first run's end, in 1 s buckets: the first run's samples only.
    status, hist = d.history("a", since=str(stopped_at - 600), until=str(stopped_at), step="1")
    assert status == 200 and hist["source"] == "database", hist
    assert len(hist["points"]) >= 5, hist
    assert sum(p["count"] for p in hist["points"]) >= 5
    assert all(p["t"] < stopped_at for p in hist["points"])
    status, liar = d.history("liar", since=str(stopped_at - 600), until=str(stopped_at))
    assert status == 200 and liar["points"]
    assert all(p["offset"] == pytest.approx(0.5, abs=0.01) for p in liar["points"])
    # The first run's alert transitions are listed after the restart too.
    recent = d.api("/api/v1/alerts")["recent"]
    before = [r for r in recent if r["at_unix"] < first_run_end]
    assert ("liar", "offset", "firing") in {(r["server"], r["alert"], r["status"])
                                            for r in before}, recent
    # And new samples keep arriving in the same file.
    wait_for("samples after the restart", lambda: any(
        p["t"] >= stopped_at for p in d.history("a", step="1")[1]["points"]), 10)


def test_corrupt_history_file_turns_history_off_not_monitoring(daemons, simulator):
    d = daemons({"a": simulator(), "b": simulator()}, history="junk.db")
    d.history_path.write_bytes(b"this is not an SQLite database \x00\xff" * 200)
    junk = d.history_path.read_bytes()
    d.start()
    wait_for("a and b selected or candidate", lambda: all(
        s["state"] in ("selected", "candidate") for s in d.servers().values()), 15)
    status, body = d.history("a")
    assert status == 503, body
    assert "not a usable SQLite database" in body["error"] and "junk.db" in body["error"]
    assert d.metric("ntp_monitor_history_enabled") == 0
    wait_for("records counted as dropped",
             lambda: (d.metric("ntp_monitor_history_dropped_total") or 0) > 0, 10)
    history_alerts = [a for a in d.api("/api/v1/alerts")["active"] if a["alert"] == "history"]
    assert len(history_alerts) == 1 and "not a usable SQLite database" in \
        history_alerts[0]["message"]
    # One clear line in the log, and the file is left as it was.
    lines = [line for line in d.log().splitlines() if "not a usable SQLite database" in line]
    assert len(lines) == 1 and "level=error" in lines[0], d.log()
    assert d.history_path.read_bytes() == junk
    assert d.servers()["a"]["reach"] > 0


def test_memory_only_history_without_a_path(daemons, simulator):
    d = daemons({"a": simulator()}, history=None).start()
    wait_for("three samples in memory", lambda: len(
        d.history("a", step="1")[1]["points"]) >= 3, 10)
    status, hist = d.history("a", step="1")
    assert status == 200 and hist["source"] == "memory"
    assert all(p["count"] == 1 and p["stratum"] == 2 for p in hist["points"])
    assert d.metric("ntp_monitor_history_enabled") == 0
    assert not any(a["alert"] == "history" for a in d.api("/api/v1/alerts")["active"])
    assert "history_memory_only" in d.log()


def test_api_bodies_are_cached_per_snapshot(daemons, simulator):
    """Requests between two publishes get byte-identical bodies (rendered once)."""
    d = daemons({"a": simulator()}).start()
    wait_for("a sampled", lambda: d.servers()["a"]["last_sample_at"], 10)
    same = 0
    for _ in range(20):
        first = http_get(d.api_port, "/api/v1/servers")[2]
        second = http_get(d.api_port, "/api/v1/servers")[2]
        same += first == second
    assert same >= 10  # with a 1 s poll most pairs fall between two publishes


def test_assets_have_etags_and_security_headers(daemons, simulator):
    d = daemons({"a": simulator()}).start()
    for path in ("/", "/index.html", "/assets/app.js", "/assets/style.css"):
        status, headers, body = http_get(d.api_port, path)
        assert status == 200 and body, path
        assert headers["cache-control"] == "no-cache"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"].startswith("default-src 'self'")
        etag = headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        status, headers304, body304 = http_get(d.api_port, path, {"If-None-Match": etag})
        assert status == 304 and body304 == b"" and headers304["etag"] == etag, path
        assert http_get(d.api_port, path, {"If-None-Match": f'"x", W/{etag}'})[0] == 304
        assert http_get(d.api_port, path, {"If-None-Match": '"other"'})[0] == 200
    assert http_get(d.api_port, "/")[2] == http_get(d.api_port, "/index.html")[2]
    assert http_get(d.api_port, "/assets/missing.js")[0] == 404


def test_history_configuration_is_strict(tmp_path, monitor):
    config = tmp_path / "bad.yaml"
    config.write_text("servers:\n  - host: 127.0.0.1\n"
                      "history:\n  path: ''\n  max_rows: -1\n  max_age_days: 1 day\n"
                      "  retention: 5\n")
    out = peers.run_monitor(["check-config", str(config)], timeout_s=10)
    assert out.returncode != 0
    errors = out.stderr + out.stdout
    assert f"{config}:4:9: 'path' is empty" in errors, errors
    assert f"{config}:5:13: 'max_rows' must be an integer from 0 (no limit)" in errors, errors
    assert f"{config}:6:17: 'max_age_days' must be a number of days" in errors, errors
    assert f"{config}:7:3: unknown key 'retention' in history" in errors, errors
    good = tmp_path / "good.yaml"
    good.write_text("servers:\n  - host: 127.0.0.1\n"
                    "history: {path: /var/lib/ntp-monitor/history.db, max_age_days: 0,\n"
                    "          max_rows: 0, max_bytes: 50000000}\n")
    out = peers.run_monitor(["check-config", str(good)], timeout_s=10)
    assert out.returncode == 0, out.stderr
