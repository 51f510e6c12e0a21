"""The Python binding ntp_monitor (python/, built into build/python by `make build`) against
simulators, chronyd and a loopback-only network namespace.

The module is imported in this process (so that pytest-cov measures it, `make coverage`),
from NTPMON_BUILD_DIR/python. Every failure path is driven for real: a silent server, Kiss-o'-
Death, unsynchronized and bad-stratum replies, a name that does not resolve and an unreachable
network (both inside a namespace with only loopback: nothing leaves the machine), a key the
server does not have, NTS with the wrong CA, bad configuration and bad arguments.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import peers

# Quick queries: 2 requests 0.1 s apart, each waiting at most 0.5 s.
FAST = dict(samples=2, interval=0.1, timeout=0.5)
EXAMPLE = peers.REPO / "examples" / "quick_test.py"


def python_dir() -> Path:
    return peers.build_dir() / "python"


@pytest.fixture(scope="module")
def nm(monitor):
    """The ntp_monitor package of the build."""
    if not (python_dir() / "ntp_monitor" / "__init__.py").is_file():
        pytest.fail(f"{python_dir()}/ntp_monitor missing: build the ntpmon_python target "
                    "(pybind11-dev and python3-dev installed)", pytrace=False)
    sys.path.insert(0, str(python_dir()))
    try:
        module = importlib.import_module("ntp_monitor")
    finally:
        sys.path.remove(str(python_dir()))
    assert Path(module.__file__).parent == python_dir() / "ntp_monitor", module.__file__
    return module


def config_for(tmp_path: Path, *servers: tuple[str, int]) -> Path:
    path = tmp_path / "servers.yaml"
    lines = ["servers:"]
    for host, port in servers:
        lines += [f"  - host: {host}", f"    port: {port}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def env_with_module() -> dict:
    return {**os.environ, "PYTHONPATH": str(python_dir())}


def run_in(prefix: list[str], code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh /usr/bin/python3 (inside the namespace of `prefix`)."""
    return subprocess.run([*prefix, "/usr/bin/python3", "-c", code], capture_output=True,
                          text=True, timeout=60, env=env_with_module())


def test_importable_from_build_python(nm):
    out = run_in([], "from ntp_monitor import NTPClient; print(NTPClient.__name__)")
    assert out.returncode == 0 and out.stdout.strip() == "NTPClient", out.stderr
    stubs = python_dir() / "ntp_monitor"
    assert (stubs / "__init__.pyi").is_file() and (stubs / "py.typed").is_file()
    assert "def get_time" in (stubs / "__init__.pyi").read_text()


def test_default_config_is_the_readme_one(nm, monkeypatch):
    monkeypatch.chdir(peers.REPO)
    assert nm.NTPClient().get_servers() == ["pool.ntp.org", "time.google.com"]
    assert nm.NTPClient(None).get_servers() == []


def test_quick_test_example_against_a_simulator(nm, simulator, tmp_path, capsys):
    sim = simulator("--offset", "0.25", "--stratum", "3")
    config = config_for(tmp_path, ("127.0.0.1", sim.port))
    # As a user runs it ...
    out = subprocess.run(["/usr/bin/python3", str(EXAMPLE), str(config)], capture_output=True,
                         text=True, timeout=60, env=env_with_module())
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['127.0.0.1']", out.stdout
    shown = eval(lines[1], {})  # noqa: S307: the example prints a dict literal
    assert set(shown) == {"offset", "stratum", "jitter"}
    assert abs(shown["offset"] - 0.25) < 0.002 and shown["stratum"] == 3, shown
    # ... and in this process, for coverage of the example.
    sys.argv = [str(EXAMPLE), str(config)]
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert exit_info.value.code == 0
    assert "['127.0.0.1']" in capsys.readouterr().out


def test_quick_test_example_failures(nm, simulator, tmp_path):
    sim = simulator("--loss", "1")
    config = config_for(tmp_path, ("127.0.0.1", sim.port))
    module = runpy.run_path(str(EXAMPLE))
    assert module["main"](["x", str(config), f"127.0.0.1:{sim.port}"]) == 1
    assert module["main"](["x", str(tmp_path / "missing.yaml")]) == 2
    (tmp_path / "empty.yaml").write_text("servers: []\n")
    assert module["main"](["x", str(tmp_path / "empty.yaml")]) in (1, 2)


