"""The container image (deploy/container/Containerfile) and the compose file beside it.

The image is built once per run from a clean copy of the tree (the files git tracks or would
track: what a fresh clone plus the work in progress holds, without build directories), on a
stand-in for debian:bookworm-slim bootstrapped with mmdebstrap (the same trimming, so that the
size is what it will be on the real one), or on the image named by NTPMON_CONTAINER_BASE. It
is then run the way docs/deploy.md says, read-only and without capabilities,
against a simulator on loopback: the daemon must measure the simulator, answer its health
check, run as uid 10001, write its history into the volume, stop at once on SIGTERM with
status 0, and the image must stay under 40 MB compressed.

The compose file has no container runtime here: it is checked as data (services, the files it
mounts, the Prometheus configuration and rules through promtool, the Grafana provisioning).

Every container runs with --network host; every port is on 127.0.0.1. The image stays as
localhost/ntp-monitor:test (a second run reuses its cached layers); containers are removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

import helpers  # the integration suite's (conftest.py): HTTP
import peers  # the integration suite's: simulator, process handling, free ports
import podman_env

REPO = podman_env.REPO
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
COMPOSE = REPO / "deploy" / "container" / "compose.yaml"
IMAGE = "localhost/ntp-monitor:test"
UID = 10001
# Where the image's HEALTHCHECK points (the default --prometheus-port of its CMD).
HEALTHCHECK = ["/usr/bin/ntp-monitor", "healthcheck", "http://127.0.0.1:9100/healthz"]
DEFAULT_CMD = ["--config", "/app/config/servers.yaml", "--prometheus-port", "9100",
               "--web-dashboard", "8000", "--listen-address", "0.0.0.0"]
MAX_COMPRESSED_BYTES = 40 * 1000 * 1000
# What the Containerfile adds to the base image (binary, libraries, CA certificates), gzip.
MAX_OWN_COMPRESSED_BYTES = 15 * 1000 * 1000


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _inspect(kind: str, name: str) -> dict:
    return json.loads(podman_env.podman(kind, "inspect", name).stdout)[0]


def _cmake_version() -> str:
    text = (REPO / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*ntp-monitor\s+VERSION\s+([0-9.]+)", text)
    assert match, "project(ntp-monitor VERSION x.y.z) not found in CMakeLists.txt"
    return match.group(1)


# ------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def build_context(tmp_path_factory) -> Path:
    """A copy of the files git tracks or would track (no build/, no .deps/, no node_modules):
    the tree a fresh clone builds from, so the test does not depend on a .dockerignore."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    context = tmp_path_factory.mktemp("context")
    for rel in filter(None, listed):
        src = REPO / rel
        if not src.is_file():  # deleted from the work tree but still tracked
            continue
        dst = context / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return context


# debian:bookworm-slim's trimming (the official image is built with the same dpkg filters): no
# documentation but the copyright files, no man pages, no translations. It applies to the
# packages the Containerfile installs as well.
SLIM_IMAGE = "localhost/ntp-monitor-base:bookworm-slim"
SLIM_DPKG_FILTERS = [
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*", "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]


