"""The dashboard's fleet view against a daemon watching 2,000 servers, in a real browser.

Real processes on loopback: one `ntp-monitor simulate` answers 1,960 servers on 127.1.x.y, a
second one at +0.5 s answers 20 "liar" servers on 127.2.0.x (falsetickers against the 1,960),
and 20 "dead" servers on 127.3.0.x point at a UDP port nobody listens on (unreachable). The
daemon lists them through `server_lists:` and serves its dashboard; Debian's Chromium opens it
through tests/integration/web/dashboard_driver.js and does what a person would: search, sort by
offset, filter by state and by alert, page on, and click a server to chart it. The test checks
that the summary is drawn from /api/v1/summary, that the table never holds more than a page of
rows, that each control changes the rows as the daemon's filters say, that the picked server is
charted, and that a refresh asks for the summary and one page, never for the whole fleet.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import peers
from helpers import wait_for
from test_dashboard import driver_modules, run_driver  # noqa: F401  (driver_modules: fixture)

GOOD, LIARS, DEAD = 1960, 20, 20
PAGE = 50  # the page's default page size
HALF_SECOND = r"\+(499|500|501) ms"


def write_lists(workdir: Path, good_port: int, liar_port: int, dead_port: int) -> str:
    """The server list files and the configuration naming them."""
    good = "".join(f"127.1.{i // 250}.{i % 250 + 1} node-{i:04d}\n" for i in range(GOOD))
    liars = "".join(f"127.2.0.{i + 1} liar-{i:02d}\n" for i in range(LIARS))
    dead = "".join(f"127.3.0.{i + 1} dead-{i:02d}\n" for i in range(DEAD))
    for name, text in (("good.txt", good), ("liars.txt", liars), ("dead.txt", dead)):
        (workdir / name).write_text(text)
    return ("servers: []\n"
            "server_lists:\n"
            f"  - {{path: {workdir / 'good.txt'}, port: {good_port}}}\n"
            f"  - {{path: {workdir / 'liars.txt'}, port: {liar_port}}}\n"
            f"  - {{path: {workdir / 'dead.txt'}, port: {dead_port}}}\n"
            "poll: {min: 1, max: 1}\n")


def test_fleet_of_2000_servers_in_the_dashboard(daemon, simulator, driver_modules,  # noqa: F811
                                                tmp_path):
    good = simulator(listen="0.0.0.0:0")
    liar = simulator("--offset", "0.5", listen="0.0.0.0:0")
    d = daemon(write_lists(tmp_path, good.port, liar.port, peers.free_udp_port()))

    def settled():
        s = d.api("/api/v1/summary")
        st = s["states"]
        return s if (s["entries"] == GOOD + LIARS + DEAD and st["falseticker"] == LIARS
                     and st["unreachable"] == DEAD and st["selected"] == 1
                     and st["pending"] == 0) else None

    summary = wait_for("2,000 servers polled, liars marked falsetickers, dead unreachable",
                       settled, 60, interval_s=0.5)
    started = time.monotonic()
    report = run_driver(
        driver_modules, tmp_path, f"http://127.0.0.1:{d.api_port}/",
        {"servers": ["node-0000"], "charts": False}, history_screenshot=False,
        actions_screenshot=str(tmp_path / "dashboard-fleet.png"),
        actions=[
            {"do": "search", "value": "liar-1"},
            {"do": "clear"},
            {"do": "sort", "value": "abs_offset"},
            {"do": "clear"},
            {"do": "filter_state", "value": "unreachable"},
            {"do": "clear"},
            {"do": "state_count", "value": "falseticker"},
            {"do": "clear"},
            {"do": "filter_alert", "value": "falseticker"},
            {"do": "clear"},
            {"do": "next_page"},
            {"do": "pick", "value": "node-0060", "min_points": 2},
        ])
    print(f"ready after {report['readyAfterMs']} ms; actions (ms): "
          f"{[(a['action']['do'], a.get('ms')) for a in report['actions']]}")
    print(f"browser part: {time.monotonic() - started:.1f} s; "
          f"screenshot: {tmp_path / 'dashboard-fleet.png'}")
    assert report["ready"], report.get("readyError")
    assert report["pageErrors"] == [] and report["failedRequests"] == []
    assert [e for e in report["consoleErrors"] if "Content Security Policy" in e] == []
    assert [r for r in report["badResponses"] if "/history" not in r] == []
    live = report["live"]
    assert live["firstRenderMark"] == 1

    # The summary: counts by state and by alert kind as the daemon has them, histograms drawn.
    fleet = live["fleet"]
    assert fleet["states"]["falseticker"] == LIARS and fleet["states"]["unreachable"] == DEAD
    assert fleet["states"]["selected"] == 1
    assert sum(fleet["states"].values()) == GOOD + LIARS + DEAD
    assert fleet["alerts"]["falseticker"] == LIARS
    assert fleet["alerts"]["unreachable"] == summary["alerts"]["unreachable"]
    offset_hist = fleet["histograms"]["offset"]
    # Every server with an offset is in a bar; the dead ones have none.
    assert offset_hist["servers"] == GOOD + LIARS, offset_hist
    assert offset_hist["pixels"] > 100 and fleet["histograms"]["delay"]["pixels"] > 100
    assert fleet["histograms"]["delay"]["servers"] == GOOD + LIARS
    # Worst offsets: the liars, +0.5 s.
    assert len(fleet["worst"]) == 10
    assert all(w["server"].startswith("liar-") and re.fullmatch(HALF_SECOND, w["offset"])
               for w in fleet["worst"]), fleet["worst"]
    assert live["cards"]["card-servers"]["value"] == f"{GOOD + LIARS} / {GOOD + LIARS + DEAD}"

    # The table: one page in the DOM, configuration order, a pager for the rest.
    table = live["table"]
    names = [r["server"] for r in live["rows"]]
    assert table["domRows"] == PAGE and names == [f"node-{i:04d}" for i in range(PAGE)]
    assert table["pageInfo"] == f"1–{PAGE} of {GOOD + LIARS + DEAD}" and not table["pagerHidden"]

    steps = {i: a for i, a in enumerate(report["actions"])}
    assert all("error" not in a for a in report["actions"]), report["actions"]

    def rows(i):
        return [r["server"] for r in steps[i]["rows"]]

    # Search: the daemon's substring match, the 10 liars liar-10..19.
    assert sorted(rows(0)) == [f"liar-1{i}" for i in range(10)]
    assert all(r["state"] == "falseticker" for r in steps[0]["rows"])
    assert steps[0]["table"]["hint"].startswith(f"10 of {GOOD + LIARS + DEAD} match")
    assert rows(1) == names  # cleared: the first page again
    # Sort by |offset|, largest first: the 20 liars lead, each at +0.5 s.
    assert steps[2]["table"]["sorted"] == ["abs_offset descending"]
    assert all(n.startswith("liar-") for n in rows(2)[:LIARS]), rows(2)[:25]
    assert not any(n.startswith("liar-") for n in rows(2)[LIARS:])
    assert re.fullmatch(HALF_SECOND, steps[2]["rows"][0]["cells"][3])
    # Filter by state (the select, then the state count button): exactly the dead / the liars.
    assert sorted(rows(4)) == [f"dead-{i:02d}" for i in range(DEAD)]
    assert all(r["state"] == "unreachable" for r in steps[4]["rows"])
    assert sorted(rows(6)) == [f"liar-{i:02d}" for i in range(LIARS)]
    # Filter by alert kind: the liars again, each with its falseticker alert chip.
    assert sorted(rows(8)) == [f"liar-{i:02d}" for i in range(LIARS)]
    assert all("falseticker" in r["alerts"] for r in steps[8]["rows"])
    for i in (4, 6, 8):
        assert steps[i]["table"]["pagerHidden"]
    # Next page: the following 50 servers, still one page in the DOM.
    assert rows(10) == [f"node-{i:04d}" for i in range(PAGE, 2 * PAGE)]
    assert steps[10]["table"]["domRows"] == PAGE
    # A click on a row charts that server (and the selected source), not the fleet.
    picked = steps[11]
    assert "node-0060" in picked["table"]["charted"]
    for metric in ("offset", "delay"):
        labels = [s["label"] for s in picked["charts"][metric]["series"]]
        assert "node-0060" in labels and len(labels) <= 2, labels
        node = next(s for s in picked["charts"][metric]["series"] if s["label"] == "node-0060")
        assert node["points"] >= 2 and node["pixels"] > 0, node

    # What the page asked for: the summary and pages of at most 50, never the whole list
    # (no /servers without limit) and no /selection (its name lists grow with the fleet).
    api = report["apiRequests"]
    assert any(p.startswith("/api/v1/summary") for p in api)
    server_pages = [p for p in api if p.startswith("/api/v1/servers?")]
    assert server_pages and all(f"limit={PAGE}" in p for p in server_pages), server_pages[:5]
    assert not [p for p in api if p in ("/api/v1/servers", "/api/v1/selection")]
    assert all(p.startswith(("/api/v1/summary", "/api/v1/servers?", "/api/v1/alerts?limit=",
                             "/api/v1/servers/")) for p in api), sorted(set(api))
    # History only for charted servers: the picked one and the selected source (which moves
    # among 1,960 equal servers), at most one request each per refresh.
    histories = [p.split("/history")[0].rsplit("/", 1)[1] for p in api if "/history" in p]
    assert "node-0060" in histories
    assert all(n.startswith("node-") for n in histories), set(histories)
    refreshes = sum(p.startswith("/api/v1/summary") for p in api)
    assert len(histories) <= 2 * refreshes, (len(histories), refreshes)
