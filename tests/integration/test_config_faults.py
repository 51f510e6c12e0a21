"""Configuration files that flood or block (issue 18, items 3 and 4), on the real daemon.

A configuration of about 1 MiB with an error on every line, reloaded with SIGHUP again and
again: the log line of each reload stays a few kilobytes (the first errors and "and N more"),
the running configuration stays, every failure is counted, and the probes keep their rate while
the file is read and checked (that happens off the event loop). A path that is not a regular
file (a FIFO, a directory, a socket, a device), as --config, --web-config, a server list or the
key file: refused at start at once with exit status 2 and a message naming the kind, and at
SIGHUP logged and counted while the loop goes on (a FIFO nobody writes to would otherwise block
whoever opens it)."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

import peers
from helpers import POLL_S, Daemon, fleet_config, http_get, metric, parse_metrics, wait_for

MAX_CONFIG_BYTES = 1024 * 1024  # the loader's limit: the flood is just below it
REPORTED = 20                   # config::kMaxReportedErrors


def _responses(m: dict, names) -> float:
    return sum(metric(m, "ntp_monitor_responses_total", server=n) or 0 for n in names)


def _flood_text() -> tuple[str, int]:
    """YAML of just under 1 MiB with an unknown top-level key on every line, and the number
    of errors the loader finds in it (each key, and the missing 'servers')."""
    lines = []
    size = 0
    i = 0
    while True:
        line = f"bogus_key_{i:07d}: {i}\n"
        if size + len(line) > MAX_CONFIG_BYTES - 64:
            break
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines), len(lines) + 1


class _Scraper(threading.Thread):
    """Scrapes /metrics back to back and keeps each answer's time: the daemon builds the view
    a scrape reads on its event loop, so a stalled loop shows as a slow scrape."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            start = time.monotonic()
            try:
                status, _, _ = http_get(self.port, "/metrics", timeout_s=10)
                if status != 200:
                    self.failures.append(f"status {status}")
            except OSError as e:
                self.failures.append(repr(e))
            self.latencies.append(time.monotonic() - start)
            self.halt.wait(0.05)


def _start_sims(simulator, n: int) -> dict:
    return {f"s{i}": simulator() for i in range(n)}


def _wait_polling(d: Daemon, names) -> None:
    wait_for("every server answered twice", lambda: all(
        (metric(m, "ntp_monitor_responses_total", server=n) or 0) >= 2
        for m in [d.metrics()] for n in names), 15)


def test_a_megabyte_of_errors_is_reported_in_one_short_line_and_does_not_stall_probes(
        daemon, simulator):
    sims = _start_sims(simulator, 3)
    d = daemon(fleet_config(sims))
    names = list(sims)
    _wait_polling(d, names)
    flood, error_count = _flood_text()
    assert len(flood) > MAX_CONFIG_BYTES - 100 and error_count > 40000
    rss_before = metric(d.metrics(), "process_resident_memory_bytes")

    scraper = _Scraper(d.metrics_port)
    scraper.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    responses_before = _responses(d.metrics(), names)
    d.config_path.write_text(flood)
    reloads = 3
    try:
        for k in range(1, reloads + 1):
            d.signal(signal.SIGHUP)
            wait_for(f"reload failure {k} counted", lambda: metric(
                d.metrics(), "ntp_monitor_config_reload_failures_total") == k, 30, interval_s=0.1)
        # A window of at least 6 poll intervals, the reloads inside it.
        time.sleep(max(0.0, 6 * POLL_S - (time.monotonic() - t0)))
        t1 = time.monotonic()
        m = d.metrics()
    finally:
        scraper.halt.set()
        scraper.join(15)

    # The probes kept their rate: about one response per server and poll interval (minus the
    # first and last poll, which may fall just outside the window).
    expected = len(names) * ((t1 - t0) / POLL_S - 2)
    got = _responses(m, names) - responses_before
    assert got >= 0.9 * expected, (got, expected, t1 - t0)
    # The loop answered every scrape promptly while the files were being read (on the loop,
    # each reload of this file stalled it for about a second).
    assert not scraper.failures, scraper.failures
    assert len(scraper.latencies) > 20
    assert max(scraper.latencies) < 0.5, sorted(scraper.latencies)[-5:]

    # The running configuration stays; every failure counted, none applied.
    assert metric(m, "ntp_monitor_config_reload_failures_total") == reloads
    assert metric(m, "ntp_monitor_config_reloads_total") == 0
    assert metric(m, "ntp_monitor_servers") == len(names)
    assert d.proc.poll() is None

    # One bounded line per reload: the first errors in file order, then the count of the rest.
    lines = d.log_events("config_reload_failed")
    assert len(lines) == reloads
    more = error_count - REPORTED
    for line in lines:
        assert len(line.encode()) < 8 * 1024, len(line)
        assert f"errors={error_count}" in line
        assert f"and {more} more errors (only the first {REPORTED} are reported)" in line
        assert "bogus_key_0000000" in line and "bogus_key_0000019" in line
        assert "bogus_key_0000020'" not in line
        assert "keeping the running configuration" in line
    # The errors are never all held at once (each reload used to hold tens of megabytes of
    # messages): the resident memory grows by less than the text of the messages would take.
    rss_after = metric(m, "process_resident_memory_bytes")
    print(f"reload of a {len(flood)} B file with {error_count} errors: "
          f"{got:.0f} responses in {t1 - t0:.1f} s (expected {expected:.0f}); scrape latency "
          f"max {max(scraper.latencies) * 1000:.0f} ms over {len(scraper.latencies)} scrapes; "
          f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB; "
          f"log line {max(len(l) for l in lines)} B")


