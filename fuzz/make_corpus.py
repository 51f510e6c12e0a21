#!/usr/bin/python3
"""Writes the seed corpus of fuzz_packet into fuzz/corpus/packet/.

The seeds cover each path of parse_packet and check_reply once: valid v3/v4 replies, extension
fields, MACs of each size class, a crypto-NAK, kiss codes, and malformed datagrams. Replies
echo COOKIE, the transmit cookie of the fuzz target's fixed request, so that mutations start
past the bogus-origin test. Re-run after changing it; the outputs are committed.
"""

import os
import struct

COOKIE = 0xE1F2A3B4C5D6E7F8  # must match kCookie in fuzz_packet.cpp
T2 = (0xED003780 << 32) | 0x10000000  # 2026-01-01T00:00:00.0625Z
T3 = T2 + 0x00418937  # 1 ms later
REFERENCE = (0xED003770 << 32)


def header(version=4, mode=4, leap=0, stratum=2, refid=bytes([192, 0, 2, 1]), origin=COOKIE,
           receive=T2, transmit=T3, root_delay=0x00000800, root_dispersion=0x00000400):
    first = (leap << 6) | (version << 3) | mode
    return struct.pack(">BBbbII4sQQQQ", first, stratum, 6, -20, root_delay, root_dispersion,
                       refid, REFERENCE, origin, receive, transmit)


def ef(ef_type, body_size):
    """An RFC 7822 extension field with a recognisable body, padded to a multiple of 4."""
    length = max(16, (4 + body_size + 3) // 4 * 4)
    body = bytes((i * 7 + ef_type) & 0xFF for i in range(length - 4))
    return struct.pack(">HH", ef_type, length) + body


def mac(key_id, digest_size):
    return struct.pack(">I", key_id) + bytes((0xA5 ^ i) & 0xFF for i in range(digest_size))


def kod(code):
    return header(leap=3, stratum=0, refid=code.encode("ascii"), receive=T2, transmit=T2)


SEEDS = {
    "v4_reply": header(),
    "v3_reply": header(version=3),
    "v4_stratum1_gps": header(stratum=1, refid=b"GPS\0"),
    # NTS-shaped reply: Unique Identifier, Cookie, Authenticator and Encrypted EFs.
    "v4_nts_efs": header() + ef(0x0104, 32) + ef(0x0204, 100) + ef(0x0404, 36),
    "v4_mac_md5": header() + mac(1, 16),
    "v4_mac_sha1": header() + mac(2, 20),
    "v4_ef_mac_sha256": header() + ef(0x0104, 24) + mac(3, 32),
    "v4_crypto_nak": header() + bytes(4),
    "v3_mac_md5": header(version=3) + mac(1, 16),
    "v3_mac_sha512": header(version=3) + mac(4, 64),
    "kod_rate": kod("RATE"),
    "kod_deny": kod("DENY"),
    "kod_ntsn": kod("NTSN"),
    "kod_init": kod("INIT"),
    "unsync_stratum16": header(leap=3, stratum=16, refid=b"INIT"),
    "client_request": header(mode=3, stratum=0, refid=bytes(4), origin=0, receive=0,
                             transmit=COOKIE),
    "truncated_40": header()[:40],
    "odd_length_50": header() + b"\x00\x00",
    "bad_version_5": header(version=5),
    "v4_bad_ef_length": header() + struct.pack(">HH", 0x0104, 18) + bytes(80),
}


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packet")
    os.makedirs(out_dir, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out_dir}")


if __name__ == "__main__":
    main()
