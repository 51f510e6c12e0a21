"""ntp-monitor query against ntpsec's ntpd (orphan mode, stratum 6) in a network namespace.

ntpd 1.2.2 only serves on port 123, so it runs in a namespace of its own and the query runs
there too (nsenter). After `orphanwait 1` it has no upstream and becomes an orphan parent:
stratum 6, refid 127.0.0.1 (its own loopback address), about 2 s after start. Before that
it answers stratum 0 / refid INIT / leap 3, which is "not synchronized", not a KoD."""

import pytest

import peers
from expect import assert_failed, assert_good

FAST = ("--samples", "3", "--interval", "0.2", "--timeout", "1")


@pytest.mark.parametrize("version", [4, 3])
def test_query_orphan_server(ntpsec, netns, version):
    rc, result, out = peers.query_json(["127.0.0.1"], *FAST, "--ntp-version", str(version),
                                       prefix=netns.prefix())
    assert rc == 0, out.stderr
    assert len(result) == 1
    assert_good(result[0], stratum=6, offset_s=0.0, tolerance_s=0.001, version=version,
                refid="127.0.0.1", port=123, address="127.0.0.1", samples=3)


def test_unsynchronized_ntpd_is_an_error_not_a_kod(tmp_path):
    """A freshly started ntpd answers INIT for about 2 s: must be ok=false, kod=null."""
    if not peers.NTPD.exists():
        pytest.skip(f"{peers.NTPD} missing")
    with peers.NetNamespace(tmp_path / "ns").start() as ns:
        with peers.NtpsecServer(tmp_path / "ntpd", ns).start(wait_synced=False) as ntpd:
            if ntpd.first_reply["stratum"] != 0:
                pytest.skip("ntpd synchronized before the first probe; INIT window missed")
            rc, result, out = peers.query_json(["127.0.0.1"], "--samples", "1",
                                               "--timeout", "0.5", prefix=ns.prefix())
            still_init = ntpd.probe()
    if still_init is None or still_init["stratum"] != 0:
        pytest.skip("ntpd left INIT during the query; nothing to judge")
    assert rc == 1, out.stderr
    assert_failed(result[0], error_pattern=r"unsynchroni[sz]ed|not synchroni[sz]ed", kod=None)
