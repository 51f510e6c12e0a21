"""Real NTP peers on loopback for the integration tests and bench/accuracy.py.

Responsible for: starting chronyd, chronyd under libfaketime, ntpsec's ntpd inside its own
network namespace and the project's simulator as child processes on unique loopback ports;
waiting until each one answers; stopping them (process group, SIGTERM then SIGKILL) so that
nothing is left behind; a raw NTP probe used for readiness checks; running the ntp-monitor
binary. Not responsible for: asserting anything (the tests do) or building the binary.

Safety rules this module enforces, because a test machine's clock and network must not be
touched by a test:
- every peer listens on 127.0.0.1 / ::1 only, or inside a network namespace of its own;
- every peer runs without CAP_SYS_TIME (setpriv drops it from the bounding set), so even a
  daemon that tries to adjust the clock (ntpd calls ntp_adjtime at start-up even with
  `disable ntp`) gets EPERM;
- every peer gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the test process even if the
  test process itself is killed before its fixtures' teardown runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
NTPD = REPO / ".deps" / "ntpsec" / "usr" / "sbin" / "ntpd"
CHRONYD = shutil.which("chronyd") or "/usr/sbin/chronyd"

# JSON keys of one `ntp-monitor query --json` entry, exactly (the query command's contract).
QUERY_KEYS = frozenset(
    {
        "host", "address", "port", "ok", "error", "offset", "delay", "jitter", "stratum",
        "refid", "leap", "version", "root_delay", "root_dispersion", "root_distance",
        "precision", "poll", "samples", "kod",
        # authentication (docs/authentication.md)
        "authenticated", "nts_ke_seconds", "cookies", "aead", "certificate_expiry",
    }
)

# Seconds between 1900-01-01 (NTP era 0) and 1970-01-01 (Unix epoch).
NTP_UNIX_OFFSET_S = 2_208_988_800

# Drop CAP_SYS_TIME for the child and everything it executes: the kernel then refuses
# settimeofday/adjtimex/clock_adjtime, whatever the daemon's configuration says.
NO_CLOCK_PREFIX = ["setpriv", "--bounding-set", "-sys_time", "--inh-caps", "-sys_time"]


def build_dir() -> Path:
    return Path(os.environ.get("NTPMON_BUILD_DIR", str(REPO / "build"))).resolve()


def monitor_binary() -> Path:
    return build_dir() / "ntp-monitor"


def example_binary() -> Path:
    return build_dir() / "examples" / "example_quick_test"


def faketime_library() -> Optional[str]:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


# ----------------------------------------------------------------------------------------
# Ports

_handed_out: set[int] = set()
_port_lock = threading.Lock()


def _udp_port_free(family: int, host: str, port: int) -> bool:
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_udp_port() -> int:
    """A UDP port free on both 127.0.0.1 and ::1, never handed out twice by this process.

    chronyd sets SO_REUSEPORT, so a second chronyd on a busy port would start silently and
    steal half the replies: checking that the port is free really matters here."""
    with _port_lock:
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            if port in _handed_out or port < 1024:
                continue
            if not _udp_port_free(socket.AF_INET6, "::1", port):
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free UDP port on loopback")


# ----------------------------------------------------------------------------------------
# Raw NTP probe (readiness checks only; the thing under test is the ntp-monitor binary)


def ntp_probe(host: str, port: int, version: int = 4, timeout_s: float = 0.5) -> Optional[dict]:
    """Sends one mode-3 request, returns the decoded reply header or None on timeout."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(timeout_s)
    try:
        request = bytearray(48)
        request[0] = (version << 3) | 3
        t1 = time.time()
        xmt = int((t1 + NTP_UNIX_OFFSET_S) * 2**32)
        request[40:48] = struct.pack("!Q", xmt)
        s.sendto(bytes(request), (host, port))
        data, _ = s.recvfrom(1024)
        t4 = time.time()
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 48:
        return None

    def ts(pos: int) -> float:
        return struct.unpack("!Q", data[pos : pos + 8])[0] / 2**32 - NTP_UNIX_OFFSET_S

    t2, t3 = ts(32), ts(40)
    return {
        "leap": data[0] >> 6,
        "version": (data[0] >> 3) & 7,
        "mode": data[0] & 7,
        "stratum": data[1],
        "refid": bytes(data[12:16]),
        "origin_ok": struct.unpack("!Q", data[24:32])[0] == xmt,
        "offset": ((t2 - t1) + (t3 - t4)) / 2,
        "delay": (t4 - t1) - (t3 - t2),
    }


