"""The README's commands on a new machine: a minimal Debian 12 with nothing but git and the clone.

`make test-fresh` (and CI, after `make test`): bootstraps `mmdebstrap --variant=minbase
bookworm` (no make, no compiler, no Python, no Node.js), imports it into podman, installs git,
clones the committed tree into it, and runs:

1. `./install`, the README's first command, with nothing else installed;
2. a smoke test of the daemon it built: a simulator on loopback, the daemon monitoring it (the
   README's `make run` monitors public servers, which no test may query), /metrics read from
   the host shows the server reachable, SIGTERM stops it;
3. `scripts/install-deps` (what `make test` installs first), then the tests that broke on a new
   machine before: every integration test module imports (python3-yaml), the web-security test
   (curl) and the dashboard test under Debian 12's own Node.js 18 (playwright-core's version).

Every container runs with --network host: the simulator and the daemon listen on loopback, and
downloads go to the package registries this machine's apt and npm use, verified with the host's
CA certificates (podman_env.ca_run_args).
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
import uuid

import pytest

import peers  # the integration suite's (conftest.py): free ports
import podman_env

pytestmark = pytest.mark.fresh

CLONE = "/root/ntp-monitor"


class FreshMachine:
    """A running container of the fresh root; exec() runs a shell command in the clone."""

    def __init__(self, image: str):
        self.name = f"ntpmon-fresh-{uuid.uuid4().hex[:8]}"
        podman_env.podman(
            "run", "-d", "--name", self.name, "--network", "host", "--shm-size", "1g",
            "-v", f"{podman_env.REPO}:/src:ro", *podman_env.ca_run_args(),
            image, "sleep", "7200")

    def exec(self, script: str, timeout: float = 1800, check: bool = True,
             workdir: str = CLONE) -> subprocess.CompletedProcess:
        started = time.monotonic()
        out = podman_env.podman("exec", "-w", workdir, self.name, "bash", "-c", script,
                                timeout=timeout, check=False)
        took = time.monotonic() - started
        print(f"[fresh {took:6.1f} s] {script.splitlines()[0][:100]}")
        if check and out.returncode != 0:
            raise AssertionError(f"`{script}` exited {out.returncode} in the fresh container:\n"
                                 f"{out.stdout[-2500:]}\n{out.stderr[-2500:]}")
        return out

    def remove(self) -> None:
        podman_env.podman("rm", "-f", "-t", "0", self.name, check=False)


@pytest.fixture(scope="module")
def machine():
    image = podman_env.bootstrap_base_image(force=True)
    m = FreshMachine(image)
    try:
        # The root really is bare: what the README's first command has to bring itself.
        bare = m.exec("for t in make g++ cmake python3 node npm git curl; do "
                      "command -v $t || true; done", workdir="/")
        assert bare.stdout.strip() == "", f"not a bare machine: {bare.stdout}"
        m.exec("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
               "apt-get install -y -qq --no-install-recommends git >/dev/null", workdir="/")
        m.exec(f"git clone -q /src {CLONE}", workdir="/")
        head = subprocess.run(["git", "-C", str(podman_env.REPO), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert m.exec("git rev-parse HEAD").stdout.strip() == head
        yield m
    finally:
        m.remove()


@pytest.fixture(scope="module")
def installed(machine):
    """The README's first command, on the bare machine."""
    machine.exec("./install > /tmp/install.log 2>&1 || { tail -80 /tmp/install.log; exit 1; }")
    return machine


def test_install_builds_the_binary_with_debian_node_18(installed):
    version = installed.exec("build/ntp-monitor --version").stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    # Debian 12's own Node.js built the dashboard (npm ci with engine-strict).
    node = installed.exec("node --version && dpkg-query -W -f='${Version}' nodejs").stdout
    assert node.startswith("v18."), node
    assert "nodesource" not in node
    # ./install builds the binary only; the packages of the tests are not there yet.
    assert installed.exec("command -v chromium clang promtool || true").stdout.strip() == ""


def test_daemon_smoke(installed):
    sim_port = peers.free_udp_port()
    metrics_port, api_port = peers.free_tcp_port(), peers.free_tcp_port()
    config = (f"servers:\n  - {{name: sim, host: 127.0.0.1, port: {sim_port}}}\n"
              "poll: {min: 1, max: 1}\n")
    installed.exec(f"cat > /tmp/smoke.yaml <<'EOF'\n{config}EOF")
    installed.exec(
        f"(build/ntp-monitor simulate --listen 127.0.0.1:{sim_port} --max-runtime 120 "
        f"> /tmp/sim.log 2>&1 &) && (build/ntp-monitor --config /tmp/smoke.yaml "
        f"--prometheus-port {metrics_port} --web-dashboard {api_port} "
        f"--listen-address 127.0.0.1 > /tmp/daemon.log 2>&1 &)")
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                            timeout=2) as r:
                    text = r.read().decode()
                if re.search(r'^ntp_monitor_server_up\{[^}]*server="sim"[^}]*\} 1$',
                             text, re.M):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        log = installed.exec("cat /tmp/daemon.log", check=False).stdout
        assert re.search(r'^ntp_monitor_server_up\{[^}]*server="sim"[^}]*\} 1$', text,
                         re.M), f"server not reachable in /metrics:\n{text[-3000:]}\n{log}"
        # The dashboard answers too, from the same build.
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        health = installed.exec(
            f"build/ntp-monitor healthcheck http://127.0.0.1:{metrics_port}/healthz", check=False)
        assert health.returncode == 0, health.stderr
    finally:
        installed.exec("pkill -TERM -f 'build/ntp-monitor' ; sleep 1; "
                       "pgrep -f 'build/ntp-monitor' && exit 1 || exit 0", check=False)
    stopped = installed.exec("grep -c 'event=daemon_stopped' /tmp/daemon.log", check=False)
    assert stopped.stdout.strip() == "1", installed.exec("cat /tmp/daemon.log").stdout


def test_test_dependencies_on_the_fresh_machine(installed):
    """What `make test` needs, installed by scripts/install-deps alone, and the tests that
    failed on a new machine before it installed them."""
    installed.exec("scripts/install-deps > /tmp/deps.log 2>&1 || { tail -80 /tmp/deps.log; exit 1; }")
    # Every module of both suites imports (yaml, curl's callers, ...).
    collect = installed.exec("/usr/bin/python3 -m pytest -q --collect-only tests/integration "
                             "| tail -3")
    assert re.search(r"\d+ tests? collected", collect.stdout), collect.stdout
    for tool in ("curl", "promtool", "chromium", "chronyd", "podman", "mmdebstrap", "lintian",
                 "dpkg-buildpackage", "systemd-analyze", "clang++", "clang-format"):
        installed.exec(f"command -v {tool}")
    # helm, from its npm package into .deps/helm (x86_64): the chart lints with it.
    if installed.exec("uname -m").stdout.strip() == "x86_64":
        lint = installed.exec(".deps/helm/helm lint --strict deploy/helm/ntp-monitor 2>&1")
        assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout, lint.stdout
    run = installed.exec(
        "NTPMON_BUILD_DIR=$PWD/build /usr/bin/python3 -m pytest -q -p no:cacheprovider "
        "tests/integration/test_dashboard.py tests/integration/test_web_security.py "
        "tests/integration/test_helm_chart.py "  # the chart's schemas, on Debian's Node.js 18
        "2>&1 | tail -15", check=False)
    print(run.stdout)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert re.search(r"\d+ passed", summary) and "failed" not in summary and \
        "error" not in summary and "skipped" not in summary, run.stdout
