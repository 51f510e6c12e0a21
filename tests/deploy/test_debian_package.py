"""The Debian package (debian/): built from the working tree, checked with lintian, its systemd
unit rated with systemd-analyze, installed into a minimal Debian 12, and run there under
systemd with the unit's whole sandbox.

One package build per run (module fixture `package`: the binary is compiled from scratch, about
10 minutes on two cores); every test reuses it. The copy of the tree, the build and the .debs
live in a temporary directory under build-deploy/, removed at the end.

Network: containers use the host's network (podman_env); apt reaches the host's Debian mirror,
and the daemon under test only polls a simulator on 127.0.0.1, never the packaged
configuration's pool servers (that file is replaced before systemd boots).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import peers  # the integration suite's (conftest.py): simulator, free ports
import podman_env
from helpers import wait_for

REPO = podman_env.REPO
UNIT = REPO / "deploy" / "systemd" / "ntp-monitor.service"
MAX_EXPOSURE = 2.0
SIM_OFFSET_S = 0.05  # the simulator's clock error, which the installed daemon must measure


@dataclass
class Package:
    outdir: Path  # dpkg-buildpackage's output directory (mounted into the containers)
    source: Path  # the copy of the tree that was built
    copied: dict[str, str]  # path in the copy -> digest before the build
    deb: Path
    root: Path  # the .deb unpacked (dpkg-deb -x)
    build_s: float


def _version() -> str:
    first = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    match = re.match(r"ntp-monitor \(([^)]+)\)", first)
    assert match, first
    return match.group(1)


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_files() -> list[str]:
    """The committed and working-tree files, as `git ls-files -co --exclude-standard` lists
    them (a tracked file deleted in the working tree is left out)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                         capture_output=True, check=True, timeout=60)
    names = [n for n in out.stdout.decode().split("\0") if n]
    return [n for n in names if (REPO / n).is_file() or (REPO / n).is_symlink()]


@pytest.fixture(scope="module")
def package() -> Package:
    podman_env.WORK.mkdir(parents=True, exist_ok=True)
    outdir = Path(tempfile.mkdtemp(prefix="debian-package-", dir=podman_env.WORK))
    outdir.chmod(0o755)  # apt in the container reads the .deb as the user _apt
    source = outdir / "ntp-monitor"
    copied = {}
    for name in _tree_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
        copied[name] = _digest(target)
    log = outdir / "build.log"
    env = dict(os.environ, LC_ALL="C.UTF-8")
    env.pop("MAKEFLAGS", None)
    started = time.monotonic()
    with open(log, "w") as out:
        rc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-j2"], cwd=source,
                            stdout=out, stderr=subprocess.STDOUT, env=env,
                            timeout=3600).returncode
    build_s = time.monotonic() - started
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"dpkg-buildpackage exited {rc} after {build_s:.0f} s ({log}):\n{tail}",
                    pytrace=False)
    deb = outdir / f"ntp-monitor_{_version()}_amd64.deb"
    assert deb.is_file(), sorted(p.name for p in outdir.iterdir())
    root = outdir / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
    print(f"\npackage: {deb.name}, {deb.stat().st_size / 1024:.0f} KiB, built in "
          f"{build_s:.0f} s")
    yield Package(outdir, source, copied, deb, root, build_s)
    shutil.rmtree(outdir, ignore_errors=True)


# ----------------------------------------------------------------------------------------
# The build and the package's contents


def test_build_writes_only_into_its_build_directory(package):
    changed = [n for n, digest in package.copied.items()
               if not (package.source / n).exists() or _digest(package.source / n) != digest]
    assert not changed, f"the package build modified or removed source files: {changed}"
    new = sorted(str(p.relative_to(package.source)) for p in package.source.rglob("*")
                 if (p.is_file() or p.is_symlink())
                 and str(p.relative_to(package.source)) not in package.copied)
    assert any(n.startswith("build-deb/") for n in new), "no build directory build-deb/"
    # Everything else the build left must be git-ignored (build-deb/ by /build*/, debian/'s
    # leftovers by debian/.gitignore), so that a package build in a checkout leaves
    # `git status` clean.
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin", "-z"], cwd=REPO,
                             input="\0".join(new).encode(), capture_output=True,
                             timeout=120).stdout.decode().split("\0")
    not_ignored = sorted(set(new) - set(ignored))
    assert not not_ignored, f"the build left files that git does not ignore: {not_ignored}"


