"""NTS (RFC 8915) against real servers: chronyd and ntpsec's ntpd as NTS-KE + NTS-NTP servers.

A test CA and server certificates come from conftest.py's pki (openssl: one for localhost /
127.0.0.1, one for a wrong host name, one already expired). The negative cases that need a
misbehaving server use a small UDP proxy in front of chronyd's NTP port (the client is sent
there with --nts-ntp-server, because chronyd's NTS-KE tells it the real port): it flips a bit
of a reply, replays an old reply, or answers with an NTS NAK (KoD NTSN) carrying the
request's Unique Identifier."""

from __future__ import annotations

import re
import socket
import struct
import threading
import time

import pytest

import peers

FAST = ("--interval", "0.1", "--timeout", "1")


def nts_query(server, host="localhost", samples=2, ca=None, prefix=()):
    args = ["--nts", "--ntske-port", str(server.nts_port), *FAST, "--samples", str(samples)]
    if ca is not None:
        args += ["--ca-file", str(ca)]
    return peers.query_json([f"{host}:{server.port}"], *args, prefix=prefix)


def test_nts_with_chrony(nts_chrony, pki):
    rc, result, out = nts_query(nts_chrony, "localhost", ca=pki["ca"])
    assert rc == 0, out.stdout + out.stderr
    r = result[0]
    assert set(r) == peers.QUERY_KEYS
    assert r["ok"] and r["authenticated"] == "nts"
    assert r["samples"] == 2 and r["stratum"] == 3
    assert abs(r["offset"]) < 0.001
    assert r["aead"] == "AEAD_AES_SIV_CMAC_256"
    # chronyd hands out 8 cookies; each request spends one and asks for the missing ones.
    assert r["cookies"] == 8
    assert 0 < r["nts_ke_seconds"] < 2.0
    assert r["certificate_expiry"] == peers.certificate_not_after(pki["good"][0])
    print(f"chronyd NTS: offset {r['offset']:+.9f} s, NTS-KE {r['nts_ke_seconds'] * 1e3:.3f} ms")


def test_nts_ip_literal_checks_ip_san(nts_chrony, pki):
    rc, result, out = nts_query(nts_chrony, "127.0.0.1", ca=pki["ca"])
    assert rc == 0, out.stdout + out.stderr
    assert result[0]["authenticated"] == "nts" and result[0]["samples"] == 2


def test_nts_text_output(nts_chrony, pki):
    out = peers.run_monitor(["query", "--nts", "--ntske-port", str(nts_chrony.nts_port),
                             "--ca-file", str(pki["ca"]), *FAST, "--samples", "2",
                             f"localhost:{nts_chrony.port}"])
    assert out.returncode == 0, out.stderr
    assert re.search(r"authenticated\s+NTS \(2 authenticated samples\)", out.stdout), out.stdout
    assert re.search(r"AEAD\s+AEAD_AES_SIV_CMAC_256", out.stdout)
    assert re.search(r"cookies\s+8", out.stdout)
    assert re.search(rf"NTS NTP server\s+127\.0\.0\.1:{nts_chrony.port}", out.stdout)


def test_nts_offset_of_faketime_chrony(tmp_path, pki, monitor):
    """chronyd 1.5 s ahead under libfaketime: the NTS-authenticated offset is 1.5 s within
    1 ms (1.5 s does not move the certificate's validity window noticeably)."""
    if peers.faketime_library() is None:
        pytest.skip("libfaketime not installed")
    server = peers.NtsChronyServer(tmp_path / "fake", *pki["good"], fake_offset_s=1.5)
    with server.start():
        rc, result, out = nts_query(server, "localhost", samples=3, ca=pki["ca"])
    assert rc == 0, out.stdout + out.stderr
    r = result[0]
    assert r["authenticated"] == "nts" and r["samples"] == 3
    assert abs(r["offset"] - 1.5) < 0.001, r
    print(f"faketime chronyd NTS: offset {r['offset']:+.9f} s")


@pytest.mark.parametrize("case", ["untrusted_ca", "system_store", "wrong_host", "expired"])
def test_nts_ke_certificate_failures(tmp_path, pki, case, monitor):
    cert = {"wrong_host": pki["wrong_host"], "expired": pki["expired"]}.get(case, pki["good"])
    ca = {"untrusted_ca": pki["other_ca"], "system_store": None}.get(case, pki["ca"])
    expected = {
        "untrusted_ca": r"unable to get local issuer certificate",
        "system_store": r"unable to get local issuer certificate",
        "wrong_host": r"hostname mismatch",
        "expired": r"certificate has expired",
    }[case]
    server = peers.NtsChronyServer(tmp_path / case, *cert)
    with server.start():
        rc, result, out = nts_query(server, "localhost", ca=ca)
    assert rc == 1, out.stdout
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    assert r["error"].startswith("NTS-KE failed: certificate: "), r["error"]
    assert re.search(expected, r["error"]), r["error"]
    assert r["authenticated"] == "nts" and r["nts_ke_seconds"] is None


