"""`ntp-monitor check`, the Nagios/Icinga plugin mode, against simulators on loopback.

Every verdict that monitoring-plugins' check_ntp_time can give too is asked of both: the
same server, the same thresholds, and the exit status must be the same (0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN). Debian's check_ntp_time is /usr/lib/nagios/plugins/check_ntp_time
(package monitoring-plugins-basic, in scripts/install-deps). The name that does not resolve
is looked up inside a loopback-only network namespace, so no DNS query leaves the machine.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import pytest

import peers
from peers import CHRONY_KEYS

CHECK_NTP_TIME = Path("/usr/lib/nagios/plugins/check_ntp_time")
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
# -t 2: check_ntp_time waits at most a second for replies, ours fits its queries in 1.4 s.
FAST = ("-t", "2")
STATUS = re.compile(r"^NTP (OK|WARNING|CRITICAL|UNKNOWN): ")
PERFDATA = re.compile(
    r"\|offset=(-?\d+\.\d{6})s;([^;]*);([^;]*); jitter=(\d+\.\d{6})ms;[^;]*;[^;]*; "
    r"stratum=(\d+);[^;]*;[^;]*; truechimers=(\d+);[^;]*;[^;]*;$")


def ours(args: Sequence[str], prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    return peers.run_monitor(["check", *args], timeout_s=30, prefix=prefix)


def theirs(args: Sequence[str], prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
    if not CHECK_NTP_TIME.exists():
        pytest.fail(f"{CHECK_NTP_TIME} missing: scripts/install-deps installs "
                    "monitoring-plugins-basic", pytrace=False)
    return subprocess.run([*prefix, str(CHECK_NTP_TIME), *args], capture_output=True,
                          text=True, timeout=30)


def first_line(out: subprocess.CompletedProcess) -> str:
    return out.stdout.splitlines()[0] if out.stdout else ""


def both(args: Sequence[str], expected: int, prefix: Sequence[str] = ()):
    """Runs ours and check_ntp_time with the same arguments; both must exit `expected`."""
    mine, debian = ours(args, prefix), theirs(args, prefix)
    assert debian.returncode == expected, (
        f"check_ntp_time {' '.join(args)} exited {debian.returncode}: {debian.stdout!r}")
    assert mine.returncode == expected, (
        f"ntp-monitor check {' '.join(args)} exited {mine.returncode} where check_ntp_time "
        f"exited {debian.returncode}: {mine.stdout!r} {mine.stderr!r}")
    line = first_line(mine)
    assert STATUS.match(line), line
    assert line.startswith(f"NTP {['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'][expected]}: "), line
    return mine, debian


@pytest.mark.parametrize("offset, expected", [
    (0.2, OK),         # below -w 1
    (-0.4, OK),
    (1.5, WARNING),    # between -w 1 and -c 2
    (-1.5, WARNING),   # the magnitude counts
    (3.0, CRITICAL),   # above -c 2
    (-250.0, CRITICAL),
])
def test_offset_thresholds_match_check_ntp_time(simulator, offset, expected):
    sim = simulator("--offset", str(offset))
    mine, _ = both(["-H", "127.0.0.1", "-p", str(sim.port), "-w", "1", "-c", "2", *FAST],
                   expected)
    perf = PERFDATA.search(first_line(mine))
    assert perf, first_line(mine)
    assert abs(float(perf.group(1)) - offset) < 0.005, first_line(mine)
    assert (perf.group(2), perf.group(3)) == ("1", "2")
    assert perf.group(5) == "2" and perf.group(6) == "1"
    shown = re.search(r": Offset (-?[\d.e+-]+) secs, jitter [\d.]+ msec, stratum 2, truechimers 1",
                      first_line(mine))
    assert shown and abs(float(shown.group(1)) - offset) < 0.005, first_line(mine)


def test_default_thresholds_are_60_and_120(simulator):
    sim = simulator("--offset", "61")
    both(["-H", "127.0.0.1", "-p", str(sim.port), *FAST], WARNING)


def test_silent_server_is_critical_like_check_ntp_time(simulator):
    sim = simulator("--loss", "1")
    start = time.monotonic()
    mine, _ = both(["-H", "127.0.0.1", "-p", str(sim.port), "-w", "1", "-c", "2", *FAST],
                   CRITICAL)
    assert "No valid reply from 127.0.0.1" in first_line(mine), first_line(mine)
    assert "|" not in first_line(mine), "no figures, no performance data"
    assert time.monotonic() - start < 6


def test_silent_server_with_quiet_is_unknown(simulator):
    sim = simulator("--loss", "1")
    out = ours(["-H", "127.0.0.1", "-p", str(sim.port), "-q", *FAST])
    assert out.returncode == UNKNOWN, out.stdout
    assert first_line(out).startswith("NTP UNKNOWN: No valid reply"), out.stdout


@pytest.mark.parametrize("code", ["RATE", "DENY"])
def test_kiss_of_death_is_critical_and_named(simulator, code):
    sim = simulator("--kiss", code)
    mine, debian = both(["-H", "127.0.0.1", "-p", str(sim.port), *FAST], CRITICAL)
    # check_ntp_time only says "Offset unknown"; ours says why.
    assert f"Kiss-o'-Death {code} from 127.0.0.1" in first_line(mine), first_line(mine)
    assert "Kiss" not in debian.stdout


def test_unresolvable_name_is_unknown(simulator, netns):
    both(["-H", "no-such-host.invalid", *FAST], UNKNOWN, prefix=netns.prefix())
    out = ours(["-H", "no-such-host.invalid", "-4", *FAST], prefix=netns.prefix())
    assert out.returncode == UNKNOWN, out.stdout
    assert "cannot resolve no-such-host.invalid" in first_line(out), out.stdout


def test_missing_host_is_unknown_for_both():
    both([], UNKNOWN)


@pytest.mark.parametrize("args, message", [
    (["-H", "127.0.0.1", "-w", "abc"], "bad threshold -w: 'abc' is not a number"),
    (["-H", "127.0.0.1", "-c", "20:10"], "bad threshold -c: '20:10': start is greater"),
    (["-H", "127.0.0.1", "-W", "x:"], "bad threshold -W"),
    (["-H", "127.0.0.1", "-4", "-6"], "-4 and -6 are exclusive"),
    (["-H", "127.0.0.1", "--key-id", "1"], "--key-file and --key-id go together"),
    (["-H", "127.0.0.1:99999"], "-H:"),
])
def test_bad_usage_is_unknown_with_the_reason(args, message):
    out = ours(args)
    assert out.returncode == UNKNOWN, out.stdout + out.stderr
    assert first_line(out).startswith("NTP UNKNOWN: ") and message in first_line(out), out.stdout


@pytest.mark.parametrize("args", [["--no-such-option"], ["-H", "127.0.0.1", "-p", "0"],
                                  ["-H", "127.0.0.1", "-t", "abc"], ["stray"]])
def test_option_parse_errors_exit_unknown(args):
    out = ours(args)
    assert out.returncode == UNKNOWN, out.stdout + out.stderr
    assert out.stderr, "CLI11 says what was wrong"


# The offset is 1.5 s; each range form decides differently. check_ntp_time takes the same
# syntax, and both must agree.
@pytest.mark.parametrize("warning, critical, expected", [
    ("1", "2", WARNING),         # 0..1: 1.5 is outside
    ("2", "3", OK),
    ("1:", "10", OK),            # 1..inf
    ("2:", "10", WARNING),       # 1.5 < 2
    ("~:1", "10", WARNING),      # -inf..1
    ("~:2", "10", OK),
    ("1:2", "0:10", OK),
    ("10:20", "0:100", WARNING),
    ("@1:2", "10", WARNING),     # inside alerts
    ("@2:3", "10", OK),
    ("1", "@1.4:1.6", CRITICAL),
])
def test_range_syntax_matches_check_ntp_time(simulator, warning, critical, expected):
    sim = simulator("--offset", "1.5")
    both(["-H", "127.0.0.1", "-p", str(sim.port), "-w", warning, "-c", critical, *FAST],
         expected)


def test_time_offset_is_added_like_check_ntp_time(simulator):
    # check_ntp_time adds -o to the measured offset: a server 5 s ahead is OK with -o -5.
    sim = simulator("--offset", "5")
    both(["-H", "127.0.0.1", "-p", str(sim.port), "-w", "1", "-c", "2", "-o", "-5", *FAST], OK)
    both(["-H", "127.0.0.1", "-p", str(sim.port), "-w", "1", "-c", "2", "-o", "5", *FAST],
         CRITICAL)


@pytest.mark.parametrize("stratum, expected", [(2, OK), (4, WARNING), (6, CRITICAL)])
def test_stratum_thresholds(simulator, stratum, expected):
    sim = simulator("--stratum", str(stratum))
    out = ours(["-H", "127.0.0.1", "-p", str(sim.port), "-W", "3", "-C", "5", *FAST])
    assert out.returncode == expected, out.stdout
    assert f"stratum {stratum}" in first_line(out) and f"stratum={stratum};3;5;" in out.stdout


def test_truechimers_threshold(simulator):
    sim = simulator()
    out = ours(["-H", "127.0.0.1", "-p", str(sim.port), "-n", "2:", *FAST])
    assert out.returncode == CRITICAL, out.stdout
    assert "truechimers 1" in first_line(out) and "truechimers=1;;2:;" in out.stdout


def test_ipv6_and_family_selection(simulator):
    sim = simulator("--offset", "1.5", listen="[::1]:0")
    both(["-H", "::1", "-p", str(sim.port), "-6", "-w", "1", "-c", "2", *FAST], WARNING)
    out = ours(["-H", "::1", "-p", str(sim.port), "-4", *FAST])
    assert out.returncode == UNKNOWN, out.stdout
    assert "(IPv4)" in first_line(out), out.stdout


def test_verbose_prints_one_line_per_address(simulator):
    sim = simulator("--offset", "0.1")
    out = ours(["-H", f"127.0.0.1:{sim.port}", "-v", *FAST])
    assert out.returncode == OK, out.stdout
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("127.0.0.1: OK, Offset "), out.stdout


def test_symmetric_key(key_chrony):
    key_id = 3
    out = ours(["-H", "127.0.0.1", "-p", str(key_chrony.port), "--key-file",
                str(key_chrony.keys_path), "--key-id", str(key_id), *FAST])
    assert out.returncode == OK, out.stdout + out.stderr
    assert "truechimers 1" in first_line(out)
    # A key the server does not have: every reply fails authentication, so no offset.
    wrong = key_chrony.keys_path.parent / "wrong.keys"
    kind, _ = CHRONY_KEYS[key_id]
    wrong.write_text(f"{key_id} {kind} HEX:{'00' * 32}\n")
    out = ours(["-H", "127.0.0.1", "-p", str(key_chrony.port), "--key-file", str(wrong),
                "--key-id", str(key_id), *FAST])
    assert out.returncode == CRITICAL, out.stdout + out.stderr
    assert "No valid reply" in first_line(out), out.stdout


# ----------------------------------------------------------------------------------------
# docs/nagios.md: its Nagios and Icinga 2 definitions are accepted by the real programs.

NAGIOS_MD = peers.REPO / "docs" / "nagios.md"
NAGIOS_MAIN = """log_file={d}/nagios.log
cfg_file={d}/objects.cfg
cfg_file={d}/doc.cfg
status_file={d}/status.dat
command_file={d}/nagios.cmd
lock_file={d}/nagios.lock
temp_file={d}/nagios.tmp
check_result_path={d}
nagios_user=root
nagios_group=root
"""
# What the documented definitions refer to: a time period, a contact, the generic-service
# template and the host.
NAGIOS_OBJECTS = """define timeperiod {
    timeperiod_name 24x7
    alias           always
    monday          00:00-24:00
}
define contact {
    contact_name                  admin
    host_notifications_enabled    0
    service_notifications_enabled 0
    host_notification_period      24x7
    service_notification_period   24x7
    host_notification_options     n
    service_notification_options  n
    host_notification_commands    check_ntp_monitor
    service_notification_commands check_ntp_monitor
}
define service {
    name                  generic-service
    register              0
    max_check_attempts    3
    check_interval        5
    retry_interval        1
    check_period          24x7
    notification_interval 0
    notification_period   24x7
    contacts              admin
}
define host {
    host_name             ntp1
    address               127.0.0.1
    max_check_attempts    3
    check_period          24x7
    notification_interval 0
    notification_period   24x7
    contacts              admin
}
"""


def _doc_block(marker: str) -> str:
    blocks = re.findall(r"```\n(.*?)```", NAGIOS_MD.read_text(), re.S)
    found = [b for b in blocks if marker in b]
    assert found, f"no code block with {marker!r} in {NAGIOS_MD}"
    return found[0]


def _need(program: str, package: str) -> str:
    import shutil
    path = shutil.which(program) or (f"/usr/sbin/{program}"
                                     if Path(f"/usr/sbin/{program}").exists() else None)
    if path is None:
        pytest.fail(f"{program} missing: scripts/install-deps installs {package}", pytrace=False)
    return path


def test_nagios_config_is_accepted(tmp_path):
    nagios = _need("nagios4", "nagios4-core")
    (tmp_path / "nagios.cfg").write_text(NAGIOS_MAIN.format(d=tmp_path))
    (tmp_path / "objects.cfg").write_text(NAGIOS_OBJECTS)
    doc = _doc_block("define command")
    assert "ntp-monitor check -H" in doc
    (tmp_path / "doc.cfg").write_text(doc)
    out = subprocess.run([nagios, "-v", str(tmp_path / "nagios.cfg")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Total Errors:   0" in out.stdout, out.stdout
    # The pre-flight check is not a rubber stamp: a typo in the command is an error.
    (tmp_path / "doc.cfg").write_text(doc.replace("check_ntp_monitor!", "check_ntp_monitr!"))
    out = subprocess.run([nagios, "-v", str(tmp_path / "nagios.cfg")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0, out.stdout


def test_icinga2_check_command_is_accepted():
    icinga2 = _need("icinga2", "icinga2-bin")
    # icinga2 reads its files as the nagios user: not from pytest's private tmp_path.
    with tempfile.TemporaryDirectory(prefix="ntpmon-icinga2-") as name:
        workdir = Path(name)
        workdir.chmod(0o755)
        _icinga2_accepts_the_doc(icinga2, workdir)


def _icinga2_accepts_the_doc(icinga2: str, tmp_path: Path) -> None:
    doc = _doc_block("CheckCommand")
    (tmp_path / "doc.conf").write_text(doc)
    host = ('object Host "ntp1" {\n  address = "127.0.0.1"\n  check_command = "ntp_monitor"\n'
            '  vars.ntp_server = true\n}\n')
    (tmp_path / "icinga2.conf").write_text(f'include "doc.conf"\n{host}')
    out = subprocess.run([icinga2, "daemon", "-C", "-c", str(tmp_path / "icinga2.conf")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Instantiated 1 CheckCommand" in out.stdout, out.stdout
    assert "Instantiated 1 Service" in out.stdout, "the apply rule matched the host"
    (tmp_path / "doc.conf").write_text(doc.replace("arguments = {", "argumentz = {"))
    out = subprocess.run([icinga2, "daemon", "-C", "-c", str(tmp_path / "icinga2.conf")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, out.stdout