def _bootstrap_slim_image() -> str:
    """A stand-in for debian:bookworm-slim, so that the image's size means what it will mean
    on the real one: podman_env's minimal root (the `base_image` fixture, a new Debian 12
    machine) is about twice as large, with man pages, translations and usrmerge's Perl.

    podman_env's minimal root with /usr merged from the start (the merged-usr hook: no
    usrmerge, so no perl) and the dpkg filters above; reused while build-deploy names it."""
    return podman_env.bootstrap_image(
        SLIM_IMAGE, purpose=" (stand-in for debian:bookworm-slim)",
        mmdebstrap_args=["--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                         *[f"--dpkgopt={f}" for f in SLIM_DPKG_FILTERS]])


@pytest.fixture(scope="module")
def base() -> str:
    """The image both stages start FROM: NTPMON_CONTAINER_BASE (say, the real
    debian:bookworm-slim where a registry is reachable), else the bootstrapped stand-in."""
    return os.environ.get("NTPMON_CONTAINER_BASE") or _bootstrap_slim_image()


@pytest.fixture(scope="module")
def image(base, build_context) -> str:
    """localhost/ntp-monitor:test, built once per run (podman's layer cache makes a rebuild of
    an unchanged tree on the same base take seconds)."""
    # The host's CA bundle (a proxy that intercepts TLS) and proxy settings, as podman_env
    # hands them to containers: the bundle mounted (`podman build -v`), the variables as build
    # arguments (the Containerfile declares them with ARG, so they stay out of the image).
    ca_args: list[str] = []
    run_args = podman_env.ca_run_args()
    for flag, value in zip(run_args[::2], run_args[1::2]):
        ca_args += ["-v", value] if flag == "-v" else ["--build-arg", value]
    # The stand-in is tagged debian:bookworm-slim, the Containerfile's own FROM, which
    # --pull=never then resolves locally; another base is passed as the BASE_IMAGE argument.
    base_args = ["--build-arg", f"BASE_IMAGE={base}"]
    if base == SLIM_IMAGE:
        podman_env.podman("tag", SLIM_IMAGE, podman_env.SLIM_TAG)
        base_args = []
    started = time.monotonic()
    podman_env.podman("build", "--pull=never", "--network", "host", "--format", "docker",
                      *ca_args, *base_args,
                      "-f", str(build_context / CONTAINERFILE.relative_to(REPO)),
                      "-t", IMAGE, str(build_context), timeout=3600)
    print(f"\nimage {IMAGE} built on {base} in {time.monotonic() - started:.0f} s")
    return IMAGE


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    binary = peers.monitor_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} not found (the simulator runs on the host): build the "
                    "ntp-monitor target and set NTPMON_BUILD_DIR", pytrace=False)
    sim = peers.Simulator(tmp_path_factory.mktemp("sim"), args=["--offset", "0.002"])
    with sim.start():
        yield sim


class Container:
    """One `podman run -d` of the image, with its ports; removed (with its anonymous volume)
    by remove()."""

    def __init__(self, name: str, metrics_port: int, dashboard_port: int):
        self.name = name
        self.metrics_port = metrics_port
        self.dashboard_port = dashboard_port

    def get(self, port: int, path: str) -> tuple[int, bytes]:
        """(status, body); status 0 when nothing answers."""
        try:
            status, _, body = helpers.http_get(port, path, timeout_s=3)
            return status, body
        except OSError:
            return 0, b""

    def metrics(self) -> str:
        status, body = self.get(self.metrics_port, "/metrics")
        return body.decode() if status == 200 else ""

    def state(self) -> dict:
        return _inspect("container", self.name)["State"]

    def logs(self) -> str:
        out = podman_env.podman("logs", self.name, check=False)
        return (out.stdout + out.stderr)[-4000:]

    def remove(self) -> None:
        podman_env.podman("rm", "-f", "-v", "-t", "0", self.name, check=False)


@pytest.fixture(scope="module")
def container(image, simulator, tmp_path_factory):
    """The image as docs/deploy.md runs it: read-only root, no capabilities, the
    configuration directory mounted at /app/config, history in the volume. Host network, so
    its ports are taken on 127.0.0.1 only."""
    config_dir = tmp_path_factory.mktemp("config")
    # The daemon runs as uid 10001: the mounted directory must be readable by others.
    config_dir.chmod(0o755)
    config = config_dir / "servers.yaml"
    config.write_text(
        "servers:\n"
        "  - name: sim\n"
        "    host: 127.0.0.1\n"
        f"    port: {simulator.port}\n"
        "    poll: 1            # loopback only: a fast poll keeps the test short\n"
        "poll:\n"
        "  min: 1\n"
        "  max: 1\n"
        "history:\n"
        "  path: /var/lib/ntp-monitor/history.db\n")
    config.chmod(0o644)
    ctr = Container(f"ntpmon-test-{uuid.uuid4().hex[:8]}", peers.free_tcp_port(), peers.free_tcp_port())
    health = json.dumps(["/usr/bin/ntp-monitor", "healthcheck",
                         f"http://127.0.0.1:{ctr.metrics_port}/healthz"])
    try:
        podman_env.podman(
            "run", "-d", "--name", ctr.name, "--network", "host", "--read-only",
            "--cap-drop=all", "-v", f"{config_dir}:/app/config:ro",
            # The image's check uses port 9100; this run's port is another. No periodic
            # timer: the test runs the check itself.
            "--health-cmd", health, "--health-interval", "disable",
            image, "--config", "/app/config/servers.yaml",
            "--prometheus-port", str(ctr.metrics_port),
            "--web-dashboard", str(ctr.dashboard_port), "--listen-address", "127.0.0.1")
        yield ctr
    finally:
        ctr.remove()