# ----------------------------------------------------------------------------------------
# Process handling

_PR_SET_PDEATHSIG = 1

# Every long-running child started by spawn(), so a session hook can prove none is left.
SPAWNED: list[subprocess.Popen] = []


def _child_setup() -> None:
    # Runs in the child between fork and exec: die with the parent (see module comment).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv: Sequence[str], log_path: Path, env: Optional[dict] = None,
          stdout_pipe: bool = False, stdout_path: Optional[Path] = None) -> subprocess.Popen:
    """Starts argv in a new session (its own process group) with PDEATHSIG set; stderr and
    stdout go to log_path, stdout to a pipe or to stdout_path instead if asked."""
    log = open(log_path, "ab")
    out = open(stdout_path, "ab") if stdout_path is not None else None
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else (out or log),
            stderr=log,
            env=env,
            start_new_session=True,
            preexec_fn=_child_setup,
        )
        SPAWNED.append(proc)
        return proc
    finally:
        log.close()
        if out is not None:
            out.close()


def stop_process(proc: Optional[subprocess.Popen], grace_s: float = 3.0) -> None:
    """SIGTERM to the whole process group, SIGKILL after grace_s; always reaps."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            proc.wait()
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


class Peer:
    """A child process with a log file; a context manager that always stops it."""

    name = "peer"

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: Optional[subprocess.Popen] = None

    def stop(self) -> None:
        stop_process(self.proc)

    def log(self) -> str:
        return _tail(self.log_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_answer(self, probe, deadline_s: float, accept) -> dict:
        """Polls probe() until accept(reply) or the deadline; raises with the peer's log."""
        end = time.monotonic() + deadline_s
        last = None
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            last = probe()
            if last is not None and accept(last):
                return last
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer within {deadline_s} s (last reply {last}):\n"
            f"{self.log()}")


# ----------------------------------------------------------------------------------------
# chronyd


class ChronyServer(Peer):
    """chronyd serving its local clock (`local stratum N`) on 127.0.0.1 and ::1.

    -x: chronyd never adjusts the system clock; cmdport 0: no command socket. chrony 4.3
    accepts one `bindaddress` per address family, so one daemon serves both."""

    name = "chronyd"

    def __init__(self, workdir: Path, stratum: int = 3, ipv6: bool = True,
                 fake_offset_s: Optional[float] = None, port: Optional[int] = None):
        super().__init__(workdir)
        self.port = port or free_udp_port()
        self.stratum = stratum
        self.ipv6 = ipv6
        self.fake_offset_s = fake_offset_s
        self.conf_path = self.workdir / "chrony.conf"
        lines = [
            f"port {self.port}",
            "bindaddress 127.0.0.1",
            "allow 127.0.0.1",
        ]
        if ipv6:
            lines += ["bindaddress ::1", "allow ::1"]
        lines += [
            f"local stratum {stratum}",
            "cmdport 0",
            f"pidfile {self.workdir / 'chronyd.pid'}",
            f"driftfile {self.workdir / 'chronyd.drift'}",
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, deadline_s: float = 10.0) -> "ChronyServer":
        env = dict(os.environ)
        if self.fake_offset_s is not None:
            lib = faketime_library()
            if lib is None:
                raise RuntimeError("libfaketime not installed")
            # LC_ALL=C: libfaketime parses FAKETIME with the locale's decimal point.
            # FAKETIME_NO_CACHE: re-read the offset on every call (it never changes here,
            # but caching adds nothing and has confused reproductions before).
            env.update(LD_PRELOAD=lib, FAKETIME=f"{self.fake_offset_s:+g}", LC_ALL="C",
                       FAKETIME_NO_CACHE="1")
        argv = NO_CLOCK_PREFIX + [CHRONYD, "-x", "-d", "-u", "root", "-f", str(self.conf_path)]
        self.proc = spawn(argv, self.log_path, env=env)
        self._wait_answer(lambda: ntp_probe("127.0.0.1", self.port), deadline_s,
                          lambda r: r["stratum"] == self.stratum)
        return self


