"""Sharded replicas (docs/architecture.md, "Sharding") against the real daemon.

A fleet of 1,000 servers (10 `servers:` entries and 990 server-list lines) on loopback
addresses at a UDP port nobody answers: nothing needs to reply for the tests, which read which
servers each replica took from its /api/v1/servers. Three replicas (--shard 0/3, 1/3, 2/3)
cover every server exactly once, and exactly as the documented hash says (re-implemented here
from docs/architecture.md); shard counts written in the file go from 3 to 4 by a reload, which
moves 20-30 % of the servers and keeps the others' state; bad shard arguments are usage errors
(exit 2); a replica whose shard is empty is healthy and says so.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

import peers
from helpers import Daemon, http_get, metric, wait_for

FLEET = 1000
YAML_ENTRIES = 10


# ---- the assignment as docs/architecture.md defines it -------------------------------------

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def name_hash(name: str) -> int:
    data = name.encode()
    h = 0x6E74706D6F6E0001
    for i in range(0, len(data), 8):
        h = mix64((h + int.from_bytes(data[i:i + 8], "little") + GOLDEN) & M64)
    return mix64(h ^ len(data))


def shard_of(name: str, count: int) -> int:
    h = name_hash(name)
    weights = [mix64(h ^ mix64((GOLDEN * (k + 1)) & M64)) for k in range(count)]
    return weights.index(max(weights))


# ---- the fleet -----------------------------------------------------------------------------

NAMES = [f"yaml-{i}" for i in range(YAML_ENTRIES)] + \
        [f"node-{i:04d}.example" for i in range(FLEET - YAML_ENTRIES)]


def fleet_config(workdir: Path, port: int, extra: str = "") -> str:
    """YAML entries and one server list, every server at 127.x.y.z:port (nobody answers)."""
    lines = "".join(f"127.1.{i // 250}.{i % 250 + 1} {name}\n"
                    for i, name in enumerate(NAMES[YAML_ENTRIES:]))
    (workdir / "fleet.txt").write_text(lines)
    entries = "".join(f"  - {{name: {name}, host: 127.2.0.{i + 1}, port: {port}}}\n"
                      for i, name in enumerate(NAMES[:YAML_ENTRIES]))
    return ("servers:\n" + entries +
            f"server_lists:\n  - {{path: {workdir / 'fleet.txt'}, port: {port}}}\n" + extra)


def names_of(d: Daemon) -> set[str]:
    """The configured names among the replica's /api/v1/servers entries (paged)."""
    return {entry["name"] for entry in d.server_list()}


@pytest.fixture(scope="module")
def dead_port() -> int:
    return peers.free_udp_port()


@pytest.fixture(scope="module")
def three_replicas(tmp_path_factory, monitor, dead_port):
    workdir = tmp_path_factory.mktemp("shards")
    config = fleet_config(workdir, dead_port)
    replicas = [Daemon(workdir / f"replica{k}", config, ["--shard", f"{k}/3"]) for k in range(3)]
    try:
        for d in replicas:
            d.start()
        yield replicas
    finally:
        for d in replicas:
            d.stop()


def test_three_shards_cover_every_server_exactly_once(three_replicas):
    seen: dict[str, int] = {}
    for k, d in enumerate(three_replicas):
        mine = names_of(d)
        assert mine, f"shard {k} of 3 over {FLEET} servers is empty"
        for name in mine:
            assert name not in seen, f"{name} in shard {seen[name]} and shard {k}"
            seen[name] = k
        # The daemon assigns exactly what the documented hash says.
        assert mine == {n for n in NAMES if shard_of(n, 3) == k}
    assert set(seen) == set(NAMES)
    assert len(seen) == FLEET


def test_shard_info_metric_and_status(three_replicas):
    for k, d in enumerate(three_replicas):
        text = d.metrics_text()
        shard_lines = [line for line in text.splitlines()
                       if line.startswith("ntp_monitor_shard_info")]
        assert shard_lines == [f'ntp_monitor_shard_info{{index="{k}",count="3"}} 1']
        status = d.api("/api/v1/status")
        expected = sum(shard_of(n, 3) == k for n in NAMES)
        assert status["shard"] == {"index": k, "count": 3, "servers": expected,
                                   "fleet_servers": FLEET, "empty": False}
        assert status["vantage"] == ""
        assert metric(text, "ntp_monitor_servers") == status["entries"]
        started = d.log_events("daemon_started")
        assert started and f"shard={k}/3" in started[0] and f"fleet_servers={FLEET}" in started[0]