def _server_up(ctr: Container) -> bool:
    return bool(re.search(r'^ntp_monitor_server_up\{[^}]*server="sim"[^}]*\} 1$',
                          ctr.metrics(), re.M))


@pytest.fixture(scope="module")
def running(container):
    """The container once the daemon reports the simulator up."""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if _server_up(container):
            return container
        if not container.state().get("Running"):
            break
        time.sleep(0.3)
    pytest.fail(f"ntp_monitor_server_up{{server=\"sim\"}} never became 1; state "
                f"{container.state().get('Status')}; metrics:\n{container.metrics()[-2000:]}\n"
                f"logs:\n{container.logs()}", pytrace=False)


# ------------------------------------------------------------------------------------------
# The image


def test_image_configuration(image):
    """Entrypoint, default command, user, ports, volume, stop signal, health check, labels:
    exactly what docs/deploy.md promises."""
    info = _inspect("image", image)
    config = info["Config"]
    assert config["Entrypoint"] == ["/usr/bin/ntp-monitor"]
    assert config["Cmd"] == DEFAULT_CMD
    assert config["User"] == f"{UID}:{UID}"
    assert config["WorkingDir"] == "/app"
    assert set(config["ExposedPorts"]) == {"9100/tcp", "8000/tcp"}
    assert set(config["Volumes"]) == {"/var/lib/ntp-monitor"}
    assert config["StopSignal"] in ("SIGTERM", "15")
    health = info.get("HealthCheck") or info.get("Healthcheck") or config.get("Healthcheck")
    assert health, f"no HEALTHCHECK in the image (built with --format docker?): {info}"
    assert health["Test"] == ["CMD", *HEALTHCHECK]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "ntp-monitor"
    assert labels["org.opencontainers.image.version"] == _cmake_version(), (
        "ARG VERSION in the Containerfile differs from project(VERSION) in CMakeLists.txt")
    assert labels["org.opencontainers.image.description"]
    assert "://" not in labels["org.opencontainers.image.source"]


def test_image_contents(image):
    """Only the runtime: no compiler, no npm, no apt lists; the binary's libraries resolve;
    the example configuration is in place and valid; the volume belongs to the user."""
    script = (
        "set -e; "
        "for tool in gcc g++ cc cmake npm node make; do "
        "  if command -v $tool >/dev/null; then echo \"build tool $tool\"; fi; done; "
        "ls /var/lib/apt/lists | grep -v '^lock$' | grep -v '^partial$' | sed 's/^/apt list /'; "
        "ldd /usr/bin/ntp-monitor | grep 'not found' || true; "
        "stat -c 'volume %u:%g %a' /var/lib/ntp-monitor; "
        "test -s /etc/ssl/certs/ca-certificates.crt && echo 'ca bundle'; "
        "/usr/bin/ntp-monitor check-config /app/config/servers.yaml")
    out = podman_env.run_container(image, ["-c", script],
                                   extra=["--entrypoint", "/bin/sh", "--user", "0"],
                                   check=False)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    assert not [line for line in lines if line.startswith(("build tool", "apt list"))], lines
    assert not [line for line in lines if "not found" in line], lines
    assert f"volume {UID}:{UID} 750" in lines
    assert "ca bundle" in lines
    assert (REPO / "config" / "servers.yaml").read_text() == podman_env.run_container(
        image, ["/app/config/servers.yaml"], extra=["--entrypoint", "/bin/cat"]).stdout


def test_runs_read_only_and_measures_the_simulator(running):
    """Read-only root, no capabilities: the daemon polls the simulator, serves /metrics and
    the dashboard, and keeps its history in the volume."""
    metrics = running.metrics()
    assert re.search(r'^ntp_monitor_server_stratum\{[^}]*server="sim"[^}]*\} 2$', metrics,
                     re.M), metrics[-2000:]
    assert re.search(r"^ntp_monitor_history_enabled 1$", metrics, re.M), (
        "history in /var/lib/ntp-monitor is off:\n" + running.logs())
    status, body = running.get(running.dashboard_port, "/")
    assert status == 200 and b"<html" in body.lower()
    status, body = running.get(running.dashboard_port, "/api/v1/servers")
    assert status == 200 and b'"sim"' in body
    inspect = _inspect("container", running.name)
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    listing = podman_env.podman("exec", running.name, "ls", "-ln",
                                "/var/lib/ntp-monitor").stdout
    assert re.search(rf"^-\S+\s+\d+\s+{UID}\s+{UID}\s+\d+ .* history\.db$", listing, re.M), (
        listing)


