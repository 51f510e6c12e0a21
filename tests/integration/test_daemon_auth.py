"""Authenticated time in the monitoring daemon: NTS (RFC 8915) and symmetric keys, against
chronyd on loopback.

The daemon runs with a one-second poll against chronyd as an NTS server (a throw-away CA and
certificates made with openssl, conftest.py's pki) and chronyd with a key file. The tests read
/metrics: authentication works and is shown (authenticated 1, cookies, NTS-KE duration,
certificate expiry), NTS-KE runs once and the cookies carry the daemon across polls, an NTS
offset is exact against a chronyd 1.5 s ahead, failures raise the authentication alert and
count NTS-KE failures by reason without touching the other servers, and a certificate about to
expire raises the certificate alert.
"""

from __future__ import annotations

import datetime
import time

import pytest

import peers
from helpers import Daemon, metric, wait_for
from test_nts import NtpProxy

POLL = "poll: {min: 1, max: 1}\n"


def not_after_unix_s(cert) -> int:
    text = peers.certificate_not_after(cert)  # RFC 3339 UTC, "2025-01-31T12:00:00Z"
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def nts_entry(name: str, server, ca) -> str:
    # 127.0.0.1, not localhost: localhost is also ::1, where this chronyd does not listen. The
    # certificate carries the IP SAN 127.0.0.1.
    return (f"  - {{name: {name}, host: 127.0.0.1, port: {server.port}, nts: true, "
            f"ntske_port: {server.nts_port}, ca_file: '{ca}'}}\n")


def test_nts_and_key_servers_authenticated_and_cookies_kept(daemon, nts_chrony, key_chrony,
                                                           pki):
    config = ("servers:\n" + nts_entry("nts", nts_chrony, pki["ca"]) +
              f"  - {{name: keyed, host: 127.0.0.1, port: {key_chrony.port}, key: 3}}\n" +
              f"key_file: '{key_chrony.keys_path}'\n" + POLL +
              # The test certificate is valid for 10 days: below the default 14-day warning.
              "alerts: {certificate_expiry_days: 7}\n")
    d = daemon(config)

    def both_authenticated():
        m = d.metrics()
        ok = all(metric(m, "ntp_monitor_server_authenticated", server=s) == 1
                 for s in ("nts", "keyed"))
        return m if ok else None

    m = wait_for("both servers authenticated", both_authenticated, 15)
    assert metric(m, "ntp_monitor_nts_cookies", server="nts") == 8
    duration = metric(m, "ntp_monitor_nts_ke_duration_seconds", server="nts")
    assert 0 < duration < 2.0
    assert metric(m, "ntp_monitor_nts_certificate_expiry_timestamp_seconds", server="nts") == \
        not_after_unix_s(pki["good"][0])
    assert metric(m, "ntp_monitor_server_info", server="nts", authenticated="nts") == 1
    assert metric(m, "ntp_monitor_server_info", server="keyed", authenticated="key") == 1
    # The key server has no NTS series.
    assert metric(m, "ntp_monitor_nts_cookies", server="keyed") is None
    for server in ("nts", "keyed"):
        assert abs(metric(m, "ntp_monitor_server_offset_seconds", server=server)) < 0.001
        # Absent (standard mode: none so far) or 0.
        assert metric(m, "ntp_monitor_rejected_total", server=server,
                      reason="auth_failed") in (None, 0)

    # Ten more polls: the cookies carry the daemon, NTS-KE is not repeated.
    start = metric(m, "ntp_monitor_requests_total", server="nts")
    m = wait_for("ten more NTS polls", lambda: (lambda m: m if metric(
        m, "ntp_monitor_requests_total", server="nts") >= start + 10 else None)(d.metrics()), 20)
    assert metric(m, "ntp_monitor_nts_ke_exchanges_total", server="nts") == 1
    assert len(d.log_events("nts_ke_done")) == 1
    assert metric(m, "ntp_monitor_nts_cookies", server="nts") == 8
    assert metric(m, "ntp_monitor_responses_total", server="nts") >= start + 9
    assert metric(m, "ntp_monitor_server_authenticated", server="nts") == 1
    for name in ("NtpAuthenticationFailing", "NtsCertificateExpiringSoon"):
        assert metric(m, "ntp_monitor_alert_active", server="nts", alert=name) in (None, 0)
    for reason in ("certificate", "connect", "timeout"):
        assert metric(m, "ntp_monitor_nts_ke_failures_total", server="nts",
                      reason=reason) in (None, 0)
    rc, took_s = d.terminate()
    assert rc == 0 and took_s < 2.0


