"""Names whose DNS never answers (issue 18, item 7): they cost only themselves.

Every process of these tests runs in a private network namespace (only `lo`, so nothing can
leave the machine) and, for the daemon and the query, in a private mount namespace where
/etc/resolv.conf names a "DNS server" on 127.0.0.53:53 that reads every query and never
answers, and /etc/hosts names the two good servers (simulators in the same network namespace).
The dead names are under the reserved .test TLD (RFC 6761) and in no hosts file, so each of
their lookups goes to the silent server and hangs until the resolver gives up.

Before the fix, lookups ran one at a time on asio's resolver thread (blocking getaddrinfo):
the good servers, listed after three dead names, got their first request after 20-30 s, and
SIGTERM waited for the hung getaddrinfo (about 5 s); `query` resolved its names one after
another (about 10 s per dead name with glibc's defaults)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import helpers
import peers

DNS_ADDRESS = "127.0.0.53"
DEAD = ["dead-one.test", "dead-two.test", "dead-three.test"]
GOOD = ["good-one.test", "good-two.test"]
# The daemon's default deadline of one lookup (dns.timeout_s) and the query's.
DNS_TIMEOUT_S = 5.0

# Reads DNS queries on UDP 127.0.0.53:53, prints the name asked for, never answers.
_SILENT_DNS = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    data, _ = s.recvfrom(4096)
    labels, i = [], 12
    while i < len(data) and data[i] != 0:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode(errors="replace"))
        i += 1 + n
    print("%.3f %s" % (time.monotonic(), ".".join(labels).lower()), flush=True)
"""


class SilentDns(peers.Peer):
    name = "silent-dns"

    def __init__(self, workdir: Path, netns: peers.NetNamespace):
        super().__init__(workdir)
        self.netns = netns
        self.out_path = self.workdir / "queries.txt"

    def start(self) -> "SilentDns":
        self.proc = peers.spawn(self.netns.prefix() + [sys.executable, "-c", _SILENT_DNS,
                                                       DNS_ADDRESS], self.log_path,
                                stdout_path=self.out_path)
        helpers.wait_for("the silent DNS server listening",
                         lambda: self.proc.poll() is not None or "ready" in self._text(), 5.0,
                         interval_s=0.05)
        assert self.proc.poll() is None, self.log()
        return self

    def _text(self) -> str:
        return self.out_path.read_text() if self.out_path.exists() else ""

    def asked(self) -> set[str]:
        """The names asked for so far."""
        return {line.split()[1] for line in self._text().splitlines()[1:] if len(line.split()) == 2}


class DnsWorld:
    """The namespaces, the silent DNS server and the two good servers."""

    def __init__(self, workdir: Path, netns: peers.NetNamespace, simulator):
        self.netns = netns
        self.dns = SilentDns(workdir / "dns", netns).start()
        self.good = {name: simulator("--stratum", "2", prefix=netns.prefix()) for name in GOOD}
        self.resolv = workdir / "resolv.conf"
        self.hosts = workdir / "hosts"
        # No options: the resolver's own defaults (5 s, 2 attempts) apply where they are used.
        self.resolv.write_text(f"nameserver {DNS_ADDRESS}\n")
        self.hosts.write_text("127.0.0.1 localhost\n::1 localhost\n" +
                              "".join(f"127.0.0.1 {name}\n" for name in GOOD))

    def prefix(self) -> list[str]:
        """Runs a command in the network namespace with our resolv.conf and hosts."""
        return self.netns.prefix() + [
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 '
            '&& exec "$@"', "dns-world", str(self.resolv), str(self.hosts)]

    def config(self) -> str:
        entries = "".join(f"  - {{name: {name}, host: '{name}', port: 123}}\n" for name in DEAD)
        entries += "".join(f"  - {{name: {name}, host: '{name}', port: {sim.port}}}\n"
                           for name, sim in self.good.items())
        return f"servers:\n{entries}poll: {{min: 1, max: 1}}\n"

    def api(self, port: int, path: str):
        """GET on the daemon's API from inside the network namespace; None if it does not
        answer (yet)."""
        code = ("import sys, urllib.request; "
                "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())")
        out = subprocess.run(self.netns.prefix() + [sys.executable, "-c", code,
                                                    f"http://127.0.0.1:{port}{path}"],
                             capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout) if out.returncode == 0 else None


