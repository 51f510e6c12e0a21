"""Symmetric-key authentication (RFC 5905 §7.3, RFC 8573) against chronyd and ntpsec's ntpd.

Each server gets a key file with one key per MAC type it supports; the client gets the same
keys (in the server's format, read with format auto-detection, or the other daemon's format)
and must get authenticated replies. A client key with the right id but a different secret
gets no answer at all (both daemons drop such requests); replies whose MAC a proxy altered,
removed or replaced by a crypto-NAK are auth_failed with the reason."""

from __future__ import annotations

import pytest

import peers
from peers import CHRONY_KEYS, chrony_keys_text
from test_nts import NtpProxy

FAST = ("--samples", "2", "--interval", "0.1", "--timeout", "1")


def key_query(target, key_file, key_id, *options, prefix=()):
    return peers.query_json([target], "--key-file", str(key_file), "--key-id", str(key_id),
                            *FAST, *options, prefix=prefix)


@pytest.mark.parametrize("key_id", sorted(CHRONY_KEYS))
def test_chrony_keys(key_chrony, key_id):
    rc, result, out = key_query(f"127.0.0.1:{key_chrony.port}", key_chrony.keys_path, key_id)
    assert rc == 0, out.stdout + out.stderr
    r = result[0]
    assert r["ok"] and r["authenticated"] == "key" and r["samples"] == 2
    assert abs(r["offset"]) < 0.001
    assert r["nts_ke_seconds"] is None and r["cookies"] is None and r["aead"] is None


@pytest.mark.parametrize("key_id", [1, 6])
def test_chrony_keys_ntpv3(key_chrony, key_id):
    """v3 requests carry the full digest / CMAC; chrony answers in kind."""
    rc, result, out = key_query(f"127.0.0.1:{key_chrony.port}", key_chrony.keys_path, key_id,
                                "--ntp-version", "3")
    assert rc == 0, out.stdout + out.stderr
    assert result[0]["version"] == 3 and result[0]["samples"] == 2


@pytest.mark.parametrize("key_id", [1, 3, 5])
def test_chrony_wrong_key_gets_no_valid_reply(key_chrony, tmp_path, key_id):
    """chronyd drops a request whose MAC does not verify (and one with a key id it does not
    know) without answering, so a wrong key ends as exit 1 with no sample."""
    kind, _ = CHRONY_KEYS[key_id]
    wrong = {key_id: (kind, "HEX:" + "ee" * (16 if kind == "AES128" else 20))}
    path = tmp_path / "wrong.keys"
    path.write_text(chrony_keys_text(wrong))
    rc, result, out = key_query(f"127.0.0.1:{key_chrony.port}", path, key_id,
                                "--key-format", "chrony")
    assert rc == 1, out.stdout
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    assert r["error"] == "no reply (2 requests timed out)", r["error"]


@pytest.mark.parametrize("mode,detail", [("flip", "bad_mac"), ("strip", "mac_missing"),
                                         ("nak", "crypto-NAK")])
def test_bad_reply_mac_is_auth_failed(key_chrony, mode, detail):
    """chronyd's real authenticated reply, altered by a proxy: a flipped MAC bit, no MAC, or
    a crypto-NAK in place of the MAC. Each reply is auth_failed; nothing is accepted."""
    with NtpProxy(key_chrony.port, mode) as proxy:
        rc, result, out = key_query(f"127.0.0.1:{proxy.port}", key_chrony.keys_path, 3)
    assert rc == 1, out.stdout
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    assert r["error"].startswith(f"authentication failed: {detail}; "), r["error"]
    assert "auth_failed 2" in r["error"], r["error"]
    assert proxy.requests == 2


def test_text_output_names_the_key_auth(key_chrony):
    out = peers.run_monitor(["query", "--key-file", str(key_chrony.keys_path), "--key-id", "2",
                             *FAST, f"127.0.0.1:{key_chrony.port}"])
    assert out.returncode == 0, out.stderr
    assert "symmetric key (2 authenticated samples)" in out.stdout, out.stdout


def test_missing_key_id_is_a_usage_error(key_chrony):
    out = peers.run_monitor(["query", "--key-file", str(key_chrony.keys_path), "--key-id", "9",
                             f"127.0.0.1:{key_chrony.port}"])
    assert out.returncode == 2
    assert "key 9 not in" in out.stderr


# ----------------------------------------------------------------------------------------
# ntpsec: ntp.keys, `keys FILE`, `trustedkey N`

NTPSEC_KEYS = {
    1: ("md5", "ntpmon-md5-key"),                               # ASCII (<= 20 chars)
    2: ("sha1", "c0ffee" * 5 + "c0ffee0011"),                    # 20 bytes as hex
    3: ("aes-128", "00112233445566778899aabbccddeeff"),         # AES-128-CMAC
    4: ("sha256", "7e" * 32),
}


@pytest.fixture(scope="module")
def key_ntpsec(tmp_path_factory, monitor):
    if not peers.NTPD.exists():
        pytest.skip(f"{peers.NTPD} missing")
    workdir = tmp_path_factory.mktemp("ntpsec-keys")
    keys = workdir / "ntp.keys"
    keys.write_text("".join(f"{i} {t} {k}\n" for i, (t, k) in NTPSEC_KEYS.items()))
    keys.chmod(0o600)
    lines = [f"keys {keys}", "trustedkey " + " ".join(str(i) for i in NTPSEC_KEYS)]
    with peers.ntpsec_in_namespace(workdir, lines) as ntpd:
        ntpd.keys_path = keys
        yield ntpd


@pytest.mark.parametrize("key_id", sorted(NTPSEC_KEYS))
def test_ntpsec_keys(key_ntpsec, key_id):
    rc, result, out = key_query("127.0.0.1", key_ntpsec.keys_path, key_id,
                                prefix=key_ntpsec.netns.prefix())
    assert rc == 0, out.stdout + out.stderr
    r = result[0]
    assert r["ok"] and r["authenticated"] == "key" and r["samples"] == 2
    assert r["stratum"] == 6 and abs(r["offset"]) < 0.001


def test_ntpsec_wrong_key_gets_no_valid_reply(key_ntpsec, tmp_path):
    path = tmp_path / "wrong.keys"
    path.write_text("1 md5 not-the-key\n")
    rc, result, out = key_query("127.0.0.1", path, 1, "--key-format", "ntpsec",
                                prefix=key_ntpsec.netns.prefix())
    assert rc == 1, out.stdout
    r = result[0]
    assert not r["ok"] and r["samples"] == 0
    # ntpd 1.2.2 drops a request whose MAC fails instead of sending a crypto-NAK.
    assert r["error"] == "no reply (2 requests timed out)", r["error"]
