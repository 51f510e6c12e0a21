"""The Grafana dashboard and the Prometheus rules (deploy/) against a real Prometheus.

Three layers:
- promtool: `promtool check rules`, `promtool check config` and the rule unit tests in
  tests/promtool/ (every alert firing and not firing on exact series);
- the dashboard JSON on its own: structure Grafana needs (unique ids, data source variable on
  every query, panels inside the 24-column grid without overlap, provisioning files that point
  at it);
- live: a fleet of simulators on loopback (three healthy servers, one of which also sends
  duplicate replies, and one answering Kiss-o'-Death RATE), the real daemon polling them every
  second, and a real Prometheus scraping the daemon every second with deploy/prometheus/rules.yml
  loaded. Every PromQL expression of the dashboard (template variables substituted) and of the
  recording rules must be valid and return data; every alert expression must be valid; the
  fleet's one expected alert (KoD RATE) must fire in Prometheus and nothing else;
- vantages: two daemons with `vantage: eu` and `vantage: us` watching the same server names
  (one of them a different simulator per site, one unreachable from us), one Prometheus over
  both: the median offset over vantages, the unreachable share, the vantage count and
  NtpServerUnreachableFromMajority (pending) on real series; skipped while the daemon does not
  know `vantage:`;
- exposition formats: a second Prometheus scrapes the same daemon both directly (OpenMetrics,
  which Prometheus 2.42 always asks for) and through a loopback proxy that rewrites the Accept
  header to ask for 0.0.4, and both jobs must carry the same series; promtool checks the 0.0.4
  rendering and python3-prometheus-client's strict OpenMetrics 1.0 parser the OpenMetrics one.

Expressions about NTS are allowed to be empty only while the daemon exports no sample of the
metrics they read (NTS_PENDING below, printed by the test): a fleet of simulators has no NTS
server, and the exporter does not publish NTS metrics yet.

The live layer runs once per metrics.per_server mode (full, standard, minimal: docs/metrics.md,
"Series per server"), the exposition-format checks once (standard, the default). In minimal mode
an expression may also be empty when it reads a per-server family that mode does not export and
no fleet-wide family (MINIMAL_ABSENT): a panel with a fleet-wide fallback must have data.
"""

from __future__ import annotations

import glob
import http.client
import http.server
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Optional

import pytest
import yaml

import peers
from helpers import Daemon, http_get, wait_for

REPO = peers.REPO
DASHBOARD = REPO / "deploy" / "grafana" / "ntp-monitor.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
PROMTOOL_TESTS = REPO / "tests" / "promtool"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# Grafana's built-in variables, replaced as Grafana would for a 1 s scrape interval.
GRAFANA_BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1s",
    "__range": "5m",
}
# The dashboard's own query variables, set to "All" (their allValue).
DASHBOARD_VARIABLES = {"job", "instance", "server"}

# Metrics that an expression may read although the fleet cannot produce them. An expression
# reading only these may come back empty; the test prints which ones did. Once the daemon
# exports a sample of one of them, expressions on it must return data like all others.
NTS_PENDING = {
    # NTS and key authentication: the simulators speak neither, and the exporter does not
    # publish these families yet (docs/metrics.md).
    "ntp_monitor_server_authenticated",
    "ntp_monitor_nts_cookies",
    "ntp_monitor_nts_certificate_expiry_timestamp_seconds",
    "ntp_monitor_nts_ke_duration_seconds",
    "ntp_monitor_nts_ke_failures_total",
}

# Per-server families that metrics.per_server: minimal does not export (it keeps up, info, offset,
# delay, stratum and reachability).
MINIMAL_ABSENT = {
    "ntp_monitor_server_consensus_offset_seconds", "ntp_monitor_server_jitter_seconds",
    "ntp_monitor_server_root_delay_seconds", "ntp_monitor_server_root_dispersion_seconds",
    "ntp_monitor_server_root_distance_seconds", "ntp_monitor_server_leap",
    "ntp_monitor_server_poll_interval_seconds", "ntp_monitor_server_selected",
    "ntp_monitor_server_last_sample_timestamp_seconds", "ntp_monitor_requests_total",
    "ntp_monitor_responses_total", "ntp_monitor_rejected_total", "ntp_monitor_kod_total",
    "ntp_monitor_alert_active", "ntp_monitor_server_authenticated",
} | NTS_PENDING
MODES = ["full", "standard", "minimal"]

_METRIC = re.compile(r"\b(ntp_monitor_[a-z0-9_]+|up)\b(?!\s*\()")
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


# ----------------------------------------------------------------------------------------
# Expressions of the deployment files


def substitute(expr: str) -> str:
    """The expression as Grafana sends it with every variable at "All"."""

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name in DASHBOARD_VARIABLES:
            return ".*"
        raise AssertionError(f"unknown template variable ${name} in {expr!r}")

    out = _VAR.sub(repl, expr)
    assert "$" not in out, out
    return out


