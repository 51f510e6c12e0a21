"""Protocol hygiene on the wire (issue 18, items 5, 10, 11, 12), with real processes on loopback.

- An unsynchronized reply (leap 3, from the project's simulator) keeps its header: `query
  --json` and the daemon's API report its stratum, leap, refid and version with the
  unsynchronized verdict.
- Requests carry a real poll exponent: read straight off the datagram by a UDP socket of the
  test (the daemon's source poll interval; `query`: at least 6), and the poll a reply carries
  is reported as the server's field (the simulator echoes the request's poll, as chronyd does).
- The NTS-KE client ends its TLS session with a close_notify: a Python TLS 1.3 NTS-KE server
  (ssl module, ALPN ntske/1, a minimal RFC 8915 response) records whether the client's
  close_notify came (SSLSocket.recv returns b'') or the connection just ended (SSLEOFError or
  a reset), and that its own close_notify was not answered with a reset.
- A certificate that names the server only in its subject CN (no subjectAltName, made here with
  openssl) is refused by `query --nts` (RFC 9525), whose text output then says the NTS
  authentication failed; the daemon shows such a server in state `auth_failed`, in the API and
  in ntp_monitor_server_info{state}, not `unreachable`.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

import pytest

import peers
from helpers import metric, wait_for
from test_dashboard import driver_modules, run_driver  # noqa: F401 (a fixture)


# ----------------------------------------------------------------------------------------
# 5. An unsynchronized reply keeps its header


def test_query_reports_the_header_of_an_unsynchronized_reply(tmp_path, monitor):
    with peers.Simulator(tmp_path / "sim", ["--leap", "3", "--stratum", "3", "--refid", "192.0.2.7"]
                         ).start() as sim:
        rc, result, out = peers.query_json([sim.target], "--samples", "2", "--interval", "0.05",
                                           "--timeout", "0.5")
    assert rc == 1, out.stdout + out.stderr
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    assert r["error"] == "unsynchronized (LI=3)", r["error"]
    # A reply arrived: what it said about the server is reported, not null.
    assert (r["stratum"], r["leap"], r["refid"], r["version"]) == (3, 3, "192.0.2.7", 4), r
    assert r["offset"] is None and r["delay"] is None  # no valid sample: no measurement


def test_query_text_shows_the_header_of_an_unsynchronized_reply(tmp_path, monitor):
    with peers.Simulator(tmp_path / "sim", ["--leap", "3", "--stratum", "3", "--refid", "192.0.2.7"]
                         ).start() as sim:
        out = peers.run_monitor(["query", "--samples", "1", "--timeout", "0.5", sim.target])
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(r"error\s+unsynchronized \(LI=3\)", out.stdout), out.stdout
    assert re.search(r"stratum\s+3\n", out.stdout), out.stdout
    assert re.search(r"leap\s+3 \(unsynchronized\)", out.stdout), out.stdout
    assert re.search(r"refid\s+192\.0\.2\.7\n", out.stdout), out.stdout


def test_daemon_api_reports_the_header_of_an_unsynchronized_server(tmp_path, daemon):
    with peers.Simulator(tmp_path / "sim", ["--leap", "3", "--stratum", "3", "--refid", "192.0.2.7"]
                         ).start() as sim:
        d = daemon("servers:\n"
                   f"  - {{name: unsync, host: 127.0.0.1, port: {sim.port}}}\n"
                   "poll: {min: 1, max: 1}\n")

        def refused():
            s = d.servers()["unsync"]
            return s if s["state"] == "unsynchronized" and s["stratum"] is not None else None

        s = wait_for("the unsynchronized server's header in the API", refused, 10)
        assert (s["stratum"], s["leap"], s["refid"], s["version"]) == (3, 3, "192.0.2.7", 4), s
        assert s["ok"] is False and s["offset"] is None
        # The simulator echoes the request's poll (at least 2^4): 1 s poll -> 2^0 -> 16 s.
        assert s["server_poll"] == 16.0 and s["poll"] == 1.0, s
        m = d.metrics()
        assert metric(m, "ntp_monitor_server_stratum", server="unsync") == 3
        assert metric(m, "ntp_monitor_server_leap", server="unsync") == 3


# ----------------------------------------------------------------------------------------
# 10. Requests carry the real poll exponent; the server's poll field is reported as such


class RequestCatcher:
    """A UDP socket on 127.0.0.1 that records the first datagrams sent to it (no answer)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]

    def first(self) -> bytes:
        data, _ = self.sock.recvfrom(2048)
        return data

    def close(self):
        self.sock.close()


