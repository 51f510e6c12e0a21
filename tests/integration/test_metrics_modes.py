"""metrics.per_server (docs/metrics.md, "Series per server") with the real daemon on loopback.

- standard (the default): a server's ntp_monitor_rejected_total{reason} series is absent while
  it has had no rejection of that reason and present from its first one on (the simulator
  behind the same address and port is swapped for one that sends a duplicate of every reply),
  while the fleet-wide family has every reason from the first scrape;
- switching metrics.per_server by SIGHUP changes the series count at the next scrapes:
  standard -> full (dense, 43 series for a server) -> minimal (6) -> standard; /metrics is
  gzipped when asked for.
"""

from __future__ import annotations

import gzip
import re
import signal

from helpers import fleet_config, http_get, metric, samples, wait_for

# The twelve reasons of ntp_monitor_rejected_total (proto::RejectReason).
REASONS = {"bad_length", "bad_version", "bad_extension", "bad_mode", "wrong_source",
           "bogus_origin", "duplicate", "zero_timestamp", "unsynchronized", "bad_stratum",
           "bad_header", "auth_failed"}


def series_of(text: str, server: str) -> list[tuple[str, dict, float]]:
    return [s for s in samples(text) if s[1].get("server") == server]


def mode_of(text: str) -> str:
    [mode] = re.findall(r'^ntp_monitor_metrics_per_server\{mode="(\w+)"\} 1$', text, re.M)
    return mode


def test_reason_series_appears_at_the_first_rejection_and_stays(daemon, simulator):
    good = simulator("--offset", "0.001")
    d = daemon(fleet_config({"a": good}))
    wait_for("three valid replies", lambda: (metric(
        d.metrics(), "ntp_monitor_responses_total", server="a") or 0) >= 3, 15)
    text = d.metrics_text()
    assert mode_of(text) == "standard"
    assert [s for s in series_of(text, "a") if s[0] == "ntp_monitor_rejected_total"] == []
    # A healthy server: at most 20 series (15 without authentication).
    assert len(series_of(text, "a")) <= 20, series_of(text, "a")
    # The fleet-wide family has every reason, at 0, from the start.
    fleet = {s[1]["reason"]: s[2] for s in samples(text)
             if s[0] == "ntp_monitor_fleet_rejected_total"}
    assert fleet == {r: 0 for r in REASONS}

    # The same address and port now answer with a duplicate after every reply.
    port = good.port
    good.stop()
    simulator("--offset", "0.001", "--duplicate", listen=f"127.0.0.1:{port}")

    def duplicates():
        value = metric(d.metrics(), "ntp_monitor_rejected_total", server="a",
                       reason="duplicate")
        return value if value and value >= 1 else None

    wait_for("the first duplicate counted", duplicates, 15)
    text = d.metrics_text()
    rejected = [s for s in series_of(text, "a") if s[0] == "ntp_monitor_rejected_total"]
    assert [s[1]["reason"] for s in rejected] == ["duplicate"], rejected
    assert metric(text, "ntp_monitor_fleet_rejected_total", reason="duplicate") >= 1
    # It stays on later scrapes.
    first = rejected[0][2]
    wait_for("more duplicates", lambda: (metric(
        d.metrics(), "ntp_monitor_rejected_total", server="a", reason="duplicate") or 0)
        > first, 10)


def test_sighup_switches_the_series_per_server(daemon, simulator):
    sims = {name: simulator("--offset", off) for name, off in
            [("a", "0.001"), ("b", "0.002"), ("c", "-0.001")]}
    config = fleet_config(sims)
    d = daemon(config)

    def settled():
        text = d.metrics_text()
        return text if all(metric(text, "ntp_monitor_server_offset_seconds", server=n)
                           is not None for n in sims) else None

    text = wait_for("every server measured", settled, 15)
    standard = len(series_of(text, "a"))
    assert mode_of(text) == "standard"
    assert 6 < standard <= 20, series_of(text, "a")

    def switch_to(mode: str, reloads: int) -> str:
        d.config_path.write_text(config + f"metrics: {{per_server: {mode}}}\n")
        d.signal(signal.SIGHUP)
        return wait_for(f"{mode} in /metrics", lambda: (
            text if mode_of(text := d.metrics_text()) == mode
            and metric(text, "ntp_monitor_config_reloads_total") == reloads else None), 10)

    def count(text: str, name: str, family: str) -> int:
        return len([s for s in series_of(text, name) if s[0] == family])

    text = switch_to("full", 1)
    for name in sims:
        # Dense: every reason, known kiss code and alert kind at 0, and the two root figures.
        assert count(text, name, "ntp_monitor_rejected_total") == 12
        assert count(text, name, "ntp_monitor_kod_total") == 4
        assert count(text, name, "ntp_monitor_alert_active") == 10
        assert count(text, name, "ntp_monitor_server_root_delay_seconds") == 1
        assert 38 <= len(series_of(text, name)) <= 43, (name, series_of(text, name))
    assert len(series_of(text, "a")) == standard + 12 + 4 + 10 + 2

    text = switch_to("minimal", 2)
    for name in sims:
        assert {s[0] for s in series_of(text, name)} == {
            "ntp_monitor_server_up", "ntp_monitor_server_info",
            "ntp_monitor_server_offset_seconds", "ntp_monitor_server_delay_seconds",
            "ntp_monitor_server_stratum", "ntp_monitor_server_reachability_ratio"}
        assert len(series_of(text, name)) == 6
    # Nothing else changed: the servers keep being polled, their counters keep counting.
    assert metric(text, "ntp_monitor_fleet_responses_total") > 0

    text = switch_to("standard", 3)
    for name in sims:
        assert 6 < len(series_of(text, name)) <= 20, (name, series_of(text, name))
        for family in ("ntp_monitor_rejected_total", "ntp_monitor_kod_total",
                       "ntp_monitor_alert_active", "ntp_monitor_server_root_delay_seconds"):
            assert count(text, name, family) == 0, (name, family)

    # gzip is negotiated for /metrics in every mode.
    status, headers, body = http_get(d.metrics_port, "/metrics",
                                     headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip", headers
    assert "ntp_monitor_metrics_per_server{mode=\"standard\"} 1" in gzip.decompress(body).decode()