def all_panels(panels: list) -> list:
    """Panels including those nested in collapsed rows."""
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels", [])))
    return out


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expression) of every panel target."""
    out = []
    for panel in all_panels(dashboard()["panels"]):
        for t in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {t['refId']}", t["expr"]))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """(variable, selector, label) of every label_values() query variable."""
    out = []
    for var in dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
        assert match, f"variable {var['name']}: not a label_values() query: {query!r}"
        out.append((var["name"], match.group(1), match.group(2)))
    return out


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def metrics_in(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


# ----------------------------------------------------------------------------------------
# promtool


def test_promtool_rules_and_unit_tests():
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool not installed (Debian package prometheus)")
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules())} rules found" in check.stdout, check.stdout

    config = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_CONFIG)],
                            capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stdout + config.stderr

    tests = sorted(glob.glob(str(PROMTOOL_TESTS / "*.yml")))
    assert len(tests) >= 2, tests
    unit = subprocess.run([PROMTOOL, "test", "rules", *tests], capture_output=True, text=True,
                          timeout=120)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert unit.stdout.count("SUCCESS") == len(tests), unit.stdout


def test_every_alert_has_a_promtool_test():
    alerts = {r["alert"] for r in rules() if "alert" in r}
    records = {r["record"] for r in rules() if "record" in r}
    tested_alerts, tested_records = set(), set()
    for path in PROMTOOL_TESTS.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                if case.get("exp_alerts"):  # a firing case, not only a silent one
                    tested_alerts.add(case["alertname"])
            for case in group.get("promql_expr_test", []):
                tested_records.add(case["expr"])
    assert alerts - tested_alerts == set(), "alerts never shown firing"
    assert records - tested_records == set(), "recording rules without a test"
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


# ----------------------------------------------------------------------------------------
# One vocabulary: the daemon's alerts and the rules

# Rules about the monitor itself or the whole fleet: the daemon, which judges one server at a
# time from one place, has no alert of these names.
FLEET_ONLY_RULES = {"NtpMonitorDown", "NtpMonitorAbsent", "NtpNoTruechimerMajority",
                    "NtpConfigReloadFailed", "NtpServerUnreachableFromMajority"}

_ALERT_LABEL = re.compile(r'ntp_monitor_alert_active\{[^}]*\balert="([^"]*)"')


def daemon_alerts(binary: Path) -> dict[str, str]:
    """alertname -> severity, as `ntp-monitor check-config --list-alerts` prints them."""
    out = peers.run_monitor(["check-config", "--list-alerts"], timeout_s=30, binary=binary)
    assert out.returncode == 0, out.stdout + out.stderr
    pairs = [line.split() for line in out.stdout.splitlines()]
    assert pairs and all(len(p) == 2 for p in pairs), out.stdout
    names = dict(pairs)
    assert len(names) == len(pairs), f"a name listed twice:\n{out.stdout}"
    return names


def test_daemon_alerts_and_rules_are_one_vocabulary(monitor):
    daemon = daemon_alerts(monitor)
    print(f"\ndaemon alerts: {len(daemon)}; rules.yml alerts: "
          f"{len([r for r in rules() if 'alert' in r])}")
    severity = {r["alert"]: r["labels"]["severity"] for r in rules() if "alert" in r}
    assert sorted(set(daemon) - set(severity)) == [], "daemon alerts without a rule"
    assert {n: s for n, s in daemon.items() if severity[n] != s} == {}, (
        "severity differs from the rule's: " +
        str({n: (s, severity[n]) for n, s in daemon.items() if severity[n] != s}))
    assert set(severity) - set(daemon) == FLEET_ONLY_RULES, "rules without a daemon alert"
    # Every value of the `alert` label that a rule, a promtool test, the dashboard or the docs
    # select on is one the daemon exports.
    files = [RULES, DASHBOARD, *sorted(PROMTOOL_TESTS.glob("*.yml")),
             *sorted((REPO / "docs").glob("*.md"))]
    stale = {f"{path.relative_to(REPO)}: {value}" for path in files
             for value in _ALERT_LABEL.findall(path.read_text().replace('\\"', '"'))
             if value not in daemon}
    assert not stale, stale


# ----------------------------------------------------------------------------------------
# The dashboard and provisioning files, statically


def test_dashboard_structure():
    d = dashboard()
    assert d["uid"] == "ntp-monitor" and d["id"] is None
    assert 36 <= d["schemaVersion"] <= 39
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert set(variables) == {"datasource"} | DASHBOARD_VARIABLES

    panels = all_panels(d["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    occupied: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in occupied, f"{p['title']!r} overlaps {occupied[(x, y)]!r}"
                occupied[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("description"), f"panel {p['title']!r} has no description"
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], p["title"]
            substitute(t["expr"])  # only known variables

    titles = {p["title"] for p in panels}
    for wanted in ["System offset and jitter", "Offset per server", "Consensus offset per server",
                   "Round-trip delay", "Jitter", "Stratum", "Reachability", "Root distance",
                   "Selection state", "Selection changes", "Truechimers and majority",
                   "Active alerts", "Rejected replies by reason", "Kiss-o'-Death by code",
                   "Authenticated", "NTS cookies", "NTS certificate expiry"]:
        assert wanted in titles


def test_provisioning_files():
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert sources["apiVersion"] == 1
    [source] = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "ntp-monitor.yml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# ----------------------------------------------------------------------------------------
# Live: simulators -> daemon -> Prometheus


class Prometheus(peers.Peer):
    """A real Prometheus on 127.0.0.1, scraping its target(s) every second (job
    "ntp-monitor"), with rules loaded; extra_jobs adds jobs of one target each (job name ->
    target)."""

    name = "prometheus"

    def __init__(self, workdir: Path, target: "str | list[str]", rule_files: list[Path],
                 extra_jobs: Optional[dict[str, str]] = None):
        super().__init__(workdir)
        self.port = peers.free_tcp_port()
        self.config_path = self.workdir / "prometheus.yml"
        jobs = {"ntp-monitor": target, **(extra_jobs or {})}
        self.config_path.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [
                {"targets": t if isinstance(t, list) else [t]}]} for job, t in jobs.items()],
        }))

    def start(self, deadline_s: float = 30.0) -> "Prometheus":
        argv = [PROMETHEUS, f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        self.proc = peers.spawn(argv, self.log_path)
        try:
            wait_for("prometheus ready", lambda: self.proc.poll() is not None or http_get(
                self.port, "/-/ready", timeout_s=1)[0] == 200, deadline_s, ignore=(OSError,))
        except AssertionError:
            self.stop()
            raise RuntimeError(
                f"prometheus not ready within {deadline_s} s:\n{self.log()}") from None
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{self.log()}")
        return self

    def api(self, path: str, **params) -> dict:
        # 400/422: a bad expression, with the reason in the body.
        query = "?" + urllib.parse.urlencode(params) if params else ""
        return json.loads(http_get(self.port, path + query, timeout_s=10)[2])

    def query(self, expr: str) -> dict:
        return self.api("/api/v1/query", query=expr)


def _daemon_available(binary: Path) -> Optional[str]:
    """None if the binary runs the daemon, else why not (for the skip message)."""
    out = peers.run_monitor(["--help"], timeout_s=10, binary=binary)
    if "--prometheus-port" not in out.stdout:
        return f"{binary} has no daemon yet (--help lists no --prometheus-port)"
    return None


# A healthy fleet that still gives every panel data: sim-a sends a duplicate of every reply
# (rejected replies by reason), sim-kod answers only with KoD RATE (KoD by code, an active
# alert, a "kod" state).
FLEET = {
    "sim-a": ("--offset", "0.001", "--duplicate"),
    "sim-b": ("--offset", "0.002"),
    "sim-c": ("--offset", "-0.001"),
    "sim-kod": ("--kiss", "RATE"),
}


@pytest.fixture(scope="module", params=MODES)
def stack(request, tmp_path_factory, monitor):
    mode = request.param
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus not installed (Debian package prometheus)")
    reason = _daemon_available(monitor)
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp(f"prometheus-stack-{mode}")
    started = time.monotonic()
    sims = []
    daemon = prom = None
    try:
        for name, knobs in FLEET.items():
            sims.append(peers.Simulator(workdir / name, args=knobs).start())
        config = "servers:\n" + "".join(
            f"  - {{name: {name}, host: '{sim.address}', port: {sim.port}, poll: 1}}\n"
            for name, sim in zip(FLEET, sims)) + f"metrics: {{per_server: {mode}}}\n"
        daemon = Daemon(workdir / "daemon", config).start()
        # Let the daemon reach its steady state first: a selection made, the KoD alert up.
        wait_for("selection and the KoD alert in /metrics", lambda: (
            "ntp_monitor_majority 1" in (text := daemon.metrics_text())
            and 'ntp_monitor_fleet_alerts_firing{alert="NtpKissOfDeath"} 1' in text
            and f'ntp_monitor_metrics_per_server{{mode="{mode}"}} 1' in text
            and (mode == "minimal" or (
                'server="sim-kod",address="127.0.0.1",alert="NtpKissOfDeath"} 1' in text
                and "ntp_monitor_server_consensus_offset_seconds{" in text))),
            30, interval_s=0.5)
        prom = Prometheus(workdir / "prometheus", f"127.0.0.1:{daemon.metrics_port}",
                          [RULES]).start()
        # Enough scrapes for rate() and increase() over 1m, and rules evaluated.
        wait_for("6 successful scrapes", lambda: [
            s for s in prom.query('sum_over_time(up{job="ntp-monitor"}[1m])')["data"]["result"]
            if float(s["value"][1]) >= 6], 40, interval_s=0.5)
        print(f"\nstack ({mode}) up in {time.monotonic() - started:.1f} s")
        yield {"daemon": daemon, "prometheus": prom, "mode": mode}
    finally:
        for peer in [prom, daemon, *sims]:
            if peer is not None:
                peer.stop()


def _exported(metrics_text: str) -> tuple[set[str], set[str]]:
    """(families with a TYPE line, metric names with at least one sample)."""
    families, sampled = set(), set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
        elif line and not line.startswith("#"):
            sampled.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return families, sampled


def test_every_metric_read_is_exported(stack):
    """Names in the dashboard and the rules match the exporter's families (docs/metrics.md)."""
    families, _ = _exported(stack["daemon"].metrics_text())
    exprs = [e for _, e in dashboard_queries()] + [r["expr"] for r in rules()]
    exprs += [selector for _, selector, _ in variable_queries()]
    read = set().union(*(metrics_in(e) for e in exprs)) - {"up"}
    pending = sorted((read & NTS_PENDING) - families)
    print(f"\nmetrics read but not exported yet (NTS_PENDING): {pending}")
    assert read - families - NTS_PENDING == set()