def poll_field(request: bytes) -> int:
    assert len(request) >= 48 and request[0] & 7 == 3, request[:4]  # mode 3
    return struct.unpack("b", request[2:3])[0]


def test_query_request_carries_poll_6_or_its_spacing(monitor):
    catcher = RequestCatcher()
    try:
        results = {}
        for interval, expected in (("1", 6), ("300", 9)):
            # One request each: the spacing is what the poll field announces, at least 2^6.
            t = threading.Thread(target=lambda i=interval: results.setdefault(i, peers.run_monitor(
                ["query", "--samples", "1", "--interval", i, "--timeout", "0.2",
                 f"127.0.0.1:{catcher.port}"])))
            t.start()
            got = poll_field(catcher.first())
            t.join(10)
            assert got == expected, (interval, got)
    finally:
        catcher.close()


def test_query_reports_the_servers_poll_field(tmp_path, monitor):
    # The simulator echoes the request's poll (raised to at least 4, as ntpd does).
    with peers.Simulator(tmp_path / "sim").start() as sim:
        rc, result, out = peers.query_json([sim.target], "--samples", "1")
    assert rc == 0, out.stdout + out.stderr
    assert result[0]["poll"] == 64.0, result[0]
    with peers.Simulator(tmp_path / "sim2", ["--poll", "10"]).start() as sim:
        rc, result, out = peers.query_json([sim.target], "--samples", "1")
    assert rc == 0 and result[0]["poll"] == 1024.0, result[0]


def test_daemon_request_carries_the_sources_poll_exponent(daemon):
    catcher = RequestCatcher()
    try:
        # poll 256 s (explicit, loopback): exponent 8 from the first (burst) request on.
        d = daemon("servers:\n"
                   f"  - {{name: slow, host: 127.0.0.1, port: {catcher.port}, poll: 256}}\n")
        assert poll_field(catcher.first()) == 8
        # Our own interval, from the next published snapshot.
        wait_for("the API's poll", lambda: d.servers()["slow"]["poll"] == 256.0, 5)
    finally:
        catcher.close()


# ----------------------------------------------------------------------------------------
# 11. The NTS-KE client sends a TLS close_notify


def nts_ke_record(rtype: int, body: bytes = b"", critical: bool = False) -> bytes:
    return struct.pack("!HH", rtype | (0x8000 if critical else 0), len(body)) + body


class PythonNtsKeServer:
    """A one-connection NTS-KE server (RFC 8915 §4) with Python's ssl module: TLS 1.3, ALPN
    ntske/1; answers any request with NTPv4, AEAD_AES_SIV_CMAC_256 and two opaque cookies, then
    waits for what the client does with the TLS session. `outcome` says what came:
    "close_notify", "eof" (TCP FIN without close_notify) or "reset"; `after_ours` what followed
    our own close_notify ("fin" or "reset")."""

    def __init__(self, cert: Path, key: Path):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(str(cert), str(key))
        self.ctx.set_alpn_protocols(["ntske/1"])
        # Python sets OP_IGNORE_UNEXPECTED_EOF by default, which makes a TCP close without
        # close_notify read like a clean end: clear it, so only a real close_notify gives b"".
        self.ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.outcome = None
        self.after_ours = None
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(10)
        self.listener.close()

    def _serve(self):
        try:
            raw, _ = self.listener.accept()
            raw.settimeout(5)
            tls = self.ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
            request = b""
            while nts_ke_record(0, critical=True) not in request:
                chunk = tls.recv(4096)
                if not chunk:
                    raise AssertionError(f"request ended early: {request!r}")
                request += chunk
            tls.sendall(nts_ke_record(1, b"\x00\x00", critical=True) +
                        nts_ke_record(4, b"\x00\x0f") +
                        nts_ke_record(5, b"c" * 64) + nts_ke_record(5, b"d" * 64) +
                        nts_ke_record(0, critical=True))
            try:
                data = tls.recv(4096)
                self.outcome = "close_notify" if data == b"" else f"data {data!r}"
            except ssl.SSLEOFError:
                self.outcome = "eof"
            except ssl.SSLError as e:  # "unexpected eof while reading" on some builds
                self.outcome = f"eof ({e.reason})"
            except (ConnectionResetError, BrokenPipeError):
                self.outcome = "reset"
            if self.outcome == "close_notify":
                plain = tls.unwrap()  # sends ours
                try:
                    self.after_ours = "fin" if plain.recv(1) == b"" else "data"
                except ConnectionResetError:
                    self.after_ours = "reset"
                plain.close()
            else:
                tls.close()
        except Exception as e:  # reported by the test
            self.error = repr(e)


