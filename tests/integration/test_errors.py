"""Bad input: unresolvable hosts, unreachable ports, bad configuration, bad arguments.

The unresolvable-host test runs inside a private network namespace: the system resolver
here is not on this machine, and in a namespace with only loopback a DNS query cannot
leave (it fails locally with 'network unreachable'), so no packet goes anywhere. The
name is under the reserved .invalid TLD (RFC 6761) in any case."""

import re

import pytest

import peers
from expect import assert_failed, assert_good

FAST = ("--samples", "2", "--interval", "0.2", "--timeout", "0.5")
BAD_NAME = "no-such-host.invalid"


def test_unresolvable_host_is_reported_and_others_still_measured(simulator, netns):
    sim = simulator("--offset", "0.25", "--stratum", "2", prefix=netns.prefix())
    rc, result, out = peers.query_json([BAD_NAME, sim.target], *FAST, prefix=netns.prefix())
    assert rc == 1, out.stderr
    bad = [e for e in result if e["host"] == BAD_NAME]
    good = [e for e in result if e["host"] != BAD_NAME]
    assert len(bad) == 1 and len(good) == 1, result
    assert_failed(bad[0], error_pattern=r"resolv|name|host|address", kod=None)
    assert_good(good[0], stratum=2, offset_s=0.25, tolerance_s=0.001, version=4,
                refid=good[0]["refid"], port=sim.port, address="127.0.0.1", samples=2)


def test_closed_port_is_a_per_host_error(monitor):
    port = peers.free_udp_port()  # nothing listens there: ICMP port unreachable or timeout
    rc, result, out = peers.query_json([f"127.0.0.1:{port}"], *FAST)
    assert rc == 1, out.stderr
    assert len(result) == 1
    assert_failed(result[0], kod=None)
    assert result[0]["port"] == port


def _config_errors(text: str):
    return re.findall(r"^(.+?):(\d+):(\d+): (.+)$", text, re.MULTILINE)


def test_check_config_accepts_a_valid_file(monitor, tmp_path):
    config = tmp_path / "ok.yaml"
    config.write_text(
        "servers:\n"
        "  - host: 127.0.0.1\n"
        "    port: 12345\n"
        "  - host: \"::1\"\n"
        "alert_thresholds:\n"
        "  offset_ms: 50\n"
        "  delay_ms: 200\n")
    out = peers.run_monitor(["check-config", str(config)])
    assert out.returncode == 0, out.stdout + out.stderr


def test_check_config_points_at_the_bad_value(monitor, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "servers:\n"
        "  - host: 127.0.0.1\n"
        "    port: 70000\n")
    out = peers.run_monitor(["check-config", str(config)])
    assert out.returncode == 2, out.stdout + out.stderr
    errors = _config_errors(out.stdout + out.stderr)
    assert errors, out.stdout + out.stderr
    file, line, col, _ = errors[0]
    assert file == str(config)
    # Line 3 is the port entry; the column is the value (11) or its key (5).
    assert (int(line), int(col)) in ((3, 11), (3, 5)), errors


def test_check_config_reports_yaml_syntax_errors_with_position(monitor, tmp_path):
    config = tmp_path / "syntax.yaml"
    config.write_text(
        "servers:\n"
        "  - host: 127.0.0.1\n"
        "    port: [123\n")
    out = peers.run_monitor(["check-config", str(config)])
    assert out.returncode == 2, out.stdout + out.stderr
    errors = _config_errors(out.stdout + out.stderr)
    assert errors and errors[0][0] == str(config), out.stdout + out.stderr
    assert int(errors[0][1]) >= 3, errors


def test_check_config_missing_file(monitor, tmp_path):
    missing = tmp_path / "absent.yaml"
    out = peers.run_monitor(["check-config", str(missing)])
    assert out.returncode == 2
    assert str(missing) in out.stdout + out.stderr


@pytest.mark.parametrize(
    "args",
    [
        # No sub-command runs the daemon; never let it read config/servers.yaml (public servers).
        ["--config", "/nonexistent/servers.yaml"],
        ["no-such-command"],
        ["query"],
        ["query", "--samples", "many", "127.0.0.1"],
        ["query", "--ntp-version", "5", "127.0.0.1"],
        ["query", "--no-such-option", "127.0.0.1"],
        ["query", "--port", "70000", "127.0.0.1"],
        ["check-config"],
        ["simulate"],
    ],
    ids=["daemon-missing-config", "unknown-command", "query-no-host", "samples-not-a-number",
         "ntp-version-5", "unknown-option", "port-out-of-range", "check-config-no-file",
         "simulate-no-listen"],
)
def test_usage_errors_exit_2(monitor, args):
    out = peers.run_monitor(args, timeout_s=10)
    assert out.returncode == 2, (args, out.stdout, out.stderr)
    assert out.stderr.strip(), "a usage error must say what is wrong"