def test_every_dashboard_and_recording_expression_returns_data(stack):
    prom: Prometheus = stack["prometheus"]
    _, sampled = _exported(stack["daemon"].metrics_text())
    checks = [(where, substitute(expr)) for where, expr in dashboard_queries()]
    checks += [(f"recording rule {r['record']}", r["expr"]) for r in rules() if "record" in r]
    checks += [(f"variable ${name}", substitute(selector))
               for name, selector, _ in variable_queries()]

    def failures_now() -> tuple[list[str], list[str]]:
        failed, allowed = [], []
        for where, expr in checks:
            answer = prom.query(expr)
            if answer.get("status") != "success":
                failed.append(f"{where}: invalid: {answer.get('error')}  [{expr}]")
            elif not answer["data"]["result"]:
                read = metrics_in(expr)
                if read & NTS_PENDING and not read & NTS_PENDING & sampled:
                    allowed.append(f"{where}  [{expr}]")
                elif (stack["mode"] == "minimal" and read & MINIMAL_ABSENT
                      and not any(m.startswith("ntp_monitor_fleet_") for m in read)):
                    allowed.append(f"{where} (minimal)  [{expr}]")
                else:
                    failed.append(f"{where}: no data  [{expr}]")
        return failed, allowed

    # A freshly started Prometheus may still lack a window's worth of samples: retry a while.
    end = time.monotonic() + 30
    while True:
        failed, allowed = failures_now()
        if not failed or time.monotonic() > end:
            break
        time.sleep(2)
    print(f"\n{len(checks)} expressions queried; empty but allowed (NTS_PENDING, "
          f"no NTS sample exported): {len(allowed)}")
    for line in allowed:
        print("  allowed empty:", line)
    assert not failed, "expressions failing against Prometheus:\n" + "\n".join(failed)
    # The allow-list only covers NTS panels (and, in minimal mode, the per-server families it
    # drops): everything else had data.
    assert all("NTS" in a or "Authenticated" in a or "(minimal)" in a for a in allowed), allowed