@pytest.fixture(scope="module")
def wire_pki(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wire-pki")
    ca = peers.make_test_ca(workdir, "ca")
    good = peers.make_server_cert(workdir, ca, "server")
    return {"ca": ca, "good": good, "workdir": workdir}


def test_nts_ke_client_sends_close_notify(wire_pki, monitor):
    ntp = peers.free_udp_port()  # nothing answers NTP: only the NTS-KE exchange matters here
    with PythonNtsKeServer(*wire_pki["good"]) as server:
        start = time.monotonic()
        out = peers.run_monitor(["query", "--json", "--nts", "--ntske-port", str(server.port),
                                 "--ca-file", str(wire_pki["ca"][0]), "--samples", "1",
                                 "--timeout", "0.3", f"127.0.0.1:{ntp}"])
        elapsed = time.monotonic() - start
    assert server.error is None, server.error
    assert '"nts_ke_seconds": null' not in out.stdout, out.stdout  # NTS-KE succeeded
    assert server.outcome == "close_notify", server.outcome
    assert server.after_ours == "fin", server.after_ours
    assert elapsed < 5, elapsed


# ----------------------------------------------------------------------------------------
# 12. A certificate without subjectAltName is refused; the failure is said as such


def make_cn_only_cert(workdir: Path, ca: tuple[Path, Path], cn: str) -> tuple[Path, Path]:
    """A server certificate signed by `ca` whose only name is its subject CN: X.509 v3 with
    serverAuth, but no subjectAltName extension."""
    cert, key, csr, ext = (workdir / "cn-only.pem", workdir / "cn-only.key",
                           workdir / "cn-only.csr", workdir / "cn-only.ext")
    ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    peers._openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}"],
                   workdir)
    peers._openssl(["x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                    "-CAcreateserial", "-out", str(cert), "-days", "10", "-extfile", str(ext)],
                   workdir)
    return cert, key


@pytest.fixture(scope="module")
def cn_only_chrony(tmp_path_factory, wire_pki, monitor):
    cert, key = make_cn_only_cert(wire_pki["workdir"], wire_pki["ca"], "localhost")
    server = peers.NtsChronyServer(tmp_path_factory.mktemp("chrony-cn-only"), cert, key)
    with server.start():
        yield server


def v4(entries: list) -> dict:
    """The entry for 127.0.0.1 (localhost may also resolve to ::1, where chronyd is not)."""
    found = [e for e in entries if e["address"] == "127.0.0.1"]
    assert len(found) == 1, entries
    return found[0]


def test_nts_certificate_with_only_a_cn_is_refused(cn_only_chrony, wire_pki):
    # A host name, not 127.0.0.1: OpenSSL never matched an IP address against the CN anyway.
    rc, result, out = peers.query_json(
        [f"localhost:{cn_only_chrony.port}"], "--nts", "--ntske-port",
        str(cn_only_chrony.nts_port), "--ca-file", str(wire_pki["ca"][0]), "--samples", "1",
        "--timeout", "1")
    assert rc == 1, out.stdout + out.stderr
    r = v4(result)
    assert not r["ok"] and r["samples"] == 0
    assert r["error"].startswith("NTS-KE failed: certificate: "), r["error"]
    assert "hostname mismatch" in r["error"], r["error"]


def test_failed_nts_query_text_says_it_failed(cn_only_chrony, wire_pki):
    out = peers.run_monitor(["query", "--nts", "--ntske-port", str(cn_only_chrony.nts_port),
                             "--ca-file", str(wire_pki["ca"][0]), "--samples", "1",
                             "--timeout", "1", f"localhost:{cn_only_chrony.port}"])
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(r"authenticated\s+NTS failed \(no authenticated sample\)", out.stdout), \
        out.stdout
    assert "(0 authenticated samples)" not in out.stdout


def test_daemon_shows_a_refused_nts_server_as_auth_failed(tmp_path, daemon, cn_only_chrony,
                                                          wire_pki):
    good = peers.Simulator(tmp_path / "sim").start()
    try:
        d = daemon("servers:\n"
                   f"  - {{name: cn-only, host: localhost, port: {cn_only_chrony.port}, "
                   f"nts: true, ntske_port: {cn_only_chrony.nts_port}, "
                   f"ca_file: '{wire_pki['ca'][0]}'}}\n"
                   f"  - {{name: plain, host: 127.0.0.1, port: {good.port}}}\n"
                   "poll: {min: 1, max: 1}\n")

        def auth_failed():
            entries = [e for e in d.api("/api/v1/servers")["servers"] if e["name"] == "cn-only"]
            if not any(e["address"] == "127.0.0.1" for e in entries):
                return None  # not resolved yet
            s = v4(entries)
            return s if s["state"] == "auth_failed" else None

        s = wait_for("state auth_failed in the API", auth_failed, 10)
        assert s["error"].startswith("NTS-KE failed: certificate: "), s["error"]
        m = d.metrics()
        assert metric(m, "ntp_monitor_server_info", server="cn-only", address="127.0.0.1",
                      state="auth_failed") == 1
        assert metric(m, "ntp_monitor_nts_ke_failures_total", server="cn-only",
                      address="127.0.0.1", reason="certificate") >= 1
        # The other server is not affected.
        assert d.servers()["plain"]["state"] != "auth_failed"
    finally:
        good.stop()


# ----------------------------------------------------------------------------------------
# 5 and 12 on the dashboard: what a person sees


def test_dashboard_shows_unsynchronized_header_and_auth_failed_badge(tmp_path, daemon,
                                                                     cn_only_chrony, wire_pki,
                                                                     driver_modules):
    good = peers.Simulator(tmp_path / "good").start()
    unsync = peers.Simulator(tmp_path / "unsync",
                             ["--leap", "3", "--stratum", "3", "--refid", "192.0.2.7"]).start()
    try:
        d = daemon("servers:\n"
                   f"  - {{name: good, host: 127.0.0.1, port: {good.port}}}\n"
                   f"  - {{name: unsync, host: 127.0.0.1, port: {unsync.port}}}\n"
                   f"  - {{name: refused, host: 127.0.0.1, port: {cn_only_chrony.port}, "
                   f"nts: true, ntske_port: {cn_only_chrony.nts_port}, "
                   f"ca_file: '{wire_pki['ca'][0]}'}}\n"
                   "poll: {min: 1, max: 1}\n")
        report = run_driver(driver_modules, tmp_path, f"http://127.0.0.1:{d.api_port}/",
                            {"servers": ["good", "unsync", "refused"],
                             "states": {"unsync": "unsynchronized", "refused": "auth_failed"}},
                            history_screenshot=False)
    finally:
        good.stop()
        unsync.stop()
    assert report["ready"], (report.get("readyError"), report["live"]["rows"])
    rows = {r["server"]: r for r in report["live"]["rows"]}
    refused = rows["refused"]
    assert refused["badge"] == "auth failed" and refused["level"] == "bad", refused
    assert refused["badgeColor"] == "rgb(248, 81, 73)", refused
    # The unsynchronized server's row shows the stratum and refid its replies carried.
    assert rows["unsync"]["cells"][6] == "3", rows["unsync"]["cells"]
    assert "192.0.2.7" in rows["unsync"]["cells"][1], rows["unsync"]["cells"]