def test_check_config_reports_the_first_errors_and_a_count(tmp_path, monitor):
    flood, error_count = _flood_text()
    path = tmp_path / "flood.yaml"
    path.write_text(flood)
    start = time.monotonic()
    out = peers.run_monitor(["check-config", str(path)], timeout_s=60)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == REPORTED + 1, lines[:3]
    assert lines[0].startswith(f"{path}:1:1: unknown key 'bogus_key_0000000'")
    assert lines[-1] == (f"{path}: and {error_count - REPORTED} more errors "
                         f"(only the first {REPORTED} are reported)")
    print(f"check-config of the flood: {time.monotonic() - start:.2f} s")


# ---- What is not a regular file --------------------------------------------------------------


def _make(kind: str, path: Path) -> str:
    """Makes `path` a `kind` ('fifo', 'directory', 'socket'); returns the kind's name as the
    error message says it."""
    if path.is_dir():
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
        return "a FIFO"
    if kind == "directory":
        path.mkdir()
        return "a directory"
    if kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.close()
        return "a socket"
    raise ValueError(kind)


def _release(path: Path) -> None:
    """Lets a reader blocked in open() on the FIFO `path` go (a daemon that did block)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def _run_daemon(args: list[str]) -> tuple[int, str, float]:
    """Starts the daemon with `args` (and free ports) and waits up to 5 s for it to exit:
    (exit status, stderr, seconds); fails if it is still running then."""
    argv = ["--prometheus-port", str(peers.free_tcp_port()),
            "--web-dashboard", str(peers.free_tcp_port()), "--listen-address", "127.0.0.1"] + args
    start = time.monotonic()
    try:
        out = peers.run_monitor(argv, timeout_s=5)
    except Exception as e:  # subprocess.TimeoutExpired: it blocked (and has been killed)
        raise AssertionError(f"the daemon did not exit within 5 s: {e!r}") from None
    return out.returncode, out.stderr, time.monotonic() - start


@pytest.mark.parametrize("kind", ["fifo", "directory", "socket"])
def test_config_that_is_not_a_regular_file_stops_the_start(tmp_path, monitor, kind):
    path = tmp_path / "servers.yaml"
    what = _make(kind, path)
    try:
        rc, err, took = _run_daemon(["--config", str(path)])
    finally:
        if kind == "fifo":
            _release(path)
    assert rc == 2, err
    assert f"{path}: is {what}, not a regular file" in err
    assert took < 1.0


def test_config_that_is_a_device_stops_the_start(monitor):
    rc, err, took = _run_daemon(["--config", "/dev/zero"])
    assert rc == 2 and "/dev/zero: is a character device, not a regular file" in err, err
    assert took < 1.0


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_web_config_that_is_not_a_regular_file_stops_the_start(tmp_path, simulator, kind):
    sim = simulator()
    config = tmp_path / "servers.yaml"
    config.write_text(fleet_config({"a": sim}))
    web = tmp_path / "web.yml"
    what = _make(kind, web)
    try:
        rc, err, took = _run_daemon(["--config", str(config), "--web-config", str(web)])
    finally:
        if kind == "fifo":
            _release(web)
    assert rc == 2, err
    assert f"{web}: is {what}, not a regular file" in err
    assert took < 1.0


def test_web_config_certificate_that_is_a_fifo_stops_the_start(tmp_path, simulator):
    sim = simulator()
    config = tmp_path / "servers.yaml"
    config.write_text(fleet_config({"a": sim}))
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    os.mkfifo(cert)
    key.write_text("")
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    try:
        rc, err, took = _run_daemon(["--config", str(config), "--web-config", str(web)])
    finally:
        _release(cert)
    assert rc == 2, err
    assert f"'{cert}' is a FIFO, not a regular file" in err
    assert took < 1.0


def test_server_list_or_key_file_that_is_a_fifo_stops_the_start(tmp_path, monitor):
    os.mkfifo(tmp_path / "fleet.txt")
    os.mkfifo(tmp_path / "keys")
    config = tmp_path / "servers.yaml"
    config.write_text("key_file: keys\nserver_lists:\n  - path: fleet.txt\n")
    try:
        rc, err, took = _run_daemon(["--config", str(config)])
    finally:
        _release(tmp_path / "fleet.txt")
        _release(tmp_path / "keys")
    assert rc == 2, err
    assert f"'key_file' '{tmp_path}/keys' is a FIFO, not a regular file" in err
    assert "fleet.txt' is a FIFO, not a regular file" in err
    assert took < 1.0


# What is swapped for a FIFO (or a directory) before a SIGHUP: the configuration itself, a
# server list it names, or its key file.
RELOAD_CASES = ["config-fifo", "config-directory", "config-socket", "list-fifo", "key-fifo"]


@pytest.mark.parametrize("case", RELOAD_CASES)
def test_reload_of_a_path_that_is_not_a_regular_file_keeps_the_running_config(
        tmp_path, daemon, simulator, case):
    sims = _start_sims(simulator, 2)
    names = list(sims)
    work = tmp_path / "files"
    work.mkdir()
    (work / "keys").write_text(peers.chrony_keys_text(peers.CHRONY_KEYS))
    (work / "fleet.txt").write_text(f"{sims['s1'].address} s1\n")
    extra = (f"key_file: {work / 'keys'}\n"
             f"server_lists:\n  - {{path: {work / 'fleet.txt'}, port: {sims['s1'].port}}}\n")
    d = daemon(fleet_config({"s0": sims["s0"]}, extra))
    _wait_polling(d, names)

    target, kind = case.split("-")
    path = {"config": d.config_path, "list": work / "fleet.txt", "key": work / "keys"}[target]
    what = _make(kind, path)
    try:
        before = _responses(d.metrics(), names)
        d.signal(signal.SIGHUP)
        # The loop answers at once, with the reload under way or done.
        start = time.monotonic()
        status, _, _ = http_get(d.metrics_port, "/metrics", timeout_s=5)
        took = time.monotonic() - start
        assert status == 200 and took < 0.5, took
        wait_for("reload failure counted", lambda: metric(
            d.metrics(), "ntp_monitor_config_reload_failures_total") == 1, 3, interval_s=0.1)
        lines = d.log_events("config_reload_failed")
        assert len(lines) == 1
        assert f"is {what}, not a regular file" in lines[0], lines[0]
        assert str(path) in lines[0]
        assert "keeping the running configuration" in lines[0]
        # The running configuration stays and keeps polling.
        time.sleep(3 * POLL_S)
        m = d.metrics()
        assert metric(m, "ntp_monitor_servers") == len(names)
        assert metric(m, "ntp_monitor_config_reloads_total") == 0
        assert _responses(m, names) >= before + 2 * len(names)
        assert d.proc.poll() is None
    finally:
        if kind == "fifo":
            _release(path)