@pytest.fixture
def world(tmp_path, netns, simulator):
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) missing")
    w = DnsWorld(tmp_path, netns, simulator)
    yield w
    w.dns.stop()


def start_daemon(world: DnsWorld, workdir: Path) -> helpers.Daemon:
    daemon = helpers.Daemon(workdir, world.config())
    daemon.proc = peers.spawn(world.prefix() + daemon.argv(), daemon.log_path)
    return daemon


def servers(world: DnsWorld, daemon: helpers.Daemon):
    if daemon.proc.poll() is not None:
        raise AssertionError(f"daemon exited:\n{daemon.log()}")
    listing = world.api(daemon.api_port, "/api/v1/servers")
    return {s["name"]: s for s in listing["servers"]} if listing else None


def test_good_names_get_answers_while_dead_names_hang(world, tmp_path):
    daemon = start_daemon(world, tmp_path / "daemon")
    started = time.monotonic()
    try:
        def good_answered():
            s = servers(world, daemon)
            return s if s and all((s[name]["responses"] or 0) > 0 for name in GOOD) else None

        first = helpers.wait_for("both good servers answered", good_answered, 12.0,
                                 interval_s=0.05)
        elapsed = time.monotonic() - started
        asked = world.dns.asked()
        print(f"good servers' first answers after {elapsed:.2f} s")
        # The dead names were asked for, and none of their lookups has ended yet.
        assert set(DEAD) <= asked, (asked, daemon.log())
        assert elapsed < 3.5, (f"first answers of the good servers after {elapsed:.1f} s "
                               f"(three dead names listed before them)\n{daemon.log()}")
        # Probing keeps its rate while the dead names are still being looked up.
        helpers.wait_for("the good servers' responses keep growing",
                         lambda: all(servers(world, daemon)[n]["responses"] >=
                                     first[n]["responses"] + 2 for n in GOOD), 4.0)
        for name in DEAD:
            assert first[name]["responses"] == 0
    finally:
        rc, took = daemon.terminate()
    assert rc == 0, daemon.log()


def test_sigterm_during_hung_lookups_exits_within_a_second(world, tmp_path):
    daemon = start_daemon(world, tmp_path / "daemon")
    try:
        helpers.wait_for("the daemon's API answers", lambda: servers(world, daemon), 10.0,
                         interval_s=0.05)
        helpers.wait_for("a dead name asked for", lambda: set(DEAD) & world.dns.asked(), 5.0,
                         interval_s=0.05)
    except BaseException:
        daemon.stop()
        raise
    rc, took = daemon.terminate()
    print(f"SIGTERM during hung lookups: exit after {took:.3f} s")
    assert rc == 0, daemon.log()
    assert took < 1.0, f"SIGTERM during a hung lookup took {took:.2f} s\n{daemon.log()}"
    assert daemon.log_events("daemon_stopped"), daemon.log()


def test_query_of_dead_and_good_names_ends_within_the_dns_timeout(world):
    good = world.good[GOOD[0]]
    started = time.monotonic()
    rc, result, out = peers.query_json(
        [DEAD[0], DEAD[1], f"{GOOD[0]}:{good.port}"], "--samples", "2", "--interval", "0.2",
        "--timeout", "0.5", prefix=world.prefix(), timeout_s=60)
    elapsed = time.monotonic() - started
    print(f"query of two dead names and a good one: {elapsed:.2f} s")
    assert rc == 1, out.stderr  # some host failed
    by_host = {}
    for entry in result:
        by_host.setdefault(entry["host"], []).append(entry)
    assert by_host[GOOD[0]][0]["ok"] is True, result
    assert by_host[GOOD[0]][0]["samples"] == 2, result
    for name in DEAD[:2]:
        assert len(by_host[name]) == 1 and by_host[name][0]["ok"] is False, result
        assert name in by_host[name][0]["error"], result
    assert {DEAD[0], DEAD[1]} <= world.dns.asked()
    # Both dead names are looked up at once, each bounded by the DNS timeout, and the good
    # name is probed meanwhile.
    assert elapsed < DNS_TIMEOUT_S + 2.0, f"query took {elapsed:.1f} s: {result}"