def test_nts_offset_of_faketime_chrony(daemon, tmp_path, pki):
    """chronyd 1.5 s ahead under libfaketime: the daemon's NTS-authenticated offset is 1.5 s
    within 1 ms."""
    if peers.faketime_library() is None:
        pytest.skip("libfaketime not installed")
    server = peers.NtsChronyServer(tmp_path / "fake", *pki["good"], fake_offset_s=1.5)
    with server.start():
        d = daemon("servers:\n" + nts_entry("fast", server, pki["ca"]) + POLL)

        def measured():
            m = d.metrics()
            return m if (metric(m, "ntp_monitor_responses_total", server="fast") or 0) >= 4 \
                else None

        m = wait_for("four authenticated replies", measured, 20)
        offset = metric(m, "ntp_monitor_server_offset_seconds", server="fast")
        assert metric(m, "ntp_monitor_server_authenticated", server="fast") == 1
        assert abs(offset - 1.5) < 0.001, offset
        print(f"daemon NTS offset against faketime chronyd: {offset:+.9f} s")
        d.terminate()


def test_untrusted_ca_and_bad_macs_alert_others_unaffected(daemon, nts_chrony, key_chrony,
                                                          pki):
    """NTS-KE with a CA that did not sign the server's certificate, and a key server whose
    replies reach the daemon with a flipped MAC bit: both raise the authentication alert, the
    NTS-KE failures are counted by reason and backed off, and a plain server on the same
    chronyd is polled and answered as if nothing happened."""
    with NtpProxy(key_chrony.port, "flip") as proxy:
        config = ("servers:\n" + nts_entry("untrusted", nts_chrony, pki["other_ca"]) +
                  f"  - {{name: badmac, host: 127.0.0.1, port: {proxy.port}, key: 1}}\n"
                  f"  - {{name: plain, host: 127.0.0.1, port: {key_chrony.port}}}\n"
                  f"key_file: '{key_chrony.keys_path}'\n" + POLL + "alerts: {hold: 2}\n")
        d = daemon(config)

        def both_alerts():
            m = d.metrics()
            ok = all(metric(m, "ntp_monitor_alert_active", server=s,
                            alert="NtpAuthenticationFailing") == 1
                     for s in ("untrusted", "badmac"))
            return m if ok else None

        m = wait_for("authentication alerts", both_alerts, 20)
        failures = metric(m, "ntp_monitor_nts_ke_failures_total", server="untrusted",
                          reason="certificate")
        assert failures >= 2
        assert metric(m, "ntp_monitor_nts_ke_exchanges_total", server="untrusted") == 0
        assert metric(m, "ntp_monitor_server_authenticated", server="untrusted") == 0
        assert metric(m, "ntp_monitor_requests_total", server="untrusted") == 0
        assert metric(m, "ntp_monitor_rejected_total", server="badmac",
                      reason="auth_failed") >= 2
        assert metric(m, "ntp_monitor_server_authenticated", server="badmac") == 0
        assert metric(m, "ntp_monitor_responses_total", server="badmac") == 0
        assert metric(m, "ntp_monitor_nts_cookies", server="untrusted") == 0
        rows = d.servers()
        assert rows["untrusted"]["error"].startswith(
            "NTS-KE failed: certificate: unable to get local issuer certificate"), rows
        assert d.log_events("nts_ke_failed")

        # Failures keep being counted (backed off: 1, 2, 4 s ...), the daemon keeps running,
        # and the plain server is untouched.
        wait_for("more NTS-KE failures", lambda: metric(
            d.metrics(), "ntp_monitor_nts_ke_failures_total", server="untrusted",
            reason="certificate") > failures, 15)
        m = d.metrics()
        assert d.proc.poll() is None
        assert metric(m, "ntp_monitor_server_up", server="plain") == 1
        assert metric(m, "ntp_monitor_server_authenticated", server="plain") is None
        assert (metric(m, "ntp_monitor_responses_total", server="plain") or 0) >= 4
        for name in ("NtpAuthenticationFailing", "NtpServerUnreachable",
                     "NtsCertificateExpiringSoon"):
            assert metric(m, "ntp_monitor_alert_active", server="plain",
                          alert=name) in (None, 0)
        rc, _ = d.terminate()
        assert rc == 0