def test_runs_as_uid_10001_without_capabilities(running):
    status = podman_env.podman("exec", running.name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split() == [str(UID)] * 4, status
    assert fields["Gid"].split() == [str(UID)] * 4, status
    assert int(fields["CapEff"], 16) == 0, status
    exe = podman_env.podman("exec", running.name, "readlink", "/proc/1/exe").stdout.strip()
    assert exe == "/usr/bin/ntp-monitor"
    # What ps and `podman top` show (the huge-page re-exec must keep it, not "exe").
    assert fields["Name"].strip() == "ntp-monitor", status


def test_healthcheck(running):
    out = podman_env.podman("healthcheck", "run", running.name, check=False)
    assert out.returncode == 0, f"health check failed: {out.stdout}{out.stderr}"
    state = running.state()
    health = state.get("Health") or state.get("Healthcheck") or {}
    assert health.get("Status") == "healthy", state
    # And a check that cannot pass fails: the same command against a closed port.
    closed = peers.free_tcp_port()
    out = podman_env.podman("exec", running.name, "/usr/bin/ntp-monitor", "healthcheck",
                            f"http://127.0.0.1:{closed}/healthz", check=False)
    assert out.returncode == 1, out.stdout + out.stderr


def test_sigterm_stops_within_2_s_with_status_0(running):
    # Last test of the module that uses the container (pytest runs them in file order).
    started = time.monotonic()
    podman_env.podman("stop", "-t", "10", running.name)
    elapsed = time.monotonic() - started
    state = running.state()
    print(f"\npodman stop (SIGTERM): {elapsed:.2f} s, exit code {state['ExitCode']}")
    assert elapsed < 2.0, f"stop took {elapsed:.2f} s:\n{running.logs()}"
    assert state["ExitCode"] == 0, running.logs()


def _files_and_packages(image: str) -> tuple[dict[str, int], dict[str, int]]:
    """{path: bytes} of the regular files and {package: installed KiB} of an image."""
    script = ("find / -xdev -type f -printf '%s %p\\n'; echo ---; "
              "dpkg-query -W -f '${Installed-Size} ${Package}\\n'")
    out = podman_env.run_container(image, ["-c", script],
                                   extra=["--entrypoint", "/bin/sh"]).stdout
    files_text, packages_text = out.split("\n---\n")
    files = {path: int(size) for size, path in
             (line.split(" ", 1) for line in files_text.splitlines())}
    packages = {name: int(kib or 0) for kib, name in
                (line.split(" ", 1) for line in packages_text.splitlines())}
    return files, packages


def test_image_size(image, base, tmp_path):
    """Compressed (gzip layers, as `podman push` stores them in a registry) under 40 MB, and
    what the Containerfile adds to the base under 15 MB; prints what takes the space."""
    info = _inspect("image", image)
    layout = tmp_path / "oci"
    podman_env.podman("push", "--quiet", image, f"oci:{layout}:test")
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    layers = manifest["layers"]
    assert all(layer["mediaType"].endswith("gzip") for layer in layers), layers
    compressed = sum(layer["size"] for layer in layers)
    base_info = _inspect("image", base)
    base_layers = len(base_info["RootFS"]["Layers"])
    assert info["RootFS"]["Layers"][:base_layers] == base_info["RootFS"]["Layers"]
    own_compressed = sum(layer["size"] for layer in layers[base_layers:])

    print(f"\nimage {image}: {_mb(info['Size'])} uncompressed, {_mb(compressed)} compressed; "
          f"base {base}: {_mb(base_info['Size'])} / {_mb(compressed - own_compressed)}, "
          f"added by the Containerfile: {_mb(info['Size'] - base_info['Size'])} / "
          f"{_mb(own_compressed)}")
    history = json.loads(podman_env.podman("history", "--format", "json", image).stdout)
    print("layers with content (uncompressed):")
    for entry in history:
        if entry.get("size", 0) > 0:
            step = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", entry.get("CreatedBy", ""))
            print(f"  {_mb(entry['size']):>9}  {' '.join(step.split())[:100]}")
    files, packages = _files_and_packages(image)
    base_files, base_packages = _files_and_packages(base)
    added = {name: kib for name, kib in packages.items() if name not in base_packages}
    print("packages added to the base (installed size): " + ", ".join(
        f"{name} {kib / 1024:.1f} MiB" for name, kib in sorted(added.items(),
                                                                key=lambda p: -p[1])))
    new_files = sorted(((size, path) for path, size in files.items()
                        if base_files.get(path) != size), reverse=True)
    print("largest files added to the base:")
    for size, path in new_files[:8]:
        print(f"  {size / 2**20:6.2f} MiB  {path}")

    assert added, "no runtime package was installed"
    assert not [name for name in added if name.endswith("-dev")], added
    assert own_compressed < MAX_OWN_COMPRESSED_BYTES, (
        f"the Containerfile adds {_mb(own_compressed)} compressed")
    assert compressed < MAX_COMPRESSED_BYTES, (
        f"image is {_mb(compressed)} compressed, limit {_mb(MAX_COMPRESSED_BYTES)}")


# ------------------------------------------------------------------------------------------
# compose.yaml (checked as data: no compose runtime on this machine)


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _bind_mounts(service: dict) -> dict[str, Path]:
    """{target in the container: file or directory in the repository} of a service's bind
    mounts (short syntax; named volumes are skipped)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_compose_services_and_mounts():
    compose = _compose()
    services = compose["services"]
    assert {"ntp-monitor", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        for target, source in _bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert REPO in source.parents, f"{name}: {source} is outside the repository"
    ntpmon = services["ntp-monitor"]
    build = ntpmon["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == CONTAINERFILE
    assert _bind_mounts(ntpmon)["/app/config"] == REPO / "config"
    assert ntpmon.get("read_only") is True
    assert any(str(v).split(":")[1] == "/var/lib/ntp-monitor" for v in ntpmon["volumes"])


def test_compose_prometheus_config(tmp_path):
    """The Prometheus configuration the compose file mounts passes promtool with the rules
    mounted where it loads them, and scrapes the ntp-monitor service on its metrics port."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed (Debian package prometheus; scripts/install-deps)",
                    pytrace=False)
    prometheus = _compose()["services"]["prometheus"]
    mounts = _bind_mounts(prometheus)
    config_target = "/etc/prometheus/prometheus.yml"
    assert config_target in mounts, mounts
    # Lay the mounted files out as the container sees them, then check from there.
    root = tmp_path / "root"
    for target, source in mounts.items():
        dst = root / target.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dst)
        else:
            shutil.copy2(source, dst)
    config_file = root / config_target.lstrip("/")
    out = subprocess.run([promtool, "check", "config", str(config_file)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    config = yaml.safe_load(config_file.read_text())
    assert config["rule_files"], "the compose Prometheus loads no rules"
    for rules in config["rule_files"]:
        rules_file = config_file.parent / rules
        assert rules_file.is_file(), f"{rules} is not mounted next to prometheus.yml"
        assert rules_file.read_bytes() == (REPO / "deploy/prometheus/rules.yml").read_bytes()
        out = subprocess.run([promtool, "check", "rules", str(rules_file)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # deploy/prometheus/rules.yml selects up{job="ntp-monitor"}.
    targets = [t for c in jobs["ntp-monitor"]["static_configs"] for t in c["targets"]]
    assert targets == ["ntp-monitor:9100"], targets
    # The Grafana data source's timeInterval must equal the scrape interval.
    grafana = _compose()["services"]["grafana"]
    datasources = _bind_mounts(grafana)["/etc/grafana/provisioning/datasources"]
    source = yaml.safe_load((datasources / "prometheus.yml").read_text())["datasources"][0]
    interval = jobs["ntp-monitor"].get("scrape_interval", config["global"]["scrape_interval"])
    assert source["jsonData"]["timeInterval"] == interval
    assert source["url"] == "http://prometheus:9090"


def test_compose_grafana_provisioning():
    """Grafana finds the dashboard where its provider looks for it."""
    grafana = _compose()["services"]["grafana"]
    mounts = _bind_mounts(grafana)
    providers = mounts["/etc/grafana/provisioning/dashboards"]
    provider = yaml.safe_load((providers / "ntp-monitor.yml").read_text())["providers"][0]
    path = provider["options"]["path"]
    dashboards = [target for target, source in mounts.items()
                  if source == REPO / "deploy/grafana/ntp-monitor.json"]
    assert dashboards and all(Path(d).parent == Path(path) for d in dashboards), (
        f"ntp-monitor.json mounted at {dashboards}, provider reads {path}")
