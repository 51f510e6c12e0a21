"""GET /api/v1/servers in pages and GET /api/v1/summary against the real daemon (docs/API.md).

A fleet of 148 entries on loopback answered by `ntp-monitor simulate`: 140 honest names on one
simulator, 4 on a simulator 0.5 s off (falsetickers), 3 on one that answers with a RATE kiss,
one on a port nobody answers. The tests walk every page with a small limit in several sorts
and filters (the union is the fleet, nothing twice), check the summary's counts against the
pages, and the 400 answers.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

import peers
from helpers import Daemon, fleet_config, http_get, wait_for

HONEST = [f"ok-{i:03d}" for i in range(140)]
LIARS = [f"liar-{i}" for i in range(4)]
KOD = [f"rate-{i}" for i in range(3)]
SILENT = ["silent"]
ALL = HONEST + LIARS + KOD + SILENT
STATES = ("selected", "candidate", "falseticker", "unreachable", "unsynchronized", "kod",
          "pending", "auth_failed")


def get(d: Daemon, path: str, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode(params, doseq=True)
    status, headers, body = http_get(d.api_port, path + (f"?{query}" if query else ""))
    assert headers["content-type"] == "application/json; charset=utf-8"
    return status, json.loads(body)


def ok(d: Daemon, path: str, **params) -> dict:
    status, body = get(d, path, **params)
    assert status == 200, (path, params, body)
    return body


def walk(d: Daemon, limit: int, **params) -> tuple[list[dict], int]:
    """Every entry, following next_cursor; also the number of pages."""
    entries: list[dict] = []
    cursor = None
    pages = 0
    while True:
        extra = {"cursor": cursor} if cursor else {}
        body = ok(d, "/api/v1/servers", limit=limit, **params, **extra)
        pages += 1
        assert len(body["servers"]) <= limit
        entries += body["servers"]
        cursor = body["next_cursor"]
        if cursor is None:
            return entries, pages
        assert len(body["servers"]) == limit  # only the last page is short
        assert pages < 1000


def settled(d: Daemon) -> bool:
    entries, _ = walk(d, 1000)
    states = {e["name"]: e["state"] for e in entries}
    return (sum(s == "selected" for s in states.values()) == 1
            and all(states[n] == "falseticker" for n in LIARS)
            and all(states[n] == "kod" for n in KOD)
            and states["silent"] == "unreachable")


@pytest.fixture(scope="module")
def fleet_daemon(tmp_path_factory, monitor):
    """One daemon and its simulators for the whole file (settling takes a few seconds)."""
    workdir = tmp_path_factory.mktemp("paging")
    sims = [peers.Simulator(workdir / f"sim{i}", args=args)
            for i, args in enumerate(((), ("--offset", "0.5"), ("--kiss", "RATE")))]
    d = Daemon(workdir / "daemon", "")
    try:
        honest, liar, rate = (s.start() for s in sims)
        targets = {n: honest for n in HONEST}
        targets.update({n: liar for n in LIARS})
        targets.update({n: rate for n in KOD})
        targets["silent"] = ("127.0.0.1", peers.free_udp_port())  # nobody answers there
        d.config_path.write_text(fleet_config(targets))
        d.start()
        wait_for("selection, falsetickers, kod and unreachable settled", lambda: settled(d), 30)
        yield d
    finally:
        d.stop()
        for s in sims:
            s.stop()


def test_pages_cover_the_fleet_in_every_sort(fleet_daemon):
    d = fleet_daemon
    expected = sorted(ALL)
    for sort in (None, "name", "-name", "offset", "-offset", "abs_offset", "-abs_offset", "delay",
                 "-delay", "jitter", "-jitter", "stratum", "-stratum", "state", "-state",
                 "last_sample", "-last_sample"):
        params = {"sort": sort} if sort else {}
        entries, pages = walk(d, 7, **params)
        names = [e["name"] for e in entries]
        if sort is None or sort.lstrip("-") in ("name", "stratum", "state"):
            # Values that do not change once settled: every entry once, no duplicate, no gap.
            assert sorted(names) == expected, sort
            assert pages == (len(ALL) + 6) // 7, sort
        else:
            # Measured values change at every poll and the pages come from successive
            # snapshots: an entry may be seen twice or not at all only if it moved itself
            # (then its value differs), never one whose value stays (the unmeasured ones).
            key = sort.lstrip("-")
            field = {"abs_offset": "offset", "last_sample": "last_sample_unix"}.get(key, key)
            seen: dict = {}
            for e in entries:
                if e["name"] in seen:
                    assert seen[e["name"]] != e[field], (sort, e["name"])
                seen[e["name"]] = e[field]
            assert set(KOD + SILENT) <= set(seen), sort
            assert len(set(ALL) - set(seen)) <= len(ALL) // 4, (sort, set(ALL) - set(seen))
        if sort is None:
            assert names == ALL  # configuration order
        if sort == "name":
            assert names == expected
        if sort == "-name":
            assert names == expected[::-1]
        if sort in ("offset", "-offset", "abs_offset", "-abs_offset"):
            # Measured ones in order of the sort, then the never measured ones (the silent one
            # and those answering with a kiss), by name.
            key = (lambda e: abs(e["offset"])) if "abs" in sort else (lambda e: e["offset"])
            measured = [e for e in entries if e["offset"] is not None]
            assert entries[len(measured):] == [e for e in entries if e["offset"] is None]
            values = [key(e) for e in measured]
            # Successive pages may come from successive snapshots: the order holds within each.
            assert values[:7] == sorted(values[:7], reverse=sort.startswith("-")), sort
            assert names[len(measured):] == sorted(KOD + SILENT), sort  # nulls last, by name
            # The liars are 0.5 s off, far from the rest: first (descending) or last measured.
            liars = names[:4] if sort.startswith("-") else names[len(measured) - 4:len(measured)]
            assert sorted(liars) == LIARS, (sort, names)


def test_filters_and_totals(fleet_daemon):
    d = fleet_daemon
    body = ok(d, "/api/v1/servers", state=["falseticker", "kod"], limit=2)
    assert body["total"] == len(LIARS) + len(KOD)
    assert len(body["servers"]) == 2 and body["next_cursor"]
    entries, _ = walk(d, 2, state=["falseticker", "kod"])
    assert sorted(e["name"] for e in entries) == sorted(LIARS + KOD)
    # q: case-insensitive substring of the name (and host and address).
    entries, _ = walk(d, 3, q="LIAR-", sort="-name")
    assert [e["name"] for e in entries] == sorted(LIARS, reverse=True)
    assert ok(d, "/api/v1/servers", q="127.0.0.1")["total"] == len(ALL)
    assert ok(d, "/api/v1/servers", q="no-such-server")["total"] == 0
    # alert: the KoD servers have their kod alert firing.
    wait_for("kod alerts", lambda: ok(d, "/api/v1/servers", alert="kod")["total"] == len(KOD),
             20)
    entries, _ = walk(d, 1, alert="kod", state="kod", q="rate")
    assert sorted(e["name"] for e in entries) == KOD
    # Without a limit: everything up to 1000, no cursor (more than 100 entries: the body is
    # streamed in chunks; it is one JSON document all the same).
    body = ok(d, "/api/v1/servers")
    assert body["total"] == len(ALL) and len(body["servers"]) == len(ALL)
    assert [e["name"] for e in body["servers"]] == ALL
    assert body["next_cursor"] is None
    body = ok(d, "/api/v1/servers", limit=120, sort="name")
    assert [e["name"] for e in body["servers"]] == sorted(ALL)[:120]
    assert body["total"] == len(ALL) and body["next_cursor"]


def test_summary_counts_agree_with_the_pages(fleet_daemon):
    d = fleet_daemon

    def agree():
        summary = ok(d, "/api/v1/summary")
        entries, _ = walk(d, 5)
        counts = {s: sum(e["state"] == s for e in entries) for s in STATES}
        alerts = {}
        for e in entries:
            for kind in {a["alert"] for a in e["alerts"]}:
                alerts[kind] = alerts.get(kind, 0) + 1
        totals = {s: ok(d, "/api/v1/servers", state=s, limit=1)["total"] for s in STATES}
        if summary["states"] != counts or totals != counts:
            return None
        if {k: v for k, v in summary["alerts"].items() if v} != alerts:
            return None
        return summary, entries
    summary, entries = wait_for("summary and pages agree", agree, 20)
    assert summary["entries"] == len(ALL)
    assert set(summary["states"]) == set(STATES)
    assert summary["states"]["falseticker"] == len(LIARS)
    assert summary["states"]["kod"] == len(KOD)
    assert summary["states"]["unreachable"] == 1
    assert summary["states"]["selected"] == 1
    assert summary["selected"] in HONEST and summary["selected_address"] == "127.0.0.1"
    assert summary["majority"] is True and summary["truechimer_count"] >= 20
    dist = summary["distributions"]
    assert len(dist["bounds"]) == 22 and dist["bounds"][0] == 1e-6 and dist["bounds"][-1] == 10
    measured = [e for e in entries if e["offset"] is not None]
    offsets = dist["offset"]
    assert sum(offsets["negative"]) + sum(offsets["positive"]) + offsets["missing"] == len(ALL)
    assert offsets["missing"] == len(ALL) - len(measured)
    # The liars' +0.5 s is in the bucket of 0.2 < |v| <= 0.5 (index 17) or next to it.
    assert offsets["positive"][17] + offsets["positive"][18] >= len(LIARS)
    assert sum(dist["delay"]["counts"]) + dist["delay"]["missing"] == len(ALL)
    assert sum(dist["jitter"]["counts"]) + dist["jitter"]["missing"] == len(ALL)
    # Worst offsets: the liars first, objects as /servers has them.
    worst = summary["worst_offset"]
    assert len(worst) == 20
    assert {w["name"] for w in worst[:4]} == set(LIARS)
    assert set(worst[0]) == set(entries[0])
    assert all(abs(a["offset"]) >= abs(b["offset"]) for a, b in zip(worst, worst[1:]))
    # Recent state changes: newest first; the silent server went unreachable from pending.
    changes = summary["recent_state_changes"]
    assert 0 < len(changes) <= 20
    assert all(a["at_unix"] >= b["at_unix"] for a, b in zip(changes, changes[1:]))
    assert all(c["from"] in STATES and c["to"] in STATES and c["from"] != c["to"]
               for c in changes)
    assert all(set(c) == {"name", "address", "from", "to", "at", "at_unix"} for c in changes)


def test_alerts_limit_and_bad_parameters(fleet_daemon):
    d = fleet_daemon
    wait_for("kod alerts", lambda: ok(d, "/api/v1/alerts")["active_total"] >= len(KOD), 20)
    full = ok(d, "/api/v1/alerts")
    assert full["active_total"] == len(full["active"])
    one = ok(d, "/api/v1/alerts", limit=1)
    assert len(one["active"]) == 1 and one["active_total"] >= len(KOD)
    for params in ({"limit": 0}, {"limit": 10001}, {"limit": "x"}, {"state": "up"},
                   {"alert": "local_clock"}, {"sort": "reach"}, {"sort": "-"},
                   {"cursor": "not-a-cursor!"}, {"cursor": "AQEB"}):
        status, body = get(d, "/api/v1/servers", **params)
        assert status == 400 and body["error"], params
    status, body = get(d, "/api/v1/alerts", limit=0)
    assert status == 400 and body["error"]
    # A cursor of one sort given with another.
    cursor = ok(d, "/api/v1/servers", limit=2, sort="offset")["next_cursor"]
    status, body = get(d, "/api/v1/servers", limit=2, sort="-offset", cursor=cursor)
    assert status == 400 and "sort" in body["error"]
    # The daemon is still there.
    assert ok(d, "/api/v1/servers", limit=1)["total"] == len(ALL)
