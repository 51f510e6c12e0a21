"""The monitoring host's own clock, end to end: five simulated servers (`ntp-monitor simulate
--offset 0.08`) agree on a time 80 ms ahead of this host, the offset threshold is 50 ms.

The host's clock is never touched: the simulators are the ones 80 ms away, which is what the
daemon sees when its host is 80 ms behind. With the default `alerts.offset_reference:
consensus` the daemon raises exactly one alert, for the host (NtpHostClockOffsetHigh), and no
server's offset alert; with `local` it keeps the behaviour from before the setting existed, one
offset alert per server. Steps of the host clock cannot be made here (the machine is shared):
they are tested through the Monitor's step event in tests/unit/monitor and the timerfd watch in
tests/unit/engine.
"""

from __future__ import annotations

import time

from helpers import fleet_config, metric, samples, wait_for

OFFSET_S = 0.080
NAMES = ("s1", "s2", "s3", "s4", "s5")
HOST_ALERT = "NtpHostClockOffsetHigh"
# Short hold and poll so that each case takes seconds: alerts fire after 2 bad evaluations.
ALERTS = "alert_thresholds: {offset_ms: 50}\nalerts: {hold: 2%s}\n"


def start_fleet(daemon, simulator, reference: str = ""):
    sims = {name: simulator("--offset", f"{OFFSET_S}") for name in NAMES}
    extra = ALERTS % (f", offset_reference: {reference}" if reference else "")
    return daemon(fleet_config(sims, extra=extra))


def alert_series(d) -> dict:
    """{(alert, server): value} of ntp_monitor_alert_active."""
    return {(labels["alert"], labels.get("server", "")): value
            for name, labels, value in samples(d.metrics_text())
            if name == "ntp_monitor_alert_active"}


def firing(d, alert: str) -> list[str]:
    return sorted(server for (a, server), v in alert_series(d).items() if a == alert and v == 1)


def responses(d) -> float:
    return sum(v for name, _, v in samples(d.metrics_text())
               if name == "ntp_monitor_responses_total")


def test_host_clock_off_raises_one_alert_and_no_server_offset_alert(daemon, simulator):
    started = time.monotonic()
    d = start_fleet(daemon, simulator)
    wait_for("the host-clock alert", lambda: firing(d, HOST_ALERT) == [""], 20)
    # It fired: the servers are measured as they are (80 ms ahead), the host is judged 80 ms
    # behind their consensus.
    text = d.metrics_text()
    local = metric(text, "ntp_monitor_local_clock_offset_seconds")
    assert local is not None and abs(local + OFFSET_S) < 0.005, local
    for name in NAMES:
        offset = metric(text, "ntp_monitor_server_offset_seconds", server=name)
        assert offset is not None and abs(offset - OFFSET_S) < 0.005, (name, offset)
    # Several more polls: still one alert, and no server's offset alert ever fired.
    before = responses(d)
    time.sleep(4)
    assert responses(d) >= before + 3 * len(NAMES), "probes kept their rate"
    assert firing(d, HOST_ALERT) == [""]
    assert firing(d, "NtpServerOffsetHigh") == [], alert_series(d)
    assert sum(v for v in alert_series(d).values()) == 1, alert_series(d)
    alerts = d.api("/api/v1/alerts")
    assert [(a["server"], a["alert"]) for a in alerts["active"]] == [(None, "local_clock")], alerts
    assert "consensus" in alerts["active"][0]["message"], alerts
    assert [a for a in alerts["recent"] if a["alert"] == "offset"] == [], alerts["recent"]
    selection = d.api("/api/v1/selection")
    assert abs(selection["local_clock_offset"] + OFFSET_S) < 0.005, selection
    assert selection["local_clock_steps"] == 0
    assert metric(d.metrics_text(), "ntp_monitor_local_clock_steps_total") == 0
    assert all(s["alerts"] == [] for s in d.servers().values())
    assert d.log_events("alert_firing") and all(
        HOST_ALERT in line for line in d.log_events("alert_firing")), d.log()
    print(f"\nhost alert and 4 s of checks in {time.monotonic() - started:.1f} s")


def test_offset_reference_local_keeps_one_alert_per_server(daemon, simulator):
    started = time.monotonic()
    d = start_fleet(daemon, simulator, reference="local")
    wait_for("five server offset alerts",
             lambda: firing(d, "NtpServerOffsetHigh") == list(NAMES), 20)
    wait_for("the host-clock alert too", lambda: firing(d, HOST_ALERT) == [""], 10)
    alerts = d.api("/api/v1/alerts")
    offsets = sorted(a["server"] for a in alerts["active"] if a["alert"] == "offset")
    assert offsets == list(NAMES), alerts
    assert all("above 50 ms" in a["message"] and "consensus" not in a["message"]
               for a in alerts["active"] if a["alert"] == "offset"), alerts
    print(f"\nfive server alerts in {time.monotonic() - started:.1f} s")