def test_certificate_expiring_in_five_days_alerts(daemon, tmp_path, pki):
    cert = peers.make_server_cert(tmp_path, (pki["ca"], pki["ca"].with_suffix(".key")),
                                  "short", days=5)
    server = peers.NtsChronyServer(tmp_path / "short", *cert)
    with server.start():
        d = daemon("servers:\n" + nts_entry("short", server, pki["ca"]) + POLL +
                   "alerts: {certificate_expiry_days: 14}\n")
        m = wait_for("certificate alert", lambda: (lambda m: m if metric(
            m, "ntp_monitor_alert_active", server="short", alert="NtsCertificateExpiringSoon") == 1
            else None)(d.metrics()), 15)
        expiry = metric(m, "ntp_monitor_nts_certificate_expiry_timestamp_seconds", server="short")
        assert expiry == not_after_unix_s(cert[0])
        assert 4.9 * 86400 < expiry - time.time() <= 5 * 86400
        # Authentication itself works: the certificate is valid, just short-lived.
        wait_for("authenticated", lambda: metric(
            d.metrics(), "ntp_monitor_server_authenticated", server="short") == 1, 10)
        fired = [line for line in d.log_events("alert_firing")
                 if "alert=NtsCertificateExpiringSoon" in line]
        assert len(fired) == 1, d.log()
        assert "NTS-KE certificate expires in 4.9 days (warning below 14 days)" in fired[0], fired
        d.terminate()


# ----------------------------------------------------------------------------------------
# ntpsec: port 123 is fixed in ntpsec 1.2.2, so it runs in a network namespace of its own; the
# daemon runs in the same namespace and its HTTP endpoints are read from inside it too.


class NamespacedDaemon(Daemon):
    """A Daemon started inside `ns`; /metrics and the API are fetched through nsenter."""

    def __init__(self, workdir, config_text, ns):
        super().__init__(workdir, config_text)
        self.ns = ns

    def argv(self) -> list[str]:
        return self.ns.prefix() + super().argv()

    def ready(self) -> bool:
        try:
            self.get(self.metrics_port, "/readyz")
            return True
        except AssertionError:
            return False

    def get(self, port: int, path: str) -> bytes:
        code = ("import sys, urllib.request; "
                "sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=5).read())")
        out = peers.subprocess.run(self.ns.prefix() + ["python3", "-c", code,
                                                       f"http://127.0.0.1:{port}{path}"],
                                   capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return out.stdout


def test_nts_with_ntpsec_in_a_namespace(tmp_path, pki, nts_ntpsec):
    d = NamespacedDaemon(tmp_path / "daemon",
                         "servers:\n  - {name: ntpsec, host: 127.0.0.1, nts: true, "
                         f"ca_file: '{pki['ca']}'}}\n" + POLL +
                         "alerts: {certificate_expiry_days: 7}\n", nts_ntpsec.netns)
    try:
        d.start()
        m = wait_for("ntpsec authenticated", lambda: (lambda m: m if (metric(
            m, "ntp_monitor_responses_total", server="ntpsec") or 0) >= 3 else None)(
                d.metrics()), 30)
        assert metric(m, "ntp_monitor_server_authenticated", server="ntpsec") == 1
        assert metric(m, "ntp_monitor_server_stratum", server="ntpsec") == 6
        assert abs(metric(m, "ntp_monitor_server_offset_seconds", server="ntpsec")) < 0.001
        assert metric(m, "ntp_monitor_nts_cookies", server="ntpsec") == 8
        assert metric(m, "ntp_monitor_nts_ke_exchanges_total", server="ntpsec") == 1
        assert metric(m, "ntp_monitor_nts_certificate_expiry_timestamp_seconds",
                      server="ntpsec") == not_after_unix_s(pki["good"][0])
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.stop()