def test_variables_list_the_fleet(stack):
    prom: Prometheus = stack["prometheus"]
    for name, selector, label in variable_queries():
        result = prom.query(substitute(selector))["data"]["result"]
        values = {s["metric"].get(label) for s in result}
        expected = {"job": {"ntp-monitor"}, "server": set(FLEET)}.get(name)
        if expected is not None:
            assert values == expected, name
        else:
            assert values == {f"127.0.0.1:{stack['daemon'].metrics_port}"}, name


def test_rules_load_and_only_the_kod_alert_fires(stack):
    prom: Prometheus = stack["prometheus"]
    groups = prom.api("/api/v1/rules")["data"]["groups"]
    loaded = [r for g in groups for r in g["rules"]]
    assert len(loaded) == len(rules())
    assert [r["name"] for r in loaded if r["health"] != "ok"] == []

    # Every alert expression is valid PromQL on real data (empty is fine: a healthy fleet).
    for rule in rules():
        if "alert" in rule:
            answer = prom.query(rule["expr"])
            assert answer["status"] == "success", (rule["alert"], answer)

    def kod_firing():
        alerts = prom.api("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"] or None

    firing = wait_for("an alert firing in Prometheus", kod_firing, 30, interval_s=0.5)
    # Minimal mode has no per-server kiss series: the fleet-wide counter fires it, server="*".
    server = "*" if stack["mode"] == "minimal" else "sim-kod"
    assert [(a["labels"]["alertname"], a["labels"]["server"], a["labels"]["code"])
            for a in firing] == [("NtpKissOfDeath", server, "RATE")]
    # The other alerts have `for:` clauses of minutes; at most these may be pending now.
    alerts = prom.api("/api/v1/alerts")["data"]["alerts"]
    pending = {(a["labels"]["alertname"], a["labels"].get("server")) for a in alerts
               if a["state"] == "pending"}
    assert pending <= {("NtpServerUnreachable", "sim-kod")}, pending


# ----------------------------------------------------------------------------------------
# Exposition formats: OpenMetrics for Prometheus, 0.0.4 for everyone else