def test_reload_from_three_to_four_shards_moves_a_quarter(tmp_path, monitor, dead_port):
    """Shards in the file: 3 replicas, then the file says 4 and they reload, and a 4th starts."""
    (tmp_path / "fleet").mkdir()
    base = fleet_config(tmp_path / "fleet", dead_port, "poll: {min: 1, max: 1}\n")
    replicas = [Daemon(tmp_path / f"replica{k}", base + f"shard: {{index: {k}, count: 3}}\n")
                for k in range(4)]
    try:
        before = {}
        for k in range(3):
            before[k] = names_of(replicas[k].start())
        assert set().union(*before.values()) == set(NAMES)
        # Let the servers that stay gather state (requests) that a reload must keep.
        wait_for("every replica polled its servers", lambda: all(
            replicas[k].api("/api/v1/status")["requests"] >= len(before[k]) for k in range(3)),
            20, interval_s=0.2)
        requests_before = {k: {e["name"]: e["requests"] for e in replicas[k].server_list()}
                           for k in range(3)}

        for k in range(4):
            replicas[k].config_path.write_text(base + f"shard: {{index: {k}, count: 4}}\n")
        for k in range(3):
            replicas[k].signal(signal.SIGHUP)
        replicas[3].start()
        for k in range(3):
            wait_for(f"replica {k} reloaded", lambda k=k: replicas[k].log_events("config_reloaded"),
                     10, interval_s=0.1)
        after = {k: names_of(replicas[k]) for k in range(4)}

        # Four shards cover the fleet exactly once, too.
        assert sum(len(s) for s in after.values()) == FLEET
        assert set().union(*after.values()) == set(NAMES)
        # A server moves only to the new shard; the moved fraction is about 1/4.
        moved = set()
        for k in range(3):
            assert after[k] <= before[k], f"shard {k} gained servers from another old shard"
            moved |= before[k] - after[k]
        assert moved == after[3]
        fraction = len(moved) / FLEET
        print(f"3 -> 4 shards: {len(moved)} of {FLEET} servers moved ({fraction:.1%})")
        assert 0.20 <= fraction <= 0.30, fraction

        for k in range(3):
            d = replicas[k]
            # The reload diff: the servers that stay keep their state, the others go.
            (line,) = d.log_events("config_reloaded")
            kept = len(after[k])
            assert f"kept={kept}" in line and f"removed={len(before[k]) - kept}" in line \
                and "added=0" in line, line
            (changed,) = d.log_events("shard_changed")
            assert f"from={k}/3" in changed and f"to={k}/4" in changed, changed
            now = {e["name"]: e["requests"] for e in d.server_list()}
            assert all(now[n] >= requests_before[k][n] for n in after[k])
            assert sum(requests_before[k][n] for n in after[k]) > 0
            text = d.metrics_text()
            assert f'ntp_monitor_shard_info{{index="{k}",count="4"}} 1' in text
            assert metric(text, "ntp_monitor_config_reloads_total") == 1

        # A shard block the daemon cannot settle (no index, no flag) fails the reload: the
        # running shard stays.
        d = replicas[0]
        d.config_path.write_text(base + "shard: {count: 4}\n")
        d.signal(signal.SIGHUP)
        (failed,) = wait_for("the reload refused", lambda: d.log_events("config_reload_failed"),
                             10, interval_s=0.1)
        assert "the configuration's shard block has no index" in failed, failed
        assert names_of(d) == after[0]
        assert metric(d.metrics_text(), "ntp_monitor_config_reload_failures_total") == 1
    finally:
        for d in replicas:
            d.stop()


@pytest.mark.parametrize("args, message", [
    (["--shard", "3/3"],
     "--shard: shard 3 does not exist among 3 (K counts from 0: K/N needs K < N)"),
    (["--shard", "1/0"], "--shard: the shard count N must be at least 1 (K/N, got 0)"),
    (["--shard", "one/3"], "--shard: 'one/3' is not K/N"),
    (["--shard", "0/2", "--shard-from-hostname"], "--shard excludes --shard-from-hostname"),
    (["--shard-count", "3"], "--shard-count requires --shard-from-hostname"),
])
def test_bad_shard_arguments_are_usage_errors(tmp_path, monitor, args, message):
    config = tmp_path / "servers.yaml"
    config.write_text("servers: [{host: 127.0.0.1}]\n")
    result = peers.run_monitor(["--config", str(config), "--prometheus-port", "0",
                                "--web-dashboard", "0"] + args, timeout_s=10)
    assert result.returncode == 2, result
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def in_uts_namespace(hostname: str) -> list[str]:
    """A command prefix that runs the rest under `hostname` (a user and UTS namespace of its
    own: the machine's host name is not touched)."""
    return ["unshare", "--user", "--map-root-user", "--uts", "sh", "-c",
            'hostname "$0" && exec "$@"', hostname]


def have_uts_namespace() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(in_uts_namespace("ntp-monitor-7") + ["hostname"],
                           capture_output=True, text=True, timeout=10)
    return probe.returncode == 0 and probe.stdout.strip() == "ntp-monitor-7"


