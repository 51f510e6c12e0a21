"""The built-in web dashboard, served by the daemon, in a real headless browser.

Real binary, real page: four simulators on loopback (three at offset 0, one at +0.5 s), the
daemon polling them every second and serving its embedded dashboard and JSON API, and Debian's
Chromium driven by playwright-core (tests/integration/web/dashboard_driver.js) with a fresh
profile and every background-network feature off. The test reads back what a person would
see: the server table with each state, the falseticker marked, charts that drew points, the
selection panel; it saves screenshots into its temporary directory and prints their paths.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import helpers
import peers
from helpers import POLL_S, Daemon, fleet_config, http_get, wait_for

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path(__file__).resolve().parent / "web" / "dashboard_driver.js"
WEB_SOURCE = peers.REPO / "web"


@pytest.fixture
def dashboard(daemon):
    """Factory: dashboard(simulators by name) starts the daemon polling them (helpers.Daemon)."""
    return lambda servers: daemon(fleet_config(servers))


def requests_total(d: Daemon, server: str) -> float:
    value = helpers.metric(d.metrics_text(), "ntp_monitor_requests_total", server=server)
    assert value is not None, f"no ntp_monitor_requests_total for {server}"
    return value


@pytest.fixture(scope="session")
def driver_modules(tmp_path_factory) -> Path:
    """node_modules holding playwright-core: the build's (target ntpmon_web_test_driver) if it
    was built, else a fresh `npm ci` of web/package-lock.json into a temporary directory."""
    if shutil.which("node") is None:
        pytest.skip("node not installed (scripts/install-deps installs nodejs)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing (scripts/install-deps installs chromium)")
    built = peers.build_dir() / "web" / "test-driver" / "node_modules"
    if (built / "playwright-core" / "package.json").is_file():
        return built
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm not installed and the ntpmon_web_test_driver target not built")
    workdir = tmp_path_factory.mktemp("dashboard-driver")
    for name in ("package.json", "package-lock.json", ".npmrc"):
        shutil.copy(WEB_SOURCE / name, workdir / name)
    out = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                          "--loglevel=error"], cwd=workdir, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"npm ci failed:\n{out.stdout}\n{out.stderr}"
    return workdir / "node_modules"


def run_driver(modules: Path, workdir: Path, url: str, expect: dict,
               history_screenshot: bool = True, **extra) -> dict:
    """Runs web/dashboard_driver.js; `extra` goes into its configuration (actions, ...)."""
    config = {
        "url": url,
        "node_modules": str(modules),
        "chromium": str(CHROMIUM),
        "user_data_dir": str(workdir / "chromium-profile"),
        "screenshot": str(workdir / "dashboard-live.png"),
        "history_screenshot": str(workdir / "dashboard-1h.png") if history_screenshot else None,
        "expect": expect,
        "timeout_ms": 45000,
        **extra,
    }
    out = subprocess.run(["node", str(DRIVER), json.dumps(config)], capture_output=True,
                         text=True, timeout=150, preexec_fn=peers._child_setup)
    assert out.returncode == 0, f"driver failed:\n{out.stderr}"
    print(f"dashboard screenshot: {config['screenshot']}")
    if history_screenshot:
        print(f"dashboard screenshot (1 h window): {config['history_screenshot']}")
    return json.loads(out.stdout.splitlines()[-1])


def test_daemon_serves_the_embedded_dashboard(dashboard, simulator):
    d = dashboard({"a": simulator()})
    status, headers, body = http_get(d.api_port, "/")
    assert status == 200, body[:200]
    assert headers["content-type"].startswith("text/html")
    # Byte for byte the page in the source tree: the binary needs no file on disk.
    assert body == (WEB_SOURCE / "index.html").read_bytes()
    assert http_get(d.api_port, "/assets/app.js")[2] == (WEB_SOURCE / "app.js").read_bytes()
    expected_types = {
        "/assets/app.js": "text/javascript", "/assets/style.css": "text/css",
        "/assets/uPlot.iife.min.js": "text/javascript", "/assets/uPlot.min.css": "text/css",
        "/assets/favicon.svg": "image/svg+xml",
    }
    for path, content_type in expected_types.items():
        status, headers, body = http_get(d.api_port, path)
        assert status == 200, path
        assert headers["content-type"].split(";")[0].strip() == content_type, path
        assert body, path
    assert http_get(d.api_port, "/assets/uPlot.iife.min.js")[2].startswith(b"/*! ")
    assert http_get(d.api_port, "/assets/nope.js")[0] == 404


def test_dashboard_shows_fleet_falseticker_and_charts(dashboard, simulator, driver_modules,
                                                      tmp_path):
    sims = {name: simulator() for name in ("a", "b", "c")}
    sims["liar"] = simulator("--offset", "0.5")
    d = dashboard(sims)
    status = http_get(d.api_port, "/")[0]
    assert status == 200, (f"the daemon does not serve the dashboard page at / (HTTP {status}): "
                           "its dashboard port must route ntpmon_web_assets")
    wait_for("the liar marked a falseticker by the daemon",
             lambda: d.servers()["liar"]["state"] == "falseticker", 20)
    # Three polls of history for the live charts before the browser opens.
    time.sleep(3 * POLL_S)

    report = run_driver(driver_modules, tmp_path, f"http://127.0.0.1:{d.api_port}/",
                        {"servers": list(sims), "states": {"liar": "falseticker"},
                         "min_chart_points": 3})
    api = d.servers()
    live = report["live"]
    assert report["ready"], (report.get("readyError"), live["rows"])
    assert report["pageErrors"] == []
    # The page keeps to its Content-Security-Policy (default-src 'self': no inline code).
    assert [e for e in report["consoleErrors"] if "Content Security Policy" in e] == []
    # Every asset came from the binary; only optional API routes may be missing (404/503).
    assert [r for r in report["badResponses"] if "/api/v1/" not in r] == []
    assert report["failedRequests"] == []
    assert live["connection"] == "live" and live["banner"] is None

    # The table: every server, in configuration order, with the daemon's state.
    rows = {r["server"]: r for r in live["rows"]}
    assert [r["server"] for r in live["rows"]] == ["a", "b", "c", "liar"]
    for name in ("a", "b", "c"):
        assert rows[name]["state"] in ("selected", "candidate"), rows[name]
        assert rows[name]["state"] == api[name]["state"]
        assert rows[name]["badge"] == rows[name]["state"]
        # Loopback: the offset is microseconds, shown with a µs or ns unit.
        assert re.fullmatch(r"[+\u2212]?\d+(\.\d+)? (µs|ns)|0 s", rows[name]["cells"][3]), \
            rows[name]["cells"]
        assert rows[name]["level"] in (None, "ok")
    selected = [r["server"] for r in live["rows"] if r["selected"]]
    assert len(selected) == 1 and selected[0] in ("a", "b", "c")
    assert rows[selected[0]]["state"] == "selected" and "★" in rows[selected[0]]["cells"][10]

    # The falseticker is marked: badge, red row, red offset with its alert.
    liar = rows["liar"]
    assert liar["state"] == "falseticker" and liar["badge"] == "falseticker"
    assert liar["level"] == "bad"
    assert liar["badgeColor"] == "rgb(248, 81, 73)"
    assert re.fullmatch(r"\+(499|500|501) ms", liar["cells"][3]), liar["cells"]
    assert "offset" in liar["alerts"] and liar["offsetAlerting"]
    assert liar["cells"][6] == "2"  # the simulator's stratum
    assert liar["cells"][7].endswith("377")  # reach: every poll answered
    assert "liar" in live["selection"]["falsetickers"]
    assert "1 falseticker" in live["cards"]["card-servers"]["sub"]
    assert live["cards"]["card-selected"]["value"] == selected[0]

    # The charts drew points for every server; the liar's line (alone at +0.5 s) is visible.
    for metric in ("offset", "delay"):
        chart = live["charts"][metric]
        assert chart["x"] >= 3, chart
        series = {s["label"]: s for s in chart["series"]}
        assert set(series) == {"a", "b", "c", "liar (falseticker)"}
        for s in series.values():
            assert s["points"] >= 3, (metric, s)
        assert chart["width"] > 400 and chart["height"] == 300
    liar_series = next(s for s in live["charts"]["offset"]["series"] if s["label"].startswith("liar"))
    assert liar_series["pixels"] > 50, liar_series
    assert sum(s["pixels"] for s in live["charts"]["delay"]["series"]) > 100

    # The fleet view above the table (api/v1/summary): counts by state as the table shows
    # them, the falseticker's alert counted, every server in the offset histogram, the liar
    # the worst offset; the summary and the table page were drawn (first-render mark).
    fleet = live["fleet"]
    table_states = [r["state"] for r in live["rows"]]
    assert {k: v for k, v in fleet["states"].items() if v} == \
        {st: table_states.count(st) for st in set(table_states)}
    assert fleet["alerts"]["falseticker"] == 1
    assert fleet["histograms"]["offset"]["servers"] == 4
    assert fleet["histograms"]["offset"]["pixels"] > 50
    assert fleet["histograms"]["delay"]["servers"] == 4
    assert fleet["worst"][0]["server"] == "liar"
    assert live["firstRenderMark"] == 1
    # 4 servers: one page, no pager, nothing filtered; every row charted as before.
    assert live["table"]["domRows"] == 4 and live["table"]["pagerHidden"]
    assert sorted(live["table"]["charted"]) == ["a", "b", "c", "liar"]
    # A refresh asks for the summary, one page and bounded lists, never the unbounded list.
    api_paths = set(report["apiRequests"])
    assert "/api/v1/summary" in api_paths and "/api/v1/servers?limit=50" in api_paths
    assert "/api/v1/servers" not in api_paths and "/api/v1/alerts" not in api_paths

    # The 1 h window: history points, or a visible note saying why there are none.
    history = report["history"]
    assert history["window"] == "1h"
    history_points = sum(s["points"] for s in history["charts"]["offset"]["series"])
    assert history_points > 0 or "History" in (history["chartNote"] or ""), history


def test_fifty_dashboards_do_not_disturb_probing(dashboard, simulator):
    """50 open pages poll /summary, a page of /servers, /selection and /alerts every 2 s each;
    the daemon keeps probing at its 1 s poll and every page request is answered."""
    sims = {"a": simulator(), "b": simulator()}
    d = dashboard(sims)
    wait_for("a polled", lambda: d.servers()["a"]["reach"] >= 3, 15)
    stop = threading.Event()
    answered: list[int] = []
    errors: list[str] = []

    def page(offset_s: float) -> None:
        time.sleep(offset_s)
        while not stop.is_set():
            # What one refresh of the page asks for at this fleet size (web/app.js).
            for path in ("/api/v1/summary", "/api/v1/servers?limit=50", "/api/v1/selection",
                         "/api/v1/alerts?limit=50"):
                try:
                    answered.append(http_get(d.api_port, path)[0])
                except OSError as e:
                    errors.append(f"{path}: {e}")
            stop.wait(2.0)

    before = requests_total(d, "a")
    started = time.monotonic()
    pages = [threading.Thread(target=page, args=(i * 2.0 / 50,), daemon=True) for i in range(50)]
    for t in pages:
        t.start()
    time.sleep(8)
    stop.set()
    for t in pages:
        t.join(10)
    elapsed_s = time.monotonic() - started
    probes = requests_total(d, "a") - before
    assert errors == []
    assert len(answered) >= 50 * 4 * 3  # at least 3 rounds per page
    assert set(answered) == {200}
    # 1 s poll: about one probe per second kept going under the page load.
    assert probes >= elapsed_s / POLL_S - 2, (probes, elapsed_s)
    assert d.servers()["a"]["state"] in ("selected", "candidate")