def chrony_client_offset(workdir: Path, port: int, host: str = "127.0.0.1",
                         timeout_s: float = 20.0) -> Optional[float]:
    """chronyd -Q as a reference client: measures one offset and exits without touching
    the clock. Returns the offset in seconds (positive = server ahead, as ntp-monitor)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "chrony-client.conf"
    conf.write_text(
        f"server {host} port {port} iburst\n"
        "cmdport 0\n"
        f"pidfile {workdir / 'chrony-client.pid'}\n"
    )
    argv = NO_CLOCK_PREFIX + [CHRONYD, "-Q", "-u", "root", "-f", str(conf)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                         preexec_fn=_child_setup)
    # chronyd prints e.g. "System clock wrong by -0.000012 seconds (ignored)". "Wrong by
    # -x" means the local clock is behind the server by x, i.e. the server offset is +x.
    match = re.search(r"System clock wrong by (-?[0-9.]+) seconds",
                      out.stdout + out.stderr)
    if match is None:
        return None
    return float(match.group(1))


# ----------------------------------------------------------------------------------------
# Network namespace and ntpsec


class NetNamespace(Peer):
    """A fresh network namespace with only `lo` up, held open by a sleeping process.

    Commands run inside it through nsenter. Nothing in it can reach another host: there is
    no interface but loopback, so even a DNS query to an off-machine resolver fails locally
    with 'network unreachable'."""

    name = "netns"

    def start(self) -> "NetNamespace":
        argv = ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"]
        self.proc = spawn(argv, self.log_path)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unshare -n failed:\n{self.log()}")
            if self._lo_up():
                return self
            time.sleep(0.05)
        raise RuntimeError("loopback did not come up in the namespace")

    def _lo_up(self) -> bool:
        out = subprocess.run(self.prefix() + ["ip", "-o", "addr", "show", "lo"],
                             capture_output=True, text=True)
        return "127.0.0.1" in out.stdout

    def prefix(self) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net"]


class NtpsecServer(Peer):
    """ntpsec's ntpd as an orphan-mode server (stratum 6) on 127.0.0.1:123 in a namespace.

    Port 123 is fixed in ntpsec 1.2.2, hence the namespace. ntpd's -x only raises the step
    threshold; it does NOT stop ntpd from adjusting the clock, and `disable ntp` still lets
    it call ntp_adjtime at start-up. The clock is protected by running it without
    CAP_SYS_TIME (the calls fail with EPERM, visible in its log)."""

    name = "ntpd"
    orphan_stratum = 6

    def __init__(self, workdir: Path, netns: NetNamespace):
        super().__init__(workdir)
        self.netns = netns
        self.port = 123
        self.conf_path = self.workdir / "ntp.conf"
        self.conf_path.write_text(
            "\n".join(
                [
                    # No upstream: after orphanwait (s) it serves as an orphan parent.
                    f"tos orphan {self.orphan_stratum} orphanwait 1",
                    "interface listen 127.0.0.1",
                    "restrict default ignore",
                    "restrict 127.0.0.1",
                    # Open the discipline loop and keep the kernel PLL alone (belt and
                    # braces; CAP_SYS_TIME is dropped anyway).
                    "disable ntp",
                    "disable kernel",
                    f"driftfile {self.workdir / 'ntp.drift'}",
                    f"statsdir {self.workdir}/",
                ]
            )
            + "\n"
        )

    def start(self, wait_synced: bool = True, deadline_s: float = 20.0) -> "NtpsecServer":
        if not NTPD.exists():
            raise RuntimeError(f"{NTPD} missing (scripts/install-deps unpacks it)")
        argv = self.netns.prefix() + NO_CLOCK_PREFIX + [
            str(NTPD), "-n", "-g", "-x", "-c", str(self.conf_path), "-l", str(self.log_path)]
        self.proc = spawn(argv, self.workdir / "ntpd.stderr")
        accept = (lambda r: r["stratum"] == self.orphan_stratum) if wait_synced else (
            lambda r: True)
        self.first_reply = self._wait_answer(self.probe, deadline_s, accept)
        return self

    def probe(self) -> Optional[dict]:
        """ntp_probe run inside the namespace (through nsenter and a child python)."""
        code = (
            "import json,sys; sys.path.insert(0, %r); import peers; "
            "r = peers.ntp_probe('127.0.0.1', 123); "
            "print(json.dumps(r and dict(r, refid=r['refid'].hex())))"
        ) % str(Path(__file__).resolve().parent)
        out = subprocess.run(self.netns.prefix() + ["python3", "-c", code],
                             capture_output=True, text=True, timeout=10)
        try:
            reply = json.loads(out.stdout)
        except ValueError:
            return None
        if reply is not None:
            reply["refid"] = bytes.fromhex(reply["refid"])
        return reply


# ----------------------------------------------------------------------------------------
# The project's simulator


class Simulator(Peer):
    """`ntp-monitor simulate` on 127.0.0.1 (port chosen by the kernel), with knobs."""

    name = "simulate"

    def __init__(self, workdir: Path, args: Sequence[str] = (), listen: str = "127.0.0.1:0",
                 prefix: Sequence[str] = (), max_runtime_s: float = 600,
                 binary: Optional[Path] = None):
        super().__init__(workdir)
        self.binary = Path(binary) if binary else monitor_binary()
        self.args = list(args)
        self.listen = listen
        self.prefix = list(prefix)
        self.max_runtime_s = max_runtime_s
        self.port: Optional[int] = None
        self.address: Optional[str] = None
        self._ready = threading.Event()
        self._stdout_lines: list[str] = []

    def start(self, deadline_s: float = 10.0) -> "Simulator":
        # --max-runtime is a second safety net besides PDEATHSIG and the fixtures.
        argv = self.prefix + [str(self.binary), "simulate", "--listen", self.listen,
                              "--max-runtime", f"{self.max_runtime_s:g}"] + self.args
        self.proc = spawn(argv, self.log_path, stdout_pipe=True)
        reader = threading.Thread(target=self._read_stdout, daemon=True)
        reader.start()
        if not self._ready.wait(deadline_s):
            self.stop()
            raise RuntimeError(
                f"simulator printed no 'listening on' line within {deadline_s} s "
                f"(stdout {self._stdout_lines!r}):\n{self.log()}")
        return self

    def _read_stdout(self) -> None:
        # Keeps draining stdout for the process' lifetime so the pipe never fills up.
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self._stdout_lines.append(line)
            match = re.match(r"listening on \[?([^\]]*?)\]?:(\d+)\s*$", line)
            if match and not self._ready.is_set():
                self.address, self.port = match.group(1), int(match.group(2))
                self._ready.set()

    @property
    def target(self) -> str:
        """HOST:PORT as the query command takes it (IPv6 in brackets)."""
        host = f"[{self.address}]" if self.address and ":" in self.address else self.address
        return f"{host}:{self.port}"


# ----------------------------------------------------------------------------------------
# Running ntp-monitor


def run_monitor(args: Sequence[str], timeout_s: float = 60.0, prefix: Sequence[str] = (),
                binary: Optional[Path] = None) -> subprocess.CompletedProcess:
    argv = list(prefix) + [str(binary or monitor_binary())] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                          preexec_fn=_child_setup)


def query_json(targets: Sequence[str], *options: str, timeout_s: float = 60.0,
               prefix: Sequence[str] = (), binary: Optional[Path] = None
               ) -> tuple[int, list, subprocess.CompletedProcess]:
    """Runs `ntp-monitor query --json OPTIONS TARGETS`; returns (exit code, parsed, raw)."""
    out = run_monitor(["query", "--json", *options, *targets], timeout_s=timeout_s,
                      prefix=prefix, binary=binary)
    try:
        parsed = json.loads(out.stdout)
    except ValueError as e:
        raise AssertionError(
            f"query --json printed no JSON ({e}); exit {out.returncode}\n"
            f"stdout: {out.stdout!r}\nstderr: {out.stderr!r}") from None
    return out.returncode, parsed, out


# ----------------------------------------------------------------------------------------
# NTS: a throw-away PKI and NTS servers (chronyd, ntpsec's ntpd)


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 that this process has not handed out before."""
    with _port_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free TCP port")