def test_nts_ke_nothing_listening(nts_chrony, pki):
    rc, result, _ = peers.query_json(
        [f"localhost:{nts_chrony.port}"], "--nts", "--ntske-port",
        str(peers.free_tcp_port()), "--ca-file", str(pki["ca"]), *FAST, "--samples", "1")
    assert rc == 1
    assert result[0]["error"].startswith("NTS-KE failed: connect: "), result[0]["error"]


# ----------------------------------------------------------------------------------------
# A UDP proxy in front of chronyd's NTP port


def unique_id_of(request: bytes) -> bytes:
    """The body of the Unique Identifier extension field (0x0104) of an NTPv4 request."""
    pos = 48
    while pos + 4 <= len(request):
        ftype, flen = struct.unpack_from("!HH", request, pos)
        if flen < 4:
            break
        if ftype == 0x0104:
            return request[pos + 4:pos + flen]
        pos += flen
    raise AssertionError("request has no Unique Identifier")


def ntsn_kod(request: bytes) -> bytes:
    """An NTS NAK (RFC 8915 §5.7): KoD NTSN, stratum 0, origin = the request's transmit
    timestamp, with the request's Unique Identifier and no authenticator."""
    uid = unique_id_of(request)
    header = bytearray(48)
    header[0] = (0 << 6) | (4 << 3) | 4  # LI 0, v4, mode 4
    header[1] = 0  # stratum 0: kiss-o'-death
    header[12:16] = b"NTSN"
    header[24:32] = request[40:48]  # origin
    now = int((time.time() + peers.NTP_UNIX_OFFSET_S) * 2**32)
    header[32:40] = struct.pack("!Q", now)  # receive, transmit: non-zero
    header[40:48] = struct.pack("!Q", now)
    field = struct.pack("!HH", 0x0104, 4 + len(uid)) + uid
    return bytes(header) + field


class NtpProxy:
    """Forwards each request to 127.0.0.1:upstream and the reply back, through `mode`:
    pass, flip (one bit of the reply's last byte: the NTS authenticator or the MAC), strip /
    nak (the MAC of a symmetric-key reply removed / replaced by a crypto-NAK), replay
    (answer with the reply recorded in `recorded` instead of the fresh one), ntsn_once (the
    first request gets an NTS NAK instead of being forwarded)."""

    def __init__(self, upstream: int, mode: str):
        self.upstream = upstream
        self.mode = mode
        self.recorded: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join()
        self.sock.close()

    def _run(self):
        while not self.stopping:
            try:
                request, client = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            self.requests += 1
            self._answer(request, client)

    def _answer(self, request: bytes, client) -> None:
        if self.mode == "ntsn_once" and self.requests == 1:
            self.sock.sendto(ntsn_kod(request), client)
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(1.0)
            up.sendto(request, ("127.0.0.1", self.upstream))
            try:
                reply = up.recv(4096)
            except socket.timeout:
                return
        if self.mode == "flip":
            reply = reply[:-1] + bytes([reply[-1] ^ 0x01])
        elif self.mode == "strip":  # symmetric key replies: header only, MAC removed
            reply = reply[:48]
        elif self.mode == "nak":  # symmetric key replies: MAC replaced by a crypto-NAK
            reply = reply[:48] + bytes(4)
        elif self.mode == "replay":
            old = self.recorded[(self.requests - 1) % len(self.recorded)]
            self.recorded.append(reply)
            reply = old
        elif self.mode == "record":
            self.recorded.append(reply)
        self.sock.sendto(reply, client)


def proxied_query(nts_chrony, pki, proxy, *options):
    return peers.query_json(
        [f"localhost:{nts_chrony.port}"], "--nts", "--ntske-port", str(nts_chrony.nts_port),
        "--ca-file", str(pki["ca"]), "--nts-ntp-server", f"127.0.0.1:{proxy.port}",
        "--interval", "0.1", "--timeout", "1", *options)