# What Prometheus 2.42 sends on every scrape (scrape/scrape.go); it has no setting to change it
# (scrape_protocols came in a later release), so this Prometheus always gets OpenMetrics.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_004_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _single_value(prom: Prometheus, expr: str) -> float:
    [sample] = prom.query(expr)["data"]["result"]
    return float(sample["value"][1])


def only_standard(stack) -> None:
    """The exposition-format checks do not depend on the mode: run once."""
    if stack["mode"] != "standard":
        pytest.skip("format checks run in standard mode only")


def test_prometheus_scrapes_openmetrics(stack):
    only_standard(stack)
    daemon, prom = stack["daemon"], stack["prometheus"]
    # What the daemon answers to Prometheus's Accept header.
    status, headers, body = http_get(daemon.metrics_port, "/metrics",
                                     headers={"Accept": PROMETHEUS_ACCEPT})
    assert status == 200
    assert headers["content-type"] == OPENMETRICS_TYPE
    text = body.decode()
    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    assert "# TYPE ntp_monitor_requests counter\n" in text
    assert "# TYPE process_cpu_seconds counter\n" in text

    # Prometheus parsed it: the target is up, with no scrape error.
    [target] = prom.api("/api/v1/targets")["data"]["activeTargets"]
    assert (target["health"], target["lastError"]) == ("up", ""), target
    assert _single_value(prom, 'up{job="ntp-monitor"}') == 1
    scraped = _single_value(prom, 'scrape_samples_scraped{job="ntp-monitor"}')
    assert scraped > 100, scraped
    # ... with the OpenMetrics parser: it keys a counter's metadata by the family name, which
    # only OpenMetrics gives without _total.
    metadata = prom.api("/api/v1/targets/metadata", match_target='{job="ntp-monitor"}',
                        metric="ntp_monitor_requests")["data"]
    assert [m["type"] for m in metadata] == ["counter"], metadata

    # The process families, with values that make sense for a daemon started a moment ago.
    start = _single_value(prom, 'process_start_time_seconds{job="ntp-monitor"}')
    assert time.time() - 600 < start <= time.time() + 1, start
    assert _single_value(prom, 'process_cpu_seconds_total{job="ntp-monitor"}') > 0
    assert _single_value(prom, 'process_resident_memory_bytes{job="ntp-monitor"}') > 1e6
    open_fds = _single_value(prom, 'process_open_fds{job="ntp-monitor"}')
    assert 3 <= open_fds <= _single_value(prom, 'process_max_fds{job="ntp-monitor"}')
    assert _single_value(prom, 'process_virtual_memory_bytes{job="ntp-monitor"}') > 1e6

    # The HTTP families: every drop reason and both TLS reload results from the first scrape.
    dropped = prom.query('ntp_monitor_http_connections_dropped_total{job="ntp-monitor"}')
    assert {s["metric"]["reason"] for s in dropped["data"]["result"]} == {
        "total_limit", "per_client_limit", "head_timeout", "tls_handshake"}
    reloads = prom.query('ntp_monitor_http_tls_reloads_total{job="ntp-monitor"}')
    assert {s["metric"]["result"] for s in reloads["data"]["result"]} == {"ok", "error"}
    assert prom.query('ntp_monitor_http_connections_open{job="ntp-monitor"}')["data"]["result"]
    assert prom.query(
        'ntp_monitor_http_connections_accepted_total{job="ntp-monitor"}')["data"]["result"]


@pytest.mark.parametrize("accept", [None, "*/*", "text/plain",
                                    "application/openmetrics-text;version=0.0.1"])
def test_other_clients_get_004_that_promtool_accepts(stack, accept):
    only_standard(stack)
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool not installed (Debian package prometheus)")
    daemon = stack["daemon"]
    status, headers, body = http_get(daemon.metrics_port, "/metrics",
                                     headers={"Accept": accept} if accept else None)
    assert status == 200
    assert headers["content-type"] == TEXT_004_TYPE
    text = body.decode()
    assert "# EOF" not in text
    assert "\nprocess_start_time_seconds " in text
    assert "# TYPE ntp_monitor_requests_total counter\n" in text
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
    assert (check.returncode, check.stdout + check.stderr) == (0, "")


# ----------------------------------------------------------------------------------------
# Prometheus 2.42 scrapes both formats: directly (OpenMetrics) and through a proxy that asks
# for 0.0.4 the way an older Prometheus or any plain client does.

# The Accept header the proxy sends instead of Prometheus's.
ACCEPT_004 = "text/plain;version=0.0.4;q=1"
OPENMETRICS_JOB = "ntp-monitor"  # the same job name as the stack's Prometheus
TEXT_004_JOB = "ntp-monitor-004"