def _openssl(args: Sequence[str], cwd: Path, prefix: Sequence[str] = ()) -> None:
    out = subprocess.run(list(prefix) + ["openssl", *args], cwd=cwd, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{out.stderr}")


def make_test_ca(workdir: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed P-256 CA generated now; returns (certificate, key)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / f"{name}.pem", workdir / f"{name}.key"
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
              "-subj", f"/CN=ntp-monitor test {name}"], workdir)
    return cert, key


def make_server_cert(workdir: Path, ca: tuple[Path, Path], name: str,
                     dns: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1",),
                     days: int = 10, backdate_days: int = 0) -> tuple[Path, Path]:
    """A server certificate signed by `ca` for the given names; returns (certificate, key).
    backdate_days > days makes an expired certificate: openssl runs under libfaketime with
    the clock moved back, so only the certificate's dates are affected."""
    workdir = Path(workdir)
    cert, key, csr = (workdir / f"{name}.pem", workdir / f"{name}.key",
                      workdir / f"{name}.csr")
    ext = workdir / f"{name}.ext"
    sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
    ext.write_text(f"subjectAltName={','.join(sans)}\nbasicConstraints=CA:FALSE\n"
                   "extendedKeyUsage=serverAuth\n")
    _openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={(list(dns) or ips)[0]}"],
             workdir)
    prefix: list[str] = []
    if backdate_days:
        prefix = ["faketime", "-f", f"-{backdate_days}d"]
    _openssl(["x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
              "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext)],
             workdir, prefix=prefix)
    return cert, key


def certificate_not_after(cert: Path) -> str:
    """notAfter of a PEM certificate as RFC 3339 UTC (the query's certificate_expiry)."""
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-enddate",
                          "-dateopt", "iso_8601"], capture_output=True, text=True, check=True)
    # "notAfter=2025-01-31 12:00:00Z"
    value = out.stdout.strip().split("=", 1)[1]
    return value.replace(" ", "T")


