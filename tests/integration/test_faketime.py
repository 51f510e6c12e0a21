"""A server with a known, large offset: chronyd under libfaketime, 1.5 s ahead.

Offsets above about 1 s come out exactly (smaller fake offsets come out halved, because
chronyd then mixes real kernel receive stamps with faked transmit stamps; see
NTP-NOTES.md section 8), so the reported offset must be 1.5 s within 1 ms."""

import pytest

import peers
from expect import assert_good

FAST = ("--samples", "3", "--interval", "0.2", "--timeout", "1")


@pytest.mark.parametrize("version", [4, 3])
def test_offset_is_one_and_a_half_seconds(faketime_chrony, version):
    rc, result, out = peers.query_json([f"127.0.0.1:{faketime_chrony.port}"], *FAST,
                                       "--ntp-version", str(version))
    assert rc == 0, out.stderr
    assert_good(result[0], stratum=3, offset_s=1.5, tolerance_s=0.001, version=version,
                refid="127.127.1.1", port=faketime_chrony.port, address="127.0.0.1",
                samples=3)
