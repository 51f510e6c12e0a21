"""examples/quick_test.cpp: the library's quick-start, against a real chronyd.

The example loads a config, prints its server list, then get_time(HOST) as offset /
stratum / jitter: it must list our loopback server and print a measured offset."""

import re

import peers


def test_quick_test_lists_servers_and_measures(chrony, example_binary, tmp_path):
    config = tmp_path / "servers.yaml"
    config.write_text(
        "servers:\n"
        "  - host: 127.0.0.1\n"
        f"    port: {chrony.port}\n")
    out = peers.subprocess.run([str(example_binary), str(config), "127.0.0.1"],
                               capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    # First line: the configured server list, as the original quick test printed it.
    assert out.stdout.splitlines()[0] == "['127.0.0.1']", out.stdout
    match = re.search(r"offset\D{0,20}?(-?\d+(?:\.\d+)?(?:e-?\d+)?)", out.stdout, re.IGNORECASE)
    assert match, out.stdout
    assert abs(float(match.group(1))) < 0.001, out.stdout  # seconds; chronyd serves our clock
    assert re.search(r"stratum\D{0,20}?3\b", out.stdout, re.IGNORECASE), out.stdout