class AcceptRewritingProxy:
    """An HTTP server on 127.0.0.1 that forwards GET /metrics to the daemon with the Accept
    header replaced by ACCEPT_004 (Accept-Encoding passed on) and returns the daemon's status,
    Content-Type, Content-Encoding and body unchanged. `exchanges` records, per request,
    (Accept received, status, Content-Type and Content-Encoding answered by the daemon)."""

    def __init__(self, upstream_port: int):
        self.port = peers.free_tcp_port()
        self.exchanges: list[dict] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                headers = {"Accept": ACCEPT_004}
                if self.headers.get("Accept-Encoding"):
                    headers["Accept-Encoding"] = self.headers["Accept-Encoding"]
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=5)
                try:
                    upstream.request("GET", "/metrics", headers=headers)
                    answer = upstream.getresponse()
                    body = answer.read()  # still gzipped if it was: http.client never decodes
                finally:
                    upstream.close()
                proxy.exchanges.append({
                    "accept": self.headers.get("Accept"), "status": answer.status,
                    "content-type": answer.getheader("Content-Type"),
                    "content-encoding": answer.getheader("Content-Encoding")})
                self.send_response(answer.status)
                for name in ("Content-Type", "Content-Encoding"):
                    if answer.getheader(name):
                        self.send_header(name, answer.getheader(name))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "AcceptRewritingProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def both_formats(stack, tmp_path_factory):
    """A second Prometheus (no rules) scraping the stack's daemon every second twice: directly
    (job ntp-monitor: OpenMetrics) and through the proxy (job ntp-monitor-004: 0.0.4). The
    stack's own Prometheus keeps its single job, which its fleet-wide checks rely on."""
    only_standard(stack)
    daemon = stack["daemon"]
    proxy = AcceptRewritingProxy(daemon.metrics_port).start()
    prom = None
    try:
        prom = Prometheus(tmp_path_factory.mktemp("prometheus-both"),
                          f"127.0.0.1:{daemon.metrics_port}", [],
                          extra_jobs={TEXT_004_JOB: f"127.0.0.1:{proxy.port}"}).start()
        wait_for("3 successful scrapes of each job", lambda: len([
            s for s in prom.query("sum_over_time(up[1m])")["data"]["result"]
            if float(s["value"][1]) >= 3]) == 2, 30, interval_s=0.5)
        yield {"daemon": daemon, "prometheus": prom, "proxy": proxy}
    finally:
        if prom is not None:
            prom.stop()
        proxy.stop()


def _series(prom: Prometheus, job: str) -> dict[tuple, float]:
    """{sorted labels without job and instance, __name__ included: value} of every series of
    the job at its latest scrape."""
    result = prom.query(f'{{job="{job}"}}')["data"]["result"]
    return {tuple(sorted((k, v) for k, v in s["metric"].items() if k not in ("job", "instance"))):
            float(s["value"][1]) for s in result}


def test_prometheus_scrapes_both_formats(both_formats):
    prom, proxy, daemon = both_formats["prometheus"], both_formats["proxy"], both_formats["daemon"]
    targets = {t["labels"]["job"]: t for t in prom.api("/api/v1/targets")["data"]["activeTargets"]}
    assert set(targets) == {OPENMETRICS_JOB, TEXT_004_JOB}
    for job, target in targets.items():
        assert (target["health"], target["lastError"]) == ("up", ""), target
        assert _single_value(prom, f'up{{job="{job}"}}') == 1

    # The proxy really served 0.0.4: Prometheus asked it for OpenMetrics, the daemon answered
    # the rewritten header with 0.0.4 every time.
    exchanges = list(proxy.exchanges)
    assert len(exchanges) >= 3, exchanges
    assert {e["accept"] for e in exchanges} == {PROMETHEUS_ACCEPT}
    assert {(e["status"], e["content-type"]) for e in exchanges} == {(200, TEXT_004_TYPE)}
    encodings = {e["content-encoding"] for e in exchanges}
    print(f"\nproxy: {len(exchanges)} scrapes forwarded; the daemon answered "
          f"{TEXT_004_TYPE!r}, Content-Encoding {sorted(map(str, encodings))}")

    # The same series in both jobs (synthetic up and scrape_* series included) ...
    def same_series():
        om, text = _series(prom, OPENMETRICS_JOB), _series(prom, TEXT_004_JOB)
        return (om, text) if set(om) == set(text) else None

    try:
        om, text = wait_for("the same series in both jobs", same_series, 10, interval_s=0.5)
    except AssertionError:
        om, text = _series(prom, OPENMETRICS_JOB), _series(prom, TEXT_004_JOB)
        raise AssertionError(f"only OpenMetrics: {sorted(set(om) - set(text))}\n"
                             f"only 0.0.4: {sorted(set(text) - set(om))}") from None
    names = {dict(k)["__name__"] for k in om}
    print(f"both jobs: {len(om)} series of {len(names)} metric names")
    # ... among them the offset of every server that has one, the HTTP request counter and
    # the process start time, the latter equal in both (one daemon).
    offsets = {dict(k)["server"] for k in om if dict(k)["__name__"] ==
               "ntp_monitor_server_offset_seconds"}
    assert offsets and offsets <= set(FLEET), offsets
    assert (("__name__", "ntp_monitor_http_requests_total"),) in om
    start = {job: _single_value(prom, f'process_start_time_seconds{{job="{job}"}}')
             for job in (OPENMETRICS_JOB, TEXT_004_JOB)}
    assert start[OPENMETRICS_JOB] == start[TEXT_004_JOB], start

    # Each job was parsed by its own parser: counter metadata is keyed by `..._total` from
    # 0.0.4, by the family name without it from OpenMetrics.
    def metadata(job: str, metric: Optional[str] = None) -> list[dict]:
        params = {"match_target": f'{{job="{job}"}}'}
        if metric:
            params["metric"] = metric
        return prom.api("/api/v1/targets/metadata", **params)["data"]

    for family in ("ntp_monitor_http_requests", "ntp_monitor_requests", "process_cpu_seconds"):
        assert [m["type"] for m in metadata(OPENMETRICS_JOB, family)] == ["counter"], family
        assert metadata(OPENMETRICS_JOB, family + "_total") == [], family
        assert [m["type"] for m in metadata(TEXT_004_JOB, family + "_total")] == ["counter"]
        assert metadata(TEXT_004_JOB, family) == [], family
    om_counters = {m["metric"] for m in metadata(OPENMETRICS_JOB) if m["type"] == "counter"}
    text_counters = {m["metric"] for m in metadata(TEXT_004_JOB) if m["type"] == "counter"}
    assert om_counters and not any(c.endswith("_total") for c in om_counters), om_counters
    assert text_counters == {c + "_total" for c in om_counters}
    # Every other family has the same metadata in both.
    assert ({(m["metric"], m["type"], m["help"]) for m in metadata(OPENMETRICS_JOB)
             if m["type"] != "counter"} ==
            {(m["metric"], m["type"], m["help"]) for m in metadata(TEXT_004_JOB)
             if m["type"] != "counter"})

    # The same number of samples per scrape: `# EOF` and metadata lines are no samples.
    scraped = {job: _single_value(prom, f'scrape_samples_scraped{{job="{job}"}}')
               for job in (OPENMETRICS_JOB, TEXT_004_JOB)}
    print(f"scrape_samples_scraped: {scraped}")
    assert scraped[OPENMETRICS_JOB] == scraped[TEXT_004_JOB] > 100, scraped


