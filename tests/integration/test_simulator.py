"""ntp-monitor query against the project's simulator: attacks, KoD, loss, leap.

The simulator's spoof knobs send extra replies whose timestamps are shifted by 1000 s:
with a wrong origin timestamp (RFC 5905 bogus test), from another source port, or as a
duplicate after the genuine reply. A correct client drops them all, so the reported offset
stays the simulator's --offset (0.25 s) within 1 ms. Each test starts its own simulator."""

import pytest

import peers
from expect import assert_failed, assert_good

FAST = ("--samples", "3", "--interval", "0.2", "--timeout", "1")
OFFSET_S = 0.25


def sim_good(entry, sim, *, version=4, samples=3, stratum=2, refid=None):
    # refid=None: the simulator's default refid is not part of its contract; skip it.
    assert_good(entry, stratum=stratum, offset_s=OFFSET_S, tolerance_s=0.001,
                version=version, refid=refid if refid is not None else entry["refid"],
                port=sim.port, address="127.0.0.1", samples=samples)


@pytest.mark.parametrize(
    "knobs",
    [
        (),
        ("--spoof-origin",),
        ("--spoof-port",),
        ("--duplicate",),
        ("--spoof-origin", "--spoof-port", "--duplicate"),
    ],
    ids=["genuine-only", "spoof-origin", "spoof-port", "duplicate", "all-attacks"],
)
@pytest.mark.parametrize("version", [4, 3])
def test_spoofed_replies_never_move_the_offset(simulator, knobs, version):
    sim = simulator("--offset", str(OFFSET_S), "--stratum", "2", "--seed", "7", *knobs)
    rc, result, out = peers.query_json([sim.target], *FAST, "--ntp-version", str(version))
    assert rc == 0, out.stderr
    sim_good(result[0], sim, version=version)


def test_stratum_and_refid_are_reported(simulator):
    sim = simulator("--offset", str(OFFSET_S), "--stratum", "1", "--refid", "GPS")
    rc, result, out = peers.query_json([sim.target], *FAST)
    assert rc == 0, out.stderr
    sim_good(result[0], sim, stratum=1, refid="GPS")


def test_leap_second_warning_is_reported_not_an_error(simulator):
    sim = simulator("--offset", str(OFFSET_S), "--stratum", "2", "--leap", "1")
    rc, result, out = peers.query_json([sim.target], *FAST)
    assert rc == 0, out.stderr
    entry = result[0]
    assert entry["ok"] is True, entry
    assert entry["leap"] == 1, entry
    assert abs(entry["offset"] - OFFSET_S) < 0.001, entry


@pytest.mark.parametrize("code", ["RATE", "DENY"])
def test_kiss_of_death(simulator, code):
    sim = simulator("--offset", str(OFFSET_S), "--kiss", code)
    rc, result, out = peers.query_json([sim.target], *FAST)
    assert rc == 1, out.stderr
    assert len(result) == 1
    assert_failed(result[0], kod=code)
    assert result[0]["stratum"] in (0, None), result[0]


def test_total_loss_is_no_reply(simulator):
    sim = simulator("--loss", "1.0", "--seed", "1")
    rc, result, out = peers.query_json([sim.target], "--samples", "2", "--interval", "0.2",
                                       "--timeout", "0.3")
    assert rc == 1, out.stderr
    assert_failed(result[0], error_pattern=r"no (reply|response|answer)|timed? ?out", kod=None)
    assert result[0]["samples"] == 0, result[0]


def test_partial_loss_still_measures(simulator):
    # With a fixed seed, half the requests are dropped; the remaining ones suffice.
    sim = simulator("--offset", str(OFFSET_S), "--loss", "0.5", "--seed", "3")
    rc, result, out = peers.query_json([sim.target], "--samples", "8", "--interval", "0.1",
                                       "--timeout", "0.3")
    assert rc == 0, out.stderr
    entry = result[0]
    assert entry["ok"] is True, entry
    assert 1 <= entry["samples"] <= 8, entry
    assert abs(entry["offset"] - OFFSET_S) < 0.001, entry


def test_leap_3_is_unsynchronized(simulator):
    sim = simulator("--offset", str(OFFSET_S), "--leap", "3")
    rc, result, out = peers.query_json([sim.target], *FAST)
    assert rc == 1, out.stderr
    assert_failed(result[0], error_pattern=r"unsynchroni[sz]ed|not synchroni[sz]ed", kod=None)


def test_one_failing_server_degrades_only_itself(simulator):
    good = simulator("--offset", str(OFFSET_S), "--stratum", "2")
    lost = simulator("--loss", "1.0")
    rc, result, out = peers.query_json([good.target, lost.target], *FAST)
    assert rc == 1, out.stderr
    by_port = {e["port"]: e for e in result}
    assert sorted(by_port) == sorted([good.port, lost.port])
    sim_good(by_port[good.port], good)
    assert_failed(by_port[lost.port], kod=None)


def test_simulator_on_ipv6(simulator):
    sim = simulator("--offset", str(OFFSET_S), "--stratum", "2", listen="[::1]:0")
    assert sim.address == "::1"
    rc, result, out = peers.query_json([sim.target], *FAST)
    assert rc == 0, out.stderr
    entry = result[0]
    assert entry["address"] == "::1" and entry["ok"] is True, entry
    assert abs(entry["offset"] - OFFSET_S) < 0.001, entry