def test_lintian_finds_no_errors(package):
    debs = sorted(str(p) for p in package.outdir.glob("*.deb"))
    assert len(debs) == 2, debs  # the package and its -dbgsym
    out = subprocess.run(["lintian", "--display-info", "--pedantic", *debs],
                         capture_output=True, text=True, timeout=900)
    tags = [line for line in out.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    errors = [t for t in tags if t.startswith("E: ")]
    warnings = [t for t in tags if t.startswith("W: ")]
    print(f"\nlintian: {len(errors)} errors, {len(warnings)} warnings, "
          f"{len(tags) - len(errors) - len(warnings)} other tags")
    for tag in tags:
        print("  " + tag)
    assert not errors, "\n".join(errors)
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_installs_the_repository_files(package):
    root = package.root
    assert (root / "lib/systemd/system/ntp-monitor.service").read_bytes() == UNIT.read_bytes()
    assert (root / "usr/share/bash-completion/completions/ntp-monitor").read_bytes() == \
        (REPO / "deploy/completion/ntp-monitor.bash").read_bytes()
    with gzip.open(root / "usr/share/man/man8/ntp-monitor.8.gz") as man:
        assert man.read() == (REPO / "docs/man/ntp-monitor.8").read_bytes()
    # The packaged configuration: the project's example plus the history database.
    assert (root / "etc/ntp-monitor/servers.yaml").read_text() == \
        (REPO / "config/servers.yaml").read_text() + \
        (REPO / "debian/servers-history.yaml").read_text()
    sysusers = (root / "usr/lib/sysusers.d/ntp-monitor.conf").read_text()
    assert re.search(r"^u ntp-monitor ", sysusers, re.M), sysusers
    binary = root / "usr/bin/ntp-monitor"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=30)
    assert version.stdout.strip() == _version(), "package and program versions differ"
    control = subprocess.run(["dpkg-deb", "-f", str(package.deb), "Depends"],
                             capture_output=True, text=True, check=True).stdout
    for needed in ("libsystemd0", "procps", "systemd-sysusers"):
        assert needed in control, f"Depends lacks {needed}: {control}"
    print(f"\nbinary {binary.stat().st_size / 1024:.0f} KiB, Depends: {control.strip()}")


def test_unit_exposure_is_low():
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout)
    assert match, out.stdout + out.stderr
    exposure = float(match.group(1))
    open_points = [line for line in out.stdout.splitlines() if line.startswith("✗")]
    print(f"\nsystemd-analyze security: exposure {exposure} (at most {MAX_EXPOSURE})")
    for line in open_points:
        print("  " + re.sub(r"\s{2,}", "  ", line))
    assert exposure <= MAX_EXPOSURE


# ----------------------------------------------------------------------------------------
# Installed into a minimal Debian 12, then run under systemd