# ----------------------------------------------------------------------------------------
# A strict OpenMetrics 1.0 parser besides promtool: python3-prometheus-client's


def _parsers():
    openmetrics = pytest.importorskip(
        "prometheus_client.openmetrics.parser",
        reason="python3-prometheus-client not installed (scripts/install-deps)")
    text_004 = pytest.importorskip("prometheus_client.parser")
    return openmetrics.text_string_to_metric_families, text_004.text_string_to_metric_families


def _types(text: str) -> dict[str, str]:
    """family -> type of every TYPE line."""
    return {line.split()[2]: line.split()[3] for line in text.splitlines()
            if line.startswith("# TYPE ")}


def test_openmetrics_parser_accepts_both_formats(stack):
    only_standard(stack)
    parse_openmetrics, parse_004 = _parsers()
    daemon = stack["daemon"]
    status, headers, body = http_get(daemon.metrics_port, "/metrics",
                                     headers={"Accept": PROMETHEUS_ACCEPT})
    assert (status, headers["content-type"]) == (200, OPENMETRICS_TYPE)
    text = body.decode()

    # Every family, fully: the generator raises on the first line it rejects.
    families = list(parse_openmetrics(text))
    declared = _types(text)
    assert [f.name for f in families] == list(declared)
    assert {f.name: f.type for f in families} == declared
    counters = [f for f in families if f.type == "counter"]
    assert counters
    for family in counters:
        assert not family.name.endswith("_total"), family.name
        assert {s.name for s in family.samples} <= {family.name + "_total"}, family
    samples_om = {(s.name, tuple(sorted(s.labels.items()))) for f in families for s in f.samples}
    assert len(samples_om) == sum(len(f.samples) for f in families)  # no duplicate series
    print(f"\nOpenMetrics parser: {len(families)} families ({len(counters)} counters), "
          f"{len(samples_om)} samples")

    # A response cut before `# EOF` is rejected.
    lines = text.splitlines(keepends=True)
    assert lines[-1] == "# EOF\n"
    with pytest.raises(ValueError, match="EOF"):
        list(parse_openmetrics("".join(lines[:-1])))

    # 0.0.4 with the 0.0.4 parser: the same families (it too names a counter family without
    # _total) and the same series.
    status, headers, body = http_get(daemon.metrics_port, "/metrics")
    assert (status, headers["content-type"]) == (200, TEXT_004_TYPE)
    families_004 = list(parse_004(body.decode()))
    assert {f.name: f.type for f in families_004} == declared
    samples_004 = {(s.name, tuple(sorted(s.labels.items())))
                   for f in families_004 for s in f.samples}
    assert samples_004 == samples_om


# ----------------------------------------------------------------------------------------
# Live: two vantages watching the same server names, one Prometheus over both

