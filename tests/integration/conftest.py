"""Fixtures of the integration suite: the ntp-monitor binary, real peers on loopback, the
daemon.

Server fixtures are module-scoped (started once per test file, stopped after it) to keep
the suite fast; simulators are per test because each test wants different knobs. Every
fixture stops its process group in teardown, and a session fixture checks at the end that
no peer outlived its fixture.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import helpers
import peers


def pytest_report_header(config):
    return [f"ntp-monitor binary: {peers.monitor_binary()} (NTPMON_BUILD_DIR)"]


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_processes():
    yield
    leftovers = [p for p in peers.SPAWNED if p.poll() is None]
    for proc in leftovers:
        peers.stop_process(proc)
    assert not leftovers, f"peers left running after their fixture: {[p.args for p in leftovers]}"


@pytest.fixture(scope="session")
def monitor() -> Path:
    path = peers.monitor_binary()
    if not path.is_file():
        pytest.fail(
            f"{path} not found: build it (cmake --build <dir> --target ntp-monitor) and set "
            "NTPMON_BUILD_DIR to the build directory", pytrace=False)
    return path


@pytest.fixture(scope="session")
def example_binary(monitor) -> Path:
    path = peers.example_binary()
    if not path.is_file():
        pytest.fail(f"{path} not found: build the example_quick_test target", pytrace=False)
    return path


def _need_chronyd():
    if shutil.which("chronyd") is None and not Path(peers.CHRONYD).exists():
        pytest.skip("chronyd not installed (scripts/install-deps installs it)")


@pytest.fixture(scope="module")
def chrony(tmp_path_factory, monitor):
    """chronyd, `local stratum 3`, on 127.0.0.1 and ::1 at a free port."""
    _need_chronyd()
    server = peers.ChronyServer(tmp_path_factory.mktemp("chrony"), stratum=3, ipv6=True)
    with server.start():
        yield server


@pytest.fixture(scope="module")
def faketime_chrony(tmp_path_factory, monitor):
    """chronyd whose clock runs 1.5 s ahead of the host's (libfaketime)."""
    _need_chronyd()
    if peers.faketime_library() is None:
        pytest.skip("libfaketime not installed (package faketime)")
    server = peers.ChronyServer(tmp_path_factory.mktemp("chrony-faketime"), stratum=3,
                                ipv6=False, fake_offset_s=1.5)
    with server.start():
        yield server


@pytest.fixture(scope="module")
def netns(tmp_path_factory):
    """A private network namespace (loopback only) for peers that need fixed ports."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("unshare/nsenter (util-linux) missing")
    with peers.NetNamespace(tmp_path_factory.mktemp("netns")).start() as ns:
        yield ns


@pytest.fixture(scope="module")
def ntpsec(tmp_path_factory, netns, monitor):
    """ntpsec's ntpd in orphan mode (stratum 6) on 127.0.0.1:123 inside `netns`."""
    if not peers.NTPD.exists():
        pytest.skip(f"{peers.NTPD} missing (scripts/install-deps unpacks ntpsec there)")
    server = peers.NtpsecServer(tmp_path_factory.mktemp("ntpsec"), netns)
    with server.start():
        yield server


@pytest.fixture
def simulator(tmp_path, monitor):
    """Factory: simulator(*knobs, prefix=()) starts `ntp-monitor simulate` with the knobs;
    all simulators of the test are stopped in teardown."""
    started: list[peers.Simulator] = []

    def make(*args: str, prefix=(), listen: str = "127.0.0.1:0") -> peers.Simulator:
        sim = peers.Simulator(tmp_path / f"sim{len(started)}", args=args, prefix=prefix,
                              listen=listen)
        started.append(sim)
        return sim.start()

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def daemon(tmp_path, monitor):
    """Factory: daemon(config_text, *args) starts helpers.Daemon and waits until it is ready;
    all are stopped in teardown."""
    started: list[helpers.Daemon] = []

    def make(config_text: str, *args: str) -> helpers.Daemon:
        d = helpers.Daemon(tmp_path / f"daemon{len(started)}", config_text, args)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.stop()


# ----------------------------------------------------------------------------------------
# Authentication: a throw-away PKI, chronyd with NTS or keys, ntpsec with NTS


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA (and a second, unrelated one) and server certificates made with openssl: one
    for localhost / 127.0.0.1, one for a wrong host name, one already expired."""
    workdir = tmp_path_factory.mktemp("pki")
    ca = peers.make_test_ca(workdir, "ca")
    other_ca = peers.make_test_ca(workdir, "other-ca")
    good = peers.make_server_cert(workdir, ca, "server")
    wrong_host = peers.make_server_cert(workdir, ca, "wrong-host", dns=("ntp.invalid",), ips=())
    expired = peers.make_server_cert(workdir, ca, "expired", days=10, backdate_days=20)
    return {"ca": ca[0], "other_ca": other_ca[0], "good": good, "wrong_host": wrong_host,
            "expired": expired}


@pytest.fixture(scope="module")
def nts_chrony(tmp_path_factory, pki, monitor):
    """chronyd serving NTS with pki["good"] (NTS-KE on its nts_port)."""
    server = peers.NtsChronyServer(tmp_path_factory.mktemp("chrony-nts"), *pki["good"])
    with server.start():
        yield server


@pytest.fixture(scope="module")
def key_chrony(tmp_path_factory, monitor):
    """chronyd with the symmetric keys peers.CHRONY_KEYS (its keys_path)."""
    server = peers.KeyChronyServer(tmp_path_factory.mktemp("chrony-keys"),
                                   peers.chrony_keys_text(peers.CHRONY_KEYS))
    with server.start():
        yield server


@pytest.fixture
def nts_ntpsec(tmp_path, pki, monitor):
    """ntpsec's ntpd serving NTS with pki["good"] on 127.0.0.1:123 in a namespace of its own
    (the server's netns)."""
    if not peers.NTPD.exists():
        pytest.skip(f"{peers.NTPD} missing")
    cert, key = pki["good"]
    lines = ["nts enable", f"nts key {key}", f"nts cert {cert}",
             f"nts cookie {tmp_path / 'nts-keys'}"]
    with peers.ntpsec_in_namespace(tmp_path, lines) as ntpd:
        yield ntpd
