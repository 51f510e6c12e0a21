"""ntp-monitor query against a real chronyd (local stratum 3) on 127.0.0.1 and ::1.

chronyd serves its own clock, which is the host clock, so the true offset is 0 and the
measured one must be within 1 ms. Its `local` reference sends refid 127.127.1.1."""

import pytest

import peers
from expect import assert_good

CHRONY_REFID = "127.127.1.1"
FAST = ("--samples", "3", "--interval", "0.2", "--timeout", "1")


@pytest.mark.parametrize("version", [4, 3])
def test_query_ipv4(chrony, version):
    rc, result, out = peers.query_json([f"127.0.0.1:{chrony.port}"], *FAST,
                                       "--ntp-version", str(version))
    assert rc == 0, out.stderr
    assert len(result) == 1
    entry = result[0]
    assert entry["host"] == "127.0.0.1"
    assert_good(entry, stratum=3, offset_s=0.0, tolerance_s=0.001, version=version,
                refid=CHRONY_REFID, port=chrony.port, address="127.0.0.1", samples=3)


@pytest.mark.parametrize("version", [4, 3])
def test_query_ipv6(chrony, version):
    rc, result, out = peers.query_json([f"[::1]:{chrony.port}"], *FAST,
                                       "--ntp-version", str(version))
    assert rc == 0, out.stderr
    assert len(result) == 1
    assert_good(result[0], stratum=3, offset_s=0.0, tolerance_s=0.001, version=version,
                refid=CHRONY_REFID, port=chrony.port, address="::1", samples=3)


def test_port_option_applies_to_hosts_without_port(chrony):
    rc, result, out = peers.query_json(["127.0.0.1"], *FAST, "--port", str(chrony.port))
    assert rc == 0, out.stderr
    assert_good(result[0], stratum=3, offset_s=0.0, tolerance_s=0.001, version=4,
                refid=CHRONY_REFID, port=chrony.port, address="127.0.0.1", samples=3)


def test_both_families_in_one_run(chrony):
    targets = [f"127.0.0.1:{chrony.port}", f"[::1]:{chrony.port}"]
    rc, result, out = peers.query_json(targets, *FAST)
    assert rc == 0, out.stderr
    assert sorted(e["address"] for e in result) == ["127.0.0.1", "::1"]
    for entry in result:
        assert_good(entry, stratum=3, offset_s=0.0, tolerance_s=0.001, version=4,
                    refid=CHRONY_REFID, port=chrony.port, address=entry["address"],
                    samples=3)


def test_single_sample(chrony):
    rc, result, out = peers.query_json([f"127.0.0.1:{chrony.port}"], "--samples", "1")
    assert rc == 0, out.stderr
    assert_good(result[0], stratum=3, offset_s=0.0, tolerance_s=0.001, version=4,
                refid=CHRONY_REFID, port=chrony.port, address="127.0.0.1", samples=1)


def test_text_output_names_the_server(chrony):
    out = peers.run_monitor(["query", *FAST, f"127.0.0.1:{chrony.port}"])
    assert out.returncode == 0, out.stderr
    assert "127.0.0.1" in out.stdout
    assert "127.127.1.1" in out.stdout


def test_config_file_servers(chrony, tmp_path):
    config = tmp_path / "servers.yaml"
    config.write_text(
        "servers:\n"
        "  - host: 127.0.0.1\n"
        f"    port: {chrony.port}\n"
        "  - host: \"::1\"\n"
        f"    port: {chrony.port}\n"
        "    version: 3\n")
    rc, result, out = peers.query_json([], *FAST, "--config", str(config))
    assert rc == 0, out.stderr
    by_address = {e["address"]: e for e in result}
    assert sorted(by_address) == ["127.0.0.1", "::1"]
    assert_good(by_address["127.0.0.1"], stratum=3, offset_s=0.0, tolerance_s=0.001,
                version=4, refid=CHRONY_REFID, port=chrony.port, address="127.0.0.1",
                samples=3)
    assert_good(by_address["::1"], stratum=3, offset_s=0.0, tolerance_s=0.001, version=3,
                refid=CHRONY_REFID, port=chrony.port, address="::1", samples=3)
