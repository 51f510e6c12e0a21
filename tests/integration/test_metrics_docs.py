"""Issue #18, case 8: docs/metrics.md and /metrics name the same families.

A daemon with every optional part on (an NTS server from chronyd, history in SQLite, a
webhook, a /probe target) is scraped; every family in its exposition must have a row in a
table of docs/metrics.md, and every family that a table row names must be in the exposition
(or in the /probe answer, which docs/probe.md documents). A metric added without its row, or a
row left behind when a metric goes, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from helpers import fleet_config, http_get, metric, wait_for
from test_daemon_auth import nts_entry

DOCS = Path(__file__).resolve().parents[2] / "docs"

# A table row whose first cell is a family name in backticks (labels in braces allowed).
_ROW = re.compile(r"^\|\s*`((?:ntp_monitor|process|probe)_[a-z0-9_]+)(?:\{[^`]*\})?`\s*\|", re.M)
_TYPE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ", re.M)


def documented(doc: str) -> set[str]:
    return set(_ROW.findall((DOCS / doc).read_text()))


def exported(text: str) -> set[str]:
    return set(_TYPE.findall(text))


def test_every_exported_family_is_documented_and_the_reverse(daemon, simulator, nts_chrony,
                                                            pki):
    s = simulator()
    extra = ("history: {path: history.db, max_age_days: 1}\n"
             # Nothing listens there: notifications fail and are counted, nothing leaves.
             "alerts:\n  hold: 1\n  webhook: {url: 'http://127.0.0.1:9/hook', timeout_s: 1}\n")
    config = fleet_config({"a": (s.address, s.port)}, extra).replace(
        "servers:\n", "servers:\n" + nts_entry("nts", nts_chrony, pki["ca"]), 1)
    d = daemon(config)
    wait_for("the NTS server answered", lambda: (metric(
        d.metrics(), "ntp_monitor_responses_total", server="nts") or 0) >= 1, 20)
    status, _, probe = http_get(d.metrics_port, f"/probe?target={s.address}:{s.port}")
    assert status == 200, probe

    families = exported(d.metrics_text())
    in_docs = documented("metrics.md")
    probe_families = exported(probe.decode())
    assert probe_families <= documented("probe.md"), \
        f"/probe families missing from docs/probe.md: {sorted(probe_families - documented('probe.md'))}"

    missing = sorted(families - in_docs)
    assert not missing, f"exported but not in docs/metrics.md: {missing}"
    stale = sorted(in_docs - families - probe_families)
    assert not stale, f"in docs/metrics.md but not exported: {stale}"
    assert len(families) >= 60, sorted(families)