def test_get_time_has_every_key_of_query_json(nm, simulator):
    sim = simulator("--offset", "-0.125", "--stratum", "2", "--refid", "GPS")
    result = nm.NTPClient(None).get_time(sim.target, **FAST)
    rc, query, out = peers.query_json([sim.target], "--samples", "2", "--interval", "0.1",
                                      "--timeout", "0.5")
    assert rc == 0, out.stderr
    assert set(query[0]) <= set(result), set(query[0]) - set(result)
    for key in ("host", "address", "port", "ok", "stratum", "refid", "leap", "version",
                "samples", "kod", "authenticated", "error"):
        assert result[key] == query[0][key], key
    assert abs(result["offset"] + 0.125) < 0.002 and result["jitter"] >= 0
    assert result["failure"] == "none" and result["ok"] is True
    json.dumps(result)  # plain Python values only


def test_configured_port_and_name(nm, simulator, tmp_path):
    sim = simulator("--offset", "0.5")
    client = nm.NTPClient(config_for(tmp_path, ("127.0.0.1", sim.port)))
    assert client.get_servers() == ["127.0.0.1"]
    # No port given: the configured one is used.
    assert abs(client.get_time("127.0.0.1", **FAST)["offset"] - 0.5) < 0.002
    # An explicit port argument for hosts that are not configured.
    other = simulator("--offset", "-0.5")
    assert abs(client.get_time("127.0.0.1:%d" % other.port, **FAST)["offset"] + 0.5) < 0.002
    assert nm.NTPClient(None).get_time("127.0.0.1", port=other.port, **FAST)["port"] == \
        other.port


def test_silent_server_raises_timeout(nm, simulator):
    sim = simulator("--loss", "1")
    with pytest.raises(nm.NTPTimeoutError) as info:
        nm.NTPClient(None).get_time(sim.target, **FAST)
    error = info.value
    assert isinstance(error, nm.NTPError) and isinstance(error, TimeoutError)
    assert error.host == "127.0.0.1" and error.address == "127.0.0.1"
    assert "timed out" in error.reason and error.result["timeouts"] == 2


@pytest.mark.parametrize("code", ["RATE", "DENY", "RSTR"])
def test_kiss_of_death_raises_with_its_code(nm, simulator, code):
    sim = simulator("--kiss", code)
    with pytest.raises(nm.NTPKissOfDeathError) as info:
        nm.NTPClient(None).get_time(sim.target, **FAST)
    assert info.value.code == code and code in str(info.value)


@pytest.mark.parametrize("knobs, reason", [
    (("--leap", "3"), "unsynchronized"),
    (("--stratum", "16"), "bad_stratum"),
])
def test_rejected_replies_raise_with_the_reason(nm, simulator, knobs, reason):
    sim = simulator(*knobs)
    with pytest.raises(nm.NTPRejectedError) as info:
        nm.NTPClient(None).get_time(sim.target, **FAST)
    assert info.value.reason == reason, info.value.result
    assert reason in str(info.value)


def test_bad_host_text_is_a_dns_error(nm):
    with pytest.raises(nm.NTPDNSError):
        nm.NTPClient(None).get_time("[::1", **FAST)


# The name lookup and the unreachable network run in a loopback-only namespace: the DNS query
# fails locally and no packet leaves the machine.
NAMESPACE_CODE = """
import ntp_monitor as nm
client = nm.NTPClient(None)
for host in ("no-such-host.invalid", "192.0.2.1"):
    try:
        client.get_time(host, samples=1, timeout=0.5, dns_timeout=2)
        print(host, "no error")
    except nm.NTPError as e:
        print(host, type(e).__name__, isinstance(e, nm.NTPError), e.address)
"""


def test_dns_failure_and_unreachable_network(nm, netns):
    out = run_in(netns.prefix(), NAMESPACE_CODE)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "no-such-host.invalid NTPDNSError True None", out.stdout
    assert lines[1] == "192.0.2.1 NTPNetworkError True 192.0.2.1", out.stdout


def test_query_many_hosts_concurrently(nm, simulator):
    good = simulator("--offset", "0.1")
    silent = [simulator("--loss", "1") for _ in range(3)]
    kissed = simulator("--kiss", "RATE")
    hosts = [good.target] + [s.target for s in silent] + [kissed.target]
    start = time.monotonic()
    results = nm.NTPClient(None).query(hosts, samples=1, timeout=1.0)
    elapsed = time.monotonic() - start
    # Three silent servers one after the other would take 3 s.
    assert elapsed < 2.5, elapsed
    assert list(results) == hosts
    assert abs(results[good.target]["offset"] - 0.1) < 0.002
    assert all(isinstance(results[s.target], nm.NTPTimeoutError) for s in silent)
    assert isinstance(results[kissed.target], nm.NTPKissOfDeathError)
    assert results[kissed.target].code == "RATE"