class Container:
    def __init__(self, name: str):
        self.name = name

    def sh(self, script: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return podman_env.podman("exec", self.name, "bash", "-c", script, check=False,
                                 timeout=timeout)

    def remove(self) -> None:
        podman_env.podman("rm", "-f", "-t", "2", self.name, check=False)


@dataclass
class Installed:
    steps: dict[str, subprocess.CompletedProcess]  # what ran after the install, by name
    image: str  # the container with the package installed, committed, for the systemd stage
    simulator: peers.Simulator
    prometheus_port: int
    dashboard_port: int


@pytest.fixture(scope="module")
def installed(package, base_image, tmp_path_factory) -> Installed:
    """Installs the .deb with apt into a container of the minimal root, runs the checks of
    test_install_*, then prepares the system for the systemd stage: the daemon's
    configuration points at a loopback simulator and its ports are free ones."""
    tag = f"{os.getpid()}-{int(time.time())}"
    container = Container(f"ntpmon-deb-install-{tag}")
    image = f"localhost/ntpmon-deb-installed:{tag}"
    # The package's own binary, on the host's loopback (the containers share the host's
    # network): the NTP server the installed daemon polls.
    simulator = peers.Simulator(tmp_path_factory.mktemp("simulator"),
                                args=["--offset", str(SIM_OFFSET_S)], max_runtime_s=1800,
                                binary=package.root / "usr/bin/ntp-monitor").start()
    prometheus_port, dashboard_port = peers.free_tcp_port(), peers.free_tcp_port()
    try:
        podman_env.podman("run", "-d", "--name", container.name, "--network", "host",
                          "-v", f"{package.outdir}:/pkg:ro", *podman_env.ca_run_args(),
                          base_image, "sleep", "3600")
        started = time.monotonic()
        steps = {"install": container.sh(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -qq /pkg/ntp-monitor_*.deb", timeout=900)}
        print(f"\napt-get install: {time.monotonic() - started:.0f} s")
        for name, script in {
            "version": "ntp-monitor --version",
            "check-config": "ntp-monitor check-config /etc/ntp-monitor/servers.yaml",
            "user": "getent passwd ntp-monitor",
            "files": "ls /usr/share/man/man8/ntp-monitor.8.gz "
                     "/usr/share/bash-completion/completions/ntp-monitor",
            "conffiles": "dpkg-query -W -f='${Conffiles}' ntp-monitor",
            # --man=no: man-db is not installed here (the host's test renders the page).
            "verify": "systemd-analyze verify --man=no ntp-monitor.service",
            "enabled": "systemctl is-enabled ntp-monitor.service",
        }.items():
            steps[name] = container.sh(script)
        if steps["install"].returncode == 0:
            # No packet may leave the machine: the daemon polls the simulator only, and
            # nothing else that could is started when systemd boots.
            config = ("servers:\n"
                      f"  - host: 127.0.0.1\n    name: simulator\n    port: {simulator.port}\n"
                      "history:\n  path: /var/lib/ntp-monitor/history.db\n")
            args = (f'ARGS="--listen-address 127.0.0.1 --prometheus-port {prometheus_port} '
                    f'--web-dashboard {dashboard_port}"')
            prepared = container.sh(
                f"printf '%s' '{config}' > /etc/ntp-monitor/servers.yaml && "
                f"echo '{args}' > /etc/default/ntp-monitor && "
                "systemctl mask systemd-timesyncd.service && "
                "ntp-monitor check-config /etc/ntp-monitor/servers.yaml")
            assert prepared.returncode == 0, prepared.stdout + prepared.stderr
            podman_env.podman("stop", "-t", "1", container.name)
            podman_env.podman("commit", container.name, image)
        yield Installed(steps, image, simulator, prometheus_port, dashboard_port)
    finally:
        container.remove()
        podman_env.podman("rmi", "-f", image, check=False)
        simulator.stop()


def _ok(step: subprocess.CompletedProcess) -> str:
    assert step.returncode == 0, f"{step.args[-1]}: exit {step.returncode}\n" \
                                 f"{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    return step.stdout


def test_install_into_minimal_debian(installed):
    _ok(installed.steps["install"])
    assert _ok(installed.steps["version"]).strip() == _version()
    assert "ok" in _ok(installed.steps["check-config"])
    user = _ok(installed.steps["user"]).strip().split(":")
    assert user[0] == "ntp-monitor" and int(user[2]) < 1000, user  # a system user
    assert user[5] == "/var/lib/ntp-monitor" and user[6].endswith("nologin"), user
    _ok(installed.steps["files"])
    conffiles = _ok(installed.steps["conffiles"]).split()
    assert "/etc/ntp-monitor/servers.yaml" in conffiles, conffiles
    assert "/etc/default/ntp-monitor" in conffiles, conffiles
    verify = installed.steps["verify"]
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", \
        verify.stdout + verify.stderr
    assert _ok(installed.steps["enabled"]).strip() == "enabled"


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def _wait(what: str, check, timeout_s: float = 30.0):
    return wait_for(what, check, timeout_s, interval_s=0.5, ignore=(OSError, ValueError))


@pytest.fixture
def booted(installed):
    """The installed system booted with systemd as PID 1. CAP_SYS_ADMIN lets systemd build the
    service's mount namespace (read-only /, /proc subset=pid, ...); without it systemd would
    quietly run the service without the file-system part of its sandbox."""
    if installed.steps["install"].returncode != 0:
        pytest.fail("the package did not install", pytrace=False)
    container = Container(f"ntpmon-deb-systemd-{os.getpid()}-{int(time.time())}")
    try:
        podman_env.podman("run", "-d", "--name", container.name, "--network", "host",
                          "--systemd=always", "--cap-add", "SYS_ADMIN", installed.image,
                          "/lib/systemd/systemd")
        # systemctl answers once systemd's bus is up; --wait returns when boot has finished.
        _wait("systemd to boot", lambda: container.sh(
            "systemctl is-system-running --wait").stdout.strip() in ("running", "degraded"))
        yield container
    finally:
        journal = container.sh("journalctl --no-pager -u ntp-monitor -n 30")
        print("\njournal of ntp-monitor.service (last lines):\n" + journal.stdout)
        container.remove()


def _show(container: Container, *props: str) -> dict[str, str]:
    out = _ok(container.sh(f"systemctl show -p {','.join(props)} ntp-monitor"))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_service_runs_sandboxed_under_systemd(installed, booted):
    # Enabled by the package, so systemd starts it at boot; Type=notify: "active" only once
    # the daemon said READY=1.
    def settled():
        s = _show(booted, "ActiveState", "SubState", "MainPID", "StatusText")
        return s if s["ActiveState"] in ("active", "failed") else None

    state = _wait("the service to start", settled)
    assert state["ActiveState"] == "active" and state["SubState"] == "running", state
    assert state["StatusText"], "no STATUS= from sd_notify"
    pid = state["MainPID"]

    base = f"http://127.0.0.1:{installed.dashboard_port}"
    with urllib.request.urlopen(f"http://127.0.0.1:{installed.prometheus_port}/readyz",
                                timeout=5) as ready:
        assert ready.status == 200
    server = _wait("a measurement of the simulator", lambda: [
        s for s in _get_json(f"{base}/api/v1/servers")["servers"]
        if s["ok"] and s["offset"] is not None])[0]
    assert abs(server["offset"] - SIM_OFFSET_S) < 0.005, server
    print(f"\nthe sandboxed daemon measured the simulator at {server['offset']:+.6f} s "
          f"(its clock is {SIM_OFFSET_S:+.3f} s off)")

    status = _ok(booted.sh(f"cat /proc/{pid}/status"))
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^CapBnd:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status
    mounts = {fields[4]: line for line in _ok(booted.sh(f"cat /proc/{pid}/mountinfo"))
              .splitlines() if len(fields := line.split()) > 5}
    assert mounts["/"].split()[5].startswith("ro,"), mounts["/"]  # ProtectSystem=strict
    assert "subset=pid" in mounts["/proc"] and "hidepid=invisible" in mounts["/proc"], \
        mounts["/proc"]
    assert mounts["/var/lib/ntp-monitor"].split()[5].startswith("rw"), mounts
    # The state directory and the history database belong to the user, private (UMask).
    files = _ok(booted.sh("stat -c '%U %a %n' /var/lib/ntp-monitor "
                          "/var/lib/ntp-monitor/history.db")).splitlines()
    assert files == ["ntp-monitor 750 /var/lib/ntp-monitor",
                     "ntp-monitor 600 /var/lib/ntp-monitor/history.db"], files


def test_service_reloads_and_stops(installed, booted):
    _wait("the service to be active",
          lambda: _show(booted, "ActiveState")["ActiveState"] == "active")
    pid = _show(booted, "MainPID")["MainPID"]
    _ok(booted.sh("systemctl reload ntp-monitor"))
    after = _show(booted, "ActiveState", "MainPID", "NRestarts")
    assert after == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}, after
    _wait("the reload in the journal", lambda: "event=config_reloaded" in booted.sh(
        "journalctl --no-pager -u ntp-monitor").stdout, timeout_s=10)

    started = time.monotonic()
    _ok(booted.sh("systemctl stop ntp-monitor"))
    stop_s = time.monotonic() - started
    stopped = _show(booted, "ActiveState", "Result", "ExecMainStatus")
    assert stopped == {"ActiveState": "inactive", "Result": "success",
                       "ExecMainStatus": "0"}, stopped
    assert stop_s < 5, f"stop took {stop_s:.1f} s"


def test_bad_configuration_fails_the_start_without_restarts(booted):
    _ok(booted.sh("systemctl stop ntp-monitor && "
                  "printf 'servers:\\n  - host: 127.0.0.1\\n    port: 70000\\n' "
                  "> /etc/ntp-monitor/servers.yaml"))
    start = booted.sh("systemctl start ntp-monitor")
    assert start.returncode != 0, "a bad configuration must fail `systemctl start`"
    journal = booted.sh("journalctl --no-pager -u ntp-monitor").stdout
    assert re.search(r"servers\.yaml:3:\d+: ", journal), journal
    time.sleep(7)  # longer than RestartSec=5s: exit status 2 must not be restarted
    state = _show(booted, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert state == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "2",
                     "NRestarts": "0"}, state