class NtsChronyServer(ChronyServer):
    """ChronyServer that also serves NTS-KE (TLS on 127.0.0.1:ntsport) with the given
    certificate and key; NTP on `port` as usual. ntsdumpdir keeps its cookie keys in workdir."""

    name = "chronyd-nts"

    def __init__(self, workdir: Path, cert: Path, key: Path, **kwargs):
        kwargs.setdefault("ipv6", False)
        super().__init__(workdir, **kwargs)
        self.nts_port = free_tcp_port()
        dump = self.workdir / "ntsdump"
        dump.mkdir(exist_ok=True)
        with open(self.conf_path, "a") as conf:
            conf.write(f"ntsserverkey {key}\nntsservercert {cert}\nntsport {self.nts_port}\n"
                       f"ntsdumpdir {dump}\n")

    def start(self, deadline_s: float = 10.0) -> "NtsChronyServer":
        super().start(deadline_s)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.nts_port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chronyd NTS-KE port {self.nts_port} not open:\n{self.log()}")


# chrony.keys: id, type, key. HEX: for the digests, ASCII: for one, exact sizes for AES.
CHRONY_KEYS = {
    1: ("MD5", "HEX:6D64352D6B65792D666F722D6E746D6F6E"),
    2: ("SHA1", "ASCII:sha1-key-for-ntpmon"),
    3: ("SHA256", "HEX:" + "a5" * 32),
    4: ("SHA512", "HEX:" + "5a" * 40),
    5: ("AES128", "HEX:000102030405060708090a0b0c0d0e0f"),
    6: ("AES256", "HEX:" + "0f0e0d0c0b0a09080706050403020100" * 2),
}


def chrony_keys_text(keys: dict) -> str:
    return "".join(f"{i} {t} {k}\n" for i, (t, k) in keys.items())


class KeyChronyServer(ChronyServer):
    """ChronyServer with a symmetric key file (`keyfile`)."""

    name = "chronyd-keys"

    def __init__(self, workdir: Path, keys_text: str, **kwargs):
        kwargs.setdefault("ipv6", False)
        super().__init__(workdir, **kwargs)
        self.keys_path = self.workdir / "chrony.keys"
        self.keys_path.write_text(keys_text)
        self.keys_path.chmod(0o600)
        with open(self.conf_path, "a") as conf:
            conf.write(f"keyfile {self.keys_path}\n")


class ConfiguredNtpsecServer(NtpsecServer):
    """NtpsecServer with extra configuration lines (keys, NTS) appended."""

    def __init__(self, workdir: Path, netns: NetNamespace, extra_lines: Sequence[str]):
        super().__init__(workdir, netns)
        with open(self.conf_path, "a") as conf:
            conf.write("\n".join(extra_lines) + "\n")


@contextlib.contextmanager
def ntpsec_in_namespace(workdir: Path, extra_lines: Sequence[str]
                        ) -> Iterator[ConfiguredNtpsecServer]:
    """A ConfiguredNtpsecServer (state in workdir/ntpd) on 127.0.0.1:123 in a network
    namespace of its own (workdir/ns, the server's `netns`); both stopped on exit."""
    with NetNamespace(Path(workdir) / "ns").start() as ns:
        with ConfiguredNtpsecServer(Path(workdir) / "ntpd", ns, extra_lines).start() as ntpd:
            yield ntpd