def test_query_defaults_to_the_configured_servers(nm, simulator, tmp_path):
    a, b = simulator("--offset", "0.2"), simulator("--offset", "-0.2")
    client = nm.NTPClient(config_for(tmp_path, ("127.0.0.1", a.port), ("localhost", b.port)))
    results = client.query(**FAST)
    assert list(results) == ["127.0.0.1", "localhost"]
    assert abs(results["127.0.0.1"]["offset"] - 0.2) < 0.002
    assert abs(results["localhost"]["offset"] + 0.2) < 0.002
    with pytest.raises(nm.NTPConfigError):
        client.query("127.0.0.1")


def test_gil_is_released_while_waiting(nm, simulator):
    sim = simulator("--loss", "1")
    client = nm.NTPClient(None)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(nm.NTPTimeoutError):
            client.get_time(sim.target, samples=1, timeout=1.0)
        results = client.query([sim.target], samples=1, timeout=1.0)
        end = time.monotonic()
    finally:
        done.set()
        thread.join()
    assert isinstance(results[sim.target], nm.NTPTimeoutError)
    during = [t for t in ticks if start < t < end]
    # About 200 ticks in 2 s if the GIL is free; none if the C++ wait held it.
    assert len(during) > 50, len(during)


def test_configuration_errors(nm, tmp_path):
    with pytest.raises(nm.NTPConfigError) as info:
        nm.NTPClient(tmp_path / "missing.yaml")
    assert isinstance(info.value, ValueError) and "missing.yaml" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers:\n  - host: 127.0.0.1\n    port: 99999\n")
    with pytest.raises(nm.NTPConfigError) as info:
        nm.NTPClient(bad)
    assert "bad.yaml:3:" in str(info.value), str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=0), "samples"),
    (dict(timeout=0), "timeout"),
    (dict(interval=-1), "interval"),
    (dict(dns_timeout=0), "dns_timeout"),
    (dict(port=70000), "port"),
    (dict(version=5), "version"),
    (dict(ntske_port=0), "ntske_port"),
    (dict(key_id=1), "key_file and key_id go together"),
    (dict(nts=True, key_file="/etc/hostname", key_id=1), "exclusive"),
    (dict(key_file="/nonexistent.keys", key_id=1), "nonexistent.keys"),
    (dict(key_file="/etc/hostname", key_id=1, key_format="xml"), "key_format"),
])
def test_bad_arguments_raise_config_errors(nm, kwargs, message):
    client = nm.NTPClient(None)
    with pytest.raises(nm.NTPConfigError) as info:
        client.get_time("127.0.0.1", **kwargs)
    assert message in str(info.value)
    with pytest.raises(nm.NTPConfigError):
        client.query(["127.0.0.1"], **kwargs)


def test_symmetric_key_and_a_wrong_one(nm, key_chrony, tmp_path):
    client = nm.NTPClient(None)
    result = client.get_time(f"127.0.0.1:{key_chrony.port}", key_file=key_chrony.keys_path,
                             key_id=2, **FAST)
    assert result["authenticated"] == "key", result
    kind, _ = peers.CHRONY_KEYS[2]
    wrong = tmp_path / "wrong.keys"
    wrong.write_text(f"2 {kind} ASCII:not-the-servers-key\n")
    # chronyd drops a request whose MAC it cannot verify: to the client that is silence.
    with pytest.raises(nm.NTPTimeoutError) as info:
        client.get_time(f"127.0.0.1:{key_chrony.port}", key_file=wrong, key_id=2, **FAST)
    assert info.value.result["authenticated"] == "key", info.value.result
    with pytest.raises(nm.NTPConfigError, match="key 9 not in"):
        client.get_time(f"127.0.0.1:{key_chrony.port}", key_file=wrong, key_id=9, **FAST)


def test_nts_and_a_wrong_ca(nm, nts_chrony, pki):
    client = nm.NTPClient(None)
    result = client.get_time(f"localhost:{nts_chrony.port}", nts=True,
                             ntske_port=nts_chrony.nts_port, ca_file=pki["ca"], **FAST)
    assert result["authenticated"] == "nts" and result["aead"] == "AEAD_AES_SIV_CMAC_256"
    assert result["cookies"] >= 1 and result["nts_ke_seconds"] > 0
    with pytest.raises(nm.NTPAuthenticationError) as info:
        client.get_time(f"localhost:{nts_chrony.port}", nts=True,
                        ntske_port=nts_chrony.nts_port, ca_file=pki["other_ca"], **FAST)
    assert "NTS-KE" in str(info.value)