def test_proxy_passthrough_works(nts_chrony, pki):
    """The proxy itself does not break NTS: the negative tests below fail for their reason."""
    with NtpProxy(nts_chrony.port, "pass") as proxy:
        rc, result, out = proxied_query(nts_chrony, pki, proxy, "--samples", "2")
    assert rc == 0, out.stdout
    assert result[0]["samples"] == 2 and proxy.requests == 2


def test_tampered_reply_is_auth_failed(nts_chrony, pki):
    with NtpProxy(nts_chrony.port, "flip") as proxy:
        rc, result, out = proxied_query(nts_chrony, pki, proxy, "--samples", "1")
    assert rc == 1, out.stdout
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    assert r["error"].startswith("authentication failed: nts_authentication_failed"), r["error"]
    assert "auth_failed 1" in r["error"]
    assert proxy.requests == 1


def test_replayed_reply_is_rejected(nts_chrony, pki):
    """Replies recorded in one run are replayed to the requests of the next: each fails the
    origin test (and could not pass the Unique Identifier test either)."""
    with NtpProxy(nts_chrony.port, "record") as proxy:
        rc, _, out = proxied_query(nts_chrony, pki, proxy, "--samples", "2")
        assert rc == 0, out.stdout
        recorded = list(proxy.recorded)
    assert len(recorded) == 2
    with NtpProxy(nts_chrony.port, "replay") as proxy:
        proxy.recorded = recorded
        rc, result, out = proxied_query(nts_chrony, pki, proxy, "--samples", "2")
    assert rc == 1, out.stdout
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    assert "bogus_origin 2" in r["error"], r["error"]


def test_ntsn_drops_cookies_and_redoes_nts_ke(nts_chrony, pki):
    with NtpProxy(nts_chrony.port, "ntsn_once") as proxy:
        out = peers.run_monitor([
            "query", "--nts", "--ntske-port", str(nts_chrony.nts_port), "--ca-file",
            str(pki["ca"]), "--nts-ntp-server", f"127.0.0.1:{proxy.port}", "--interval", "0.1",
            "--timeout", "1", "--samples", "3", f"localhost:{nts_chrony.port}"])
    assert out.returncode == 0, out.stdout + out.stderr
    # The NAK is reported, the jar was refilled by a second NTS-KE, and the two requests
    # after it were answered.
    assert re.search(r"kiss code\s+NTSN", out.stdout), out.stdout
    assert re.search(r"NTS-KE\s+.*\(2 exchanges\)", out.stdout), out.stdout
    assert re.search(r"samples\s+2 valid of 3 sent", out.stdout), out.stdout
    assert re.search(r"cookies\s+8", out.stdout), out.stdout
    assert proxy.requests == 3


def test_ntsn_with_a_foreign_unique_id_is_ignored(nts_chrony, pki):
    """An NTSN must echo our Unique Identifier (§5.7); one that does not is auth_failed and
    the cookies stay."""

    class ForeignNak(NtpProxy):
        def _answer(self, request: bytes, client) -> None:
            forged = bytearray(ntsn_kod(request))
            forged[-1] ^= 0xFF  # last byte of the Unique Identifier
            self.sock.sendto(bytes(forged), client)

    with ForeignNak(nts_chrony.port, "forged") as proxy:
        rc, result, out = proxied_query(nts_chrony, pki, proxy, "--samples", "1")
    assert rc == 1, out.stdout
    r = result[0]
    assert r["kod"] is None
    assert r["error"].startswith("authentication failed: unique_id_mismatch"), r["error"]
    assert r["cookies"] == 7  # one spent on the request, none lost to the forgery


# ----------------------------------------------------------------------------------------
# ntpsec


def test_nts_with_ntpsec(pki, nts_ntpsec):
    rc, result, out = peers.query_json(
        ["localhost"], "--nts", "--ca-file", str(pki["ca"]), *FAST, "--samples", "2",
        prefix=nts_ntpsec.netns.prefix())
    assert rc == 0, out.stdout + out.stderr
    r = result[0]
    assert r["ok"] and r["authenticated"] == "nts" and r["samples"] == 2
    assert r["stratum"] == 6 and abs(r["offset"]) < 0.001
    assert r["aead"] == "AEAD_AES_SIV_CMAC_256"
    assert r["cookies"] == 8
    assert r["certificate_expiry"] == peers.certificate_not_after(pki["good"][0])
    print(f"ntpsec NTS: offset {r['offset']:+.9f} s, NTS-KE {r['nts_ke_seconds'] * 1e3:.3f} ms")