class HostDaemon(Daemon):
    """The daemon under a host name of the test's choosing."""

    def __init__(self, workdir: Path, config_text: str, hostname: str, extra_args=()):
        super().__init__(workdir, config_text, extra_args)
        self.hostname = hostname

    def argv(self) -> list[str]:
        return in_uts_namespace(self.hostname) + super().argv()


def test_shard_from_hostname(tmp_path, monitor, dead_port):
    if not have_uts_namespace():
        pytest.skip("unshare cannot create a user and UTS namespace here")
    config = fleet_config(tmp_path, dead_port, "shard: {count: 3}\n")
    # A StatefulSet pod: K from the name, N from the file; --shard-count wins over the file.
    for hostname, args, shard in (("ntp-monitor-2", [], (2, 3)),
                                  ("ntp-monitor-1.ntp-monitor.default.svc", ["--shard-count", "4"],
                                   (1, 4))):
        d = HostDaemon(tmp_path / hostname, config, hostname, ["--shard-from-hostname"] + args)
        try:
            d.start()
            status = d.api("/api/v1/status")["shard"]
            assert (status["index"], status["count"]) == shard
            assert names_of(d) == {n for n in NAMES if shard_of(n, shard[1]) == shard[0]}
        finally:
            d.stop()
    # Usage errors: no trailing number, an ordinal past the count.
    for hostname, args, message in (
            ("monitor", [], "the host name 'monitor' does not end in a number"),
            ("ntp-monitor-5", ["--shard-count", "3"],
             "the host name 'ntp-monitor-5' gives shard 5, but there are only 3 shards")):
        (tmp_path / "servers.yaml").write_text(config)
        result = subprocess.run(
            in_uts_namespace(hostname) + [str(monitor), "--config", str(tmp_path / "servers.yaml"),
                                          "--prometheus-port", "0", "--web-dashboard", "0",
                                          "--shard-from-hostname"] + args,
            capture_output=True, text=True, timeout=10)
        assert result.returncode == 2, result
        assert message in result.stderr, result.stderr


def test_empty_shard_is_healthy_and_says_so(tmp_path, monitor, dead_port):
    names = ["alpha", "beta"]
    count = 8
    empty = next(k for k in range(count) if all(shard_of(n, count) != k for n in names))
    config = ("servers:\n" + "".join(f"  - {{name: {n}, host: 127.0.0.1, port: {dead_port}}}\n"
                                     for n in names) + "vantage: lab-1\n")
    d = Daemon(tmp_path, config, ["--shard", f"{empty}/{count}"])
    try:
        d.start()
        for port in (d.metrics_port, d.api_port):
            for path in ("/healthz", "/readyz"):
                assert http_get(port, path)[0] == 200, (port, path)
        status = d.api("/api/v1/status")
        assert status["shard"] == {"index": empty, "count": count, "servers": 0,
                                   "fleet_servers": 2, "empty": True}
        assert status["vantage"] == "lab-1" and status["entries"] == 0
        assert d.server_list() == []
        text = d.metrics_text()
        assert f'ntp_monitor_shard_info{{index="{empty}",count="{count}"}} 1' in text
        assert metric(text, "ntp_monitor_servers") == 0
        assert d.log_events("shard_empty")
    finally:
        d.stop()


def test_vantage_labels_every_per_server_series(tmp_path, monitor, dead_port):
    d = Daemon(tmp_path, "servers:\n"
               f"  - {{name: far, host: 127.0.0.1, port: {dead_port}}}\n"
               "vantage: eu-west\nmetrics: {per_server: full}\n")
    try:
        d.start()
        wait_for("a poll", lambda: d.api("/api/v1/status")["requests"] > 0, 10)
        series = [line for line in d.metrics_text().splitlines()
                  if not line.startswith("#") and 'server="far"' in line]
        assert len(series) > 20
        assert all('address="127.0.0.1",vantage="eu-west"' in line for line in series), series
        assert d.api("/api/v1/status")["vantage"] == "eu-west"
    finally:
        d.stop()


def test_check_config_reports_the_shard(tmp_path, monitor, dead_port):
    config = tmp_path / "servers.yaml"
    config.write_text(fleet_config(tmp_path, dead_port, "shard: {index: 1, count: 3}\n"))
    result = peers.run_monitor(["check-config", str(config)], timeout_s=10)
    expected = sum(shard_of(n, 3) == 1 for n in NAMES)
    assert result.returncode == 0, result
    assert f"shard 1 of 3 shards: {expected} of them" in result.stdout
    config.write_text("servers: [{host: 127.0.0.1}]\nshard: {index: 3, count: 3}\n")
    result = peers.run_monitor(["check-config", str(config)], timeout_s=10)
    assert result.returncode == 2
    assert "servers.yaml:2:16: 'index' must be an integer from 0 to 2" in result.stderr
