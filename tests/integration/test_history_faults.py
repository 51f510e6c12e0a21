"""The history database under faults of its file system, against the real daemon.

The daemon polls three simulators every second with its history in SQLite. In the first test
the database lives on a 2 MiB tmpfs that the daemon mounts in a private mount namespace of its
own (`unshare -m`: the host's mounts are not touched); the test reaches that file system through
/proc/<pid>/root and fills it with a file. History must say so (not writable, errors by reason
`full`, records buffered and growing, the dashboard's API names the reason) while probing goes on
at its rate; once the file is deleted, history must write again by itself and the samples of the
outage must be in the database. In the second test the database file is deleted, then replaced
by another one, while the daemon runs: each time the daemon notices, reopens the file at its
path and writes on.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from helpers import Daemon, fleet_config, http_get, metric, samples, wait_for

MOUNT_SIZE = "2m"


def responses(metrics_text: str) -> float:
    """Replies that passed every check, all servers together."""
    return sum(v for n, _, v in samples(metrics_text) if n == "ntp_monitor_responses_total")


class HistoryDaemon(Daemon):
    """A daemon whose history is `history_dir/history.db`; with `tmpfs`, history_dir is a tmpfs
    of MOUNT_SIZE mounted in a private mount namespace just before the daemon starts."""

    def __init__(self, workdir: Path, servers: dict, tmpfs: bool):
        workdir.mkdir(parents=True, exist_ok=True)
        self.history_dir = workdir / "hist"
        self.history_dir.mkdir()
        self.tmpfs = tmpfs
        text = fleet_config(servers) + f"history: {{path: '{self.history_dir / 'history.db'}'}}\n"
        super().__init__(workdir, text)

    def argv(self) -> list[str]:
        argv = super().argv()
        if not self.tmpfs:
            return argv
        # unshare gives the shell a private mount namespace; `exec` makes the daemon that same
        # process, so self.proc.pid is the daemon and /proc/<pid>/root shows its mounts.
        command = (f"mount -t tmpfs -o size={MOUNT_SIZE} ntpmon-history-test "
                   f"'{self.history_dir}' && exec " + " ".join(f"'{a}'" for a in argv))
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", command]

    def seen(self, path: Path) -> Path:
        """`path` (under history_dir) as the daemon sees it."""
        if not self.tmpfs:
            return path
        return Path(f"/proc/{self.proc.pid}/root") / path.relative_to("/")

    def m(self, name: str, **labels):
        return metric(self.metrics_text(), name, **labels)

    def status(self) -> dict:
        return self.api("/api/v1/status")["history"]

    def history_points(self, server: str, since: int, until: int) -> list[dict]:
        status, _, body = http_get(
            self.api_port, f"/api/v1/servers/{server}/history?since={since}&until={until}&step=1")
        assert status == 200, body
        return json.loads(body)["points"]


@pytest.fixture
def history_daemon(tmp_path, monitor):
    started: list[HistoryDaemon] = []

    def make(servers: dict, tmpfs: bool) -> HistoryDaemon:
        d = HistoryDaemon(tmp_path / f"daemon{len(started)}", servers, tmpfs)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.stop()


def fill(path: Path) -> int:
    """Writes `path` until its file system is full; returns the bytes written."""
    written = 0
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n = f.write(block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
            written += n
    return written


def test_full_disk_buffers_and_history_resumes_when_space_is_back(history_daemon, simulator):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs in a private mount namespace needs root")
    d = history_daemon({"a": simulator(), "b": simulator(), "c": simulator()}, tmpfs=True)
    db = d.seen(d.history_dir / "history.db")
    wait_for("the history on the tmpfs", lambda: db.exists(), 5)
    assert "ntpmon-history-test" in Path(f"/proc/{d.proc.pid}/mounts").read_text()
    # The host sees the empty directory, not the daemon's tmpfs.
    assert not (d.history_dir / "history.db").exists()
    wait_for("samples written", lambda: d.status()["samples_written"] >= 3, 10)
    assert d.m("ntp_monitor_history_writable") == 1
    assert d.m("ntp_monitor_history_write_errors_total", reason="full") == 0

    filler = d.seen(d.history_dir / "filler")
    fill_started = time.time()
    assert fill(filler) > 0
    wait_for("history not writable, reason full", lambda: (
        d.m("ntp_monitor_history_writable") == 0
        and d.m("ntp_monitor_history_write_errors_total", reason="full") >= 1), 10)
    first = d.metrics_text()
    buffered_first = metric(first, "ntp_monitor_history_buffered_records")
    responses_first = responses(first)
    assert metric(first, "ntp_monitor_history_enabled") == 1  # open, retrying
    time.sleep(3)
    later = d.metrics_text()
    # Probing keeps its rate (3 servers, 1 s polls), the samples wait in memory.
    assert responses(later) - responses_first >= 6, (responses_first, responses(later))
    assert metric(later, "ntp_monitor_history_buffered_records") >= buffered_first + 6
    assert metric(later, "ntp_monitor_history_writable") == 0
    assert metric(later, "ntp_monitor_history_buffer_dropped_total") == 0
    # What the dashboard reads: the daemon's own history alert with the reason and the count.
    alert = [a for a in d.api("/api/v1/alerts")["active"] if a["alert"] == "history"]
    assert len(alert) == 1 and alert[0]["reason"] == "full" and alert[0]["buffered"] > 0, alert
    status = d.status()
    assert status["writable"] is False and status["reason"] == "full", status
    assert "full" in status["error"], status
    assert "history cannot write (full)" in d.log()

    filler.unlink()
    freed = time.time()
    wait_for("history writable again, buffer written", lambda: (
        d.m("ntp_monitor_history_writable") == 1
        and d.m("ntp_monitor_history_buffered_records") == 0), 15)
    resumed = time.time()
    assert not [a for a in d.api("/api/v1/alerts")["active"] if a["alert"] == "history"]
    assert "history writes again after" in d.log()
    assert d.m("ntp_monitor_history_dropped_total") == 0
    # The outage's samples are in the database: one per second and server while it lasted.
    for server in ("a", "b", "c"):
        points = d.history_points(server, int(fill_started) + 1, int(freed))
        assert len(points) >= int(freed) - int(fill_started) - 3, (server, points)
    # SQLite resolves the /proc/<pid>/root link to the host's path: read in the daemon's
    # mount namespace instead.
    query = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute("
             "'SELECT count(*) FROM samples WHERE time_ns BETWEEN ? AND ?', "
             "(int(sys.argv[2]), int(sys.argv[3]))).fetchone()[0])")
    rows = int(subprocess.run(
        ["nsenter", "-t", str(d.proc.pid), "-m", sys.executable, "-c", query,
         str(d.history_dir / "history.db"), str(int(fill_started * 1e9)), str(int(freed * 1e9))],
        check=True, capture_output=True, text=True, timeout=10).stdout)
    assert rows >= 3 * (int(freed) - int(fill_started) - 2), rows
    print(f"outage {freed - fill_started:.1f} s, resumed {resumed - freed:.1f} s after the "
          f"space came back, {rows} rows of the outage stored")


def test_deleted_or_replaced_database_is_reopened(history_daemon, simulator):
    d = history_daemon({"a": simulator(), "b": simulator()}, tmpfs=False)
    db = d.history_dir / "history.db"
    wait_for("samples written", lambda: d.status()["samples_written"] >= 2, 10)
    before = responses(d.metrics_text())

    # Deleted: SQLite alone would go on writing into the deleted inode.
    db.unlink()
    wait_for("a new database at the same path", lambda: (
        d.m("ntp_monitor_history_write_errors_total", reason="missing") == 1
        and d.m("ntp_monitor_history_writable") == 1 and db.exists()), 10)
    assert "the file was deleted" in d.log()
    deleted_at = time.time()

    def rows(path: Path) -> int:
        with closing(sqlite3.connect(path)) as conn:
            return conn.execute("SELECT count(*) FROM samples").fetchone()[0]

    wait_for("new samples in the new file", lambda: rows(db) >= 4, 10)

    # Replaced, as a restore from a backup would: a copy of the current file renamed over it.
    copy = d.history_dir / "restored.db"
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("INSERT INTO servers (name) VALUES ('restored-marker')")
        conn.commit()
    copied_rows = rows(copy)
    os.replace(copy, db)
    wait_for("the replacement reopened", lambda: (
        d.m("ntp_monitor_history_write_errors_total", reason="missing") == 2
        and d.m("ntp_monitor_history_writable") == 1), 10)
    assert "the file was replaced" in d.log()
    wait_for("samples written into the replacement", lambda: rows(db) >= copied_rows + 4, 10)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM servers WHERE name = 'restored-marker'"
                            ).fetchone()[0] == 1
    # Probing went on all along; the history API reads the new file.
    assert responses(d.metrics_text()) - before >= 2 * (time.time() - deleted_at) - 4
    assert d.history_points("a", int(deleted_at), int(time.time()) + 1)
    assert d.m("ntp_monitor_history_dropped_total") == 0
