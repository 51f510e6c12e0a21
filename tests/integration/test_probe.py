"""Multi-target probing (/probe?target=HOST[:PORT]&module=NAME, docs/probe.md) against
simulators on loopback: a new target's first scrape waits for its first sample, later
scrapes answer from the filter at once, the cap refuses new targets, the time-to-live drops
forgotten ones, bad requests get 400, and Debian's Prometheus drives it with the relabel
recipe of docs/probe.md."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

import peers
from helpers import Daemon, http_get, metric, parse_metrics, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def config(sim: peers.Simulator, probe: str = "") -> str:
    """One configured server (the daemon needs one) polled every second, and a probe section."""
    return (f"servers:\n  - {{name: base, host: '{sim.address}', port: {sim.port}}}\n"
            "poll: {min: 1, max: 1}\n" + probe)


def probe(daemon: Daemon, target: str, module: str | None = None,
          timeout_s: str | None = None) -> tuple[int, str, float]:
    """(status, body, seconds the request took)."""
    params = {"target": target}
    if module is not None:
        params["module"] = module
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": timeout_s} if timeout_s else {}
    start = time.monotonic()
    status, _, body = http_get(daemon.metrics_port, "/probe?" + urllib.parse.urlencode(params),
                               headers=headers, timeout_s=15)
    return status, body.decode(), time.monotonic() - start


@pytest.fixture
def sims(tmp_path):
    started = []

    def make(*args: str) -> peers.Simulator:
        sim = peers.Simulator(tmp_path / f"sim{len(started)}", args=args).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def daemons(tmp_path):
    started = []

    def make(text: str) -> Daemon:
        d = Daemon(tmp_path / f"daemon{len(started)}", text).start()
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def test_first_scrape_waits_for_the_first_sample_then_answers_from_state(sims, daemons):
    base = sims()
    # 0.2 s each way: the first reply comes 0.4 s after the first request, the offset stays.
    target = sims("--offset", "0.05", "--forward-delay", "0.2", "--return-delay", "0.2")
    d = daemons(config(base))
    status, body, took = probe(d, target.target, timeout_s="5")
    assert status == 200, body
    first = parse_metrics(body)
    print(f"\nfirst scrape: {took:.3f} s, probe_duration_seconds "
          f"{metric(first, 'probe_duration_seconds'):.3f}, offset "
          f"{metric(first, 'probe_ntp_offset_seconds'):.6f} s, delay "
          f"{metric(first, 'probe_ntp_delay_seconds'):.6f} s")
    assert metric(first, "probe_success") == 1
    assert 0.35 <= metric(first, "probe_duration_seconds") < 3
    assert metric(first, "probe_ntp_offset_seconds") == pytest.approx(0.05, abs=0.01)
    assert metric(first, "probe_ntp_delay_seconds") == pytest.approx(0.4, abs=0.05)
    assert metric(first, "probe_ntp_stratum") == 2
    assert metric(first, "probe_ntp_leap") == 0
    assert metric(first, "probe_ntp_info", address="127.0.0.1", module="default") == 1
    status, body, took = probe(d, target.target, timeout_s="5")
    second = parse_metrics(body)
    print(f"second scrape: {took:.3f} s, probe_duration_seconds "
          f"{metric(second, 'probe_duration_seconds'):.6f}")
    assert status == 200 and metric(second, "probe_success") == 1
    assert metric(second, "probe_duration_seconds") < 0.1
    assert metric(second, "probe_ntp_offset_seconds") == pytest.approx(0.05, abs=0.01)
    # One target, apart from the configured servers: not in the per-server families or the API.
    wait_for("one probe target in /metrics", lambda: metric(
        d.metrics(), "ntp_monitor_probe_targets") == 1, 5, interval_s=0.05)
    text = d.metrics_text()
    assert f'port="{target.port}"' not in text
    assert [s["name"] for s in d.api("/api/v1/servers")["servers"]] == ["base"]
    assert len(d.log_events("probe_target_added")) == 1


def test_a_silent_target_answers_at_the_scrape_deadline(sims, daemons):
    base = sims()
    silent = peers.free_udp_port()  # nothing listens there
    d = daemons(config(base))
    status, body, took = probe(d, f"127.0.0.1:{silent}", timeout_s="1")
    print(f"\nsilent target: answered after {took:.3f} s (scrape timeout 1 s)")
    assert status == 200
    assert metric(body, "probe_success") == 0
    assert metric(body, "probe_ntp_offset_seconds") is None
    assert 0.7 <= took < 1.0


def test_the_cap_refuses_new_targets_but_renews_live_ones(sims, daemons):
    base, a, b = sims(), sims(), sims()
    d = daemons(config(base, "probe: {max_targets: 1}\n"))
    assert probe(d, a.target)[0] == 200
    status, body, _ = probe(d, b.target)
    print(f"\nrefused: {status} {body.strip()}")
    assert status == 503
    assert "probe.max_targets" in body
    assert probe(d, a.target)[0] == 200  # a live target is renewed, never refused
    m = wait_for("the refusal counted", lambda: (m := d.metrics()) and metric(
        m, "ntp_monitor_probe_targets_rejected_total", reason="limit") == 1 and m, 5,
        interval_s=0.05)
    assert metric(m, "ntp_monitor_probe_targets") == 1
    assert metric(m, "ntp_monitor_probe_targets_rejected_total", reason="limit") == 1


def test_a_target_expires_after_its_time_to_live(sims, daemons):
    base, a = sims(), sims()
    d = daemons(config(base, "probe: {target_ttl_s: 2}\n"))
    assert metric(probe(d, a.target)[1], "probe_success") == 1
    start = time.monotonic()
    wait_for("the target expired", lambda: metric(
        d.metrics(), "ntp_monitor_probe_targets_expired_total") == 1, 10, interval_s=0.1)
    print(f"\nexpired {time.monotonic() - start:.2f} s after the scrape (ttl 2 s)")
    assert metric(d.metrics(), "ntp_monitor_probe_targets") == 0
    assert len(d.log_events("probe_target_removed")) == 1
    # The next scrape registers it again.
    status, body, _ = probe(d, a.target)
    assert status == 200 and metric(body, "probe_success") == 1
    assert len(d.log_events("probe_target_added")) == 2


@pytest.mark.parametrize("query, message", [
    ("target=a%20b", "target 'a b' is not a host name"),
    ("target=127.0.0.1:99999", "has an invalid port"),
    ("target=%5B::1", "has an unclosed '['"),
    ("", "target is empty"),
    ("target=127.0.0.1&module=nope", "module 'nope' is not in the configuration"),
    ("target=127.0.0.1&module=", "module '' is not in the configuration"),
])
def test_bad_targets_and_modules_get_400(sims, daemons, query, message):
    d = daemons(config(sims()))
    status, _, body = http_get(d.metrics_port, "/probe?" + query)
    assert status == 400, body
    assert message in body.decode()
    # /metrics reads a view up to 100 ms old.
    m = wait_for("the refusal counted", lambda: (m := d.metrics()) and sum(
        metric(m, "ntp_monitor_probe_targets_rejected_total", reason=r)
        for r in ("bad_target", "bad_module")) == 1 and m, 5, interval_s=0.05)
    assert metric(m, "ntp_monitor_probe_targets") == 0


def test_modules_set_the_version(sims, daemons):
    base, a = sims(), sims()
    d = daemons(config(base, "probe:\n  modules:\n    v3: {version: 3}\n"))
    status, body, _ = probe(d, a.target, module="v3")
    assert status == 200 and metric(body, "probe_success") == 1
    assert metric(body, "probe_ntp_info", module="v3") == 1


# ----------------------------------------------------------------------------------------
# Debian's Prometheus with the relabel recipe of docs/probe.md


def test_prometheus_probes_each_target_through_the_relabel_recipe(tmp_path, sims, daemons):
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus not installed (Debian package prometheus)")
    base = sims()
    targets = {sims("--offset", "0.01"): 0.01, sims("--offset", "-0.02"): -0.02}
    d = daemons(config(base))
    # The recipe as docs/probe.md shows it, with this test's addresses and a fast interval.
    scrape = {
        "job_name": "ntp-probe",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "metrics_path": "/probe",
        "params": {"module": ["default"]},
        "static_configs": [{"targets": [sim.target for sim in targets]}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": f"127.0.0.1:{d.metrics_port}"},
        ],
    }
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    (workdir / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [scrape]}))
    port = peers.free_tcp_port()
    log = workdir / "prometheus.log"
    proc = peers.spawn([PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}"], log)
    try:
        def query(expr: str) -> list:
            answer = json.loads(http_get(port, "/api/v1/query?" + urllib.parse.urlencode(
                {"query": expr}), timeout_s=5)[2])
            return answer["data"]["result"] if answer.get("status") == "success" else []

        wanted = {sim.target for sim in targets}

        def all_succeed():
            found = query('probe_success{job="ntp-probe"} == 1')
            return found if {x["metric"]["instance"] for x in found} == wanted else None

        results = wait_for("probe_success == 1 for every target", all_succeed, 60,
                           interval_s=0.5, ignore=(OSError, ValueError, KeyError))
        print("\n" + "\n".join(f"{x['metric']['instance']}: probe_success {x['value'][1]}"
                               for x in results))
        for sim, offset in targets.items():
            got = query(f'probe_ntp_offset_seconds{{job="ntp-probe",instance="{sim.target}"}}')
            assert len(got) == 1
            print(f"{sim.target}: offset {float(got[0]['value'][1]):+.6f} s (simulator {offset:+})")
            assert float(got[0]["value"][1]) == pytest.approx(offset, abs=0.005)
        up = query('up{job="ntp-probe"}')
        assert sorted(float(x["value"][1]) for x in up) == [1.0, 1.0]
        # Scrapes renew the targets; nothing beyond the two was registered.
        assert metric(d.metrics(), "ntp_monitor_probe_targets") == 2
        assert len(d.log_events("probe_target_added")) == 2
    finally:
        peers.stop_process(proc)
