"""Shared expectations on `ntp-monitor query --json` entries.

Responsible for the checks every "good reply" test makes (the exact key set, the types,
the sanity of the figures) so that each test states only what is special about its peer.
Not responsible for starting peers (peers.py) or for the figures a peer should produce
(the tests pass them in).
"""

from __future__ import annotations

import math
import re

from peers import QUERY_KEYS


def describe(entry) -> str:
    return f"entry was {entry!r}"


def assert_keys(entry: dict) -> None:
    assert set(entry) == QUERY_KEYS, (
        f"keys differ: missing {sorted(QUERY_KEYS - set(entry))}, "
        f"extra {sorted(set(entry) - QUERY_KEYS)}")


def assert_good(entry: dict, *, stratum: int, offset_s: float, tolerance_s: float,
                version: int, refid: str, port: int, address: str, samples: int) -> None:
    """A successful measurement of a healthy server on loopback."""
    assert_keys(entry)
    ctx = describe(entry)
    assert entry["ok"] is True, ctx
    assert entry["error"] is None, ctx
    assert entry["kod"] is None, ctx
    assert entry["stratum"] == stratum, ctx
    assert entry["version"] == version, ctx
    assert entry["refid"] == refid, ctx
    assert entry["port"] == port, ctx
    assert entry["address"] == address, ctx
    assert entry["samples"] == samples, ctx
    assert entry["leap"] == 0, ctx
    for key in ("offset", "delay", "jitter", "root_delay", "root_dispersion",
                "root_distance", "precision", "poll"):
        assert isinstance(entry[key], (int, float)) and not isinstance(entry[key], bool), (
            f"{key} is not a number; {ctx}")
        assert math.isfinite(entry[key]), f"{key} not finite; {ctx}"
    assert abs(entry["offset"] - offset_s) < tolerance_s, ctx
    # Loopback: a round trip well under 10 ms, never negative (floored at precision).
    assert 0 <= entry["delay"] < 0.010, ctx
    assert 0 <= entry["jitter"] < 0.002, ctx
    assert entry["root_delay"] >= 0 and entry["root_dispersion"] >= 0, ctx
    # Root distance = max(MINDISP, root delay + delay)/2 + root dispersion + dispersion +
    # jitter (RFC 5905 section 11.2.2). On loopback with healthy samples that is a few ms
    # (MINDISP/2 dominates); counting the filter's empty stages as MAXDISP would add
    # 16 s * sum(2^-(i+1)) for them (1.94 s after 3 samples), which no monitoring user
    # could tell apart from a broken server; and above MAXDIST (1.5 s) the reply is unfit.
    assert entry["root_distance"] >= entry["root_dispersion"], ctx
    assert entry["root_distance"] < 0.05, ctx
    # Precision in seconds: any real clock is finer than 1 ms and coarser than 1 ns/1000.
    assert 0 < entry["precision"] < 1e-3, ctx
    assert entry["poll"] >= 0, ctx


def assert_failed(entry: dict, *, error_pattern: str | None = None,
                  kod: str | None = None) -> None:
    """A server that did not give a usable answer."""
    assert_keys(entry)
    ctx = describe(entry)
    assert entry["ok"] is False, ctx
    assert isinstance(entry["error"], str) and entry["error"], ctx
    if error_pattern is not None:
        assert re.search(error_pattern, entry["error"], re.IGNORECASE), ctx
    assert entry["kod"] == kod, ctx