# Per vantage, which simulator (or closed port) stands behind each server name. s1: 2 ms off
# seen from eu, 6 ms from us (one site's path or clock differs), median 4 ms. s2: answers eu;
# us cannot reach it (nothing listens on its port), so it is unreachable from half of them.
VANTAGE_OFFSETS = {"eu": 0.002, "us": 0.006}


def _knows_vantage(binary: Path, workdir: Path) -> bool:
    config = workdir / "vantage-probe.yaml"
    config.write_text("vantage: probe\nservers:\n  - host: 127.0.0.1\n")
    out = peers.run_monitor(["check-config", str(config)], timeout_s=30, binary=binary)
    return out.returncode == 0


@pytest.fixture(scope="module")
def vantages(tmp_path_factory, monitor):
    if not Path(PROMETHEUS).exists():
        pytest.skip("prometheus not installed (Debian package prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus-vantages")
    if not _knows_vantage(monitor, workdir):
        pytest.skip(f"{monitor} does not know `vantage:` yet (issue 16's daemon part)")
    peers_started = []
    try:
        sims = {}
        for vantage, offset in VANTAGE_OFFSETS.items():
            sims[vantage] = peers.Simulator(workdir / f"sim-{vantage}",
                                            args=("--offset", str(offset))).start()
            peers_started.append(sims[vantage])
        closed_port = peers.free_udp_port()
        daemons = {}
        for vantage, sim in sims.items():
            s2 = (f"{{name: s2, host: '{sims['eu'].address}', port: {sims['eu'].port}, poll: 1}}"
                  if vantage == "eu" else f"{{name: s2, host: 127.0.0.1, port: {closed_port}, poll: 1}}")
            config = (f"vantage: {vantage}\nservers:\n"
                      f"  - {{name: s1, host: '{sim.address}', port: {sim.port}, poll: 1}}\n"
                      f"  - {s2}\n")
            daemons[vantage] = Daemon(workdir / f"daemon-{vantage}", config).start()
            peers_started.append(daemons[vantage])
        prom = Prometheus(workdir / "prometheus",
                          [f"127.0.0.1:{d.metrics_port}" for d in daemons.values()],
                          [RULES]).start()
        peers_started.append(prom)
        yield {"prometheus": prom, "daemons": daemons}
    finally:
        for peer in reversed(peers_started):
            peer.stop()


def _by_server(prom: Prometheus, expr: str) -> dict[str, float]:
    result = prom.query(expr)["data"]["result"]
    return {s["metric"]["server"]: float(s["value"][1]) for s in result}


def test_rules_across_vantages(vantages):
    prom: Prometheus = vantages["prometheus"]
    # Each daemon labels its per-server series with its vantage.
    wanted = {("eu", "s1"), ("eu", "s2"), ("us", "s1"), ("us", "s2")}
    wait_for("both daemons scraped", lambda: {
        (s["metric"].get("vantage"), s["metric"]["server"])
        for s in prom.query("ntp_monitor_server_up")["data"]["result"]} == wanted,
        30, interval_s=0.5)

    def state() -> tuple[dict, dict, dict]:
        return (_by_server(prom, "server:ntp_monitor_server_offset_seconds:median_over_vantages"),
                _by_server(prom, "server:ntp_monitor_server_unreachable_vantages:ratio"),
                _by_server(prom, "server:ntp_monitor_vantages:count"))

    def settled() -> bool:
        median, ratio, count = state()
        return ("s1" in median and abs(median["s1"] - 0.004) < 0.001
                and ratio == {"s1": 0, "s2": 0.5} and count == {"s1": 2, "s2": 2})

    try:
        wait_for("the rules across vantages", settled, 30, interval_s=1)
    finally:
        median, ratio, count = state()
        print(f"\nmedian offset over vantages: {median}; unreachable share: {ratio}; "
              f"vantages: {count}")
    # s1: the mean of eu's 2 ms and us's 6 ms (above). s2 answers eu only: its median is eu's.
    assert "s2" in median and abs(median["s2"] - VANTAGE_OFFSETS["eu"]) < 0.001, median

    # Unreachable from half of two vantages: the alert is on its way (for: 5m), for s2 alone;
    # each site's own NtpServerUnreachable for s2 comes from us only.
    def pending():
        alerts = prom.api("/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] ==
                "NtpServerUnreachableFromMajority"] or None

    [alert] = wait_for("NtpServerUnreachableFromMajority pending", pending, 30, interval_s=1)
    assert alert["state"] == "pending"
    assert alert["labels"] == {
        "alertname": "NtpServerUnreachableFromMajority", "job": "ntp-monitor", "server": "s2",
        "severity": "critical"}
    assert float(alert["value"]) == 0.5
    unreachable = [a["labels"] for a in prom.api("/api/v1/alerts")["data"]["alerts"]
                   if a["labels"]["alertname"] == "NtpServerUnreachable"]
    assert [(a["server"], a["vantage"]) for a in unreachable] == [("s2", "us")], unreachable
