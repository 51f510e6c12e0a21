#include "proto/nts_ef.hpp"

#include <gtest/gtest.h>

#include <array>

#include "hex.hpp"
#include "proto/aes_siv.hpp"

namespace ntpmon::proto {
namespace {

using test::to_hex;

std::vector<std::uint8_t> filled(std::size_t n, std::uint8_t start) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(start + i);
  return v;
}

std::uint16_t u16_at(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((unsigned{b[at]} << 8) | unsigned{b[at + 1]});
}

struct Fixture {
  std::array<std::uint8_t, kHeaderSize> header{};
  std::vector<std::uint8_t> uid = filled(32, 0xA0);
  std::vector<std::uint8_t> cookie = filled(100, 0x10);
  std::vector<std::uint8_t> c2s = filled(32, 0x01);
  std::vector<std::uint8_t> s2c = filled(32, 0x81);
  std::vector<std::uint8_t> nonce = filled(16, 0x50);

  Fixture() { encode_client_request(4, 6, NtpTimestamp::from_raw(0x1122334455667788ULL), header); }
  NtsRequest request(std::size_t placeholders) const {
    return NtsRequest{header, uid, cookie, placeholders, c2s, nonce};
  }
};

// The server side, written here independently of nts_ef.cpp: find the fields, check the
// request's authenticator with the C2S key, and answer with new cookies sealed under S2C.
struct ServerView {
  std::vector<std::uint8_t> uid;
  std::vector<std::uint8_t> cookie;
  std::size_t placeholders = 0;
  bool authentic = false;
};

ServerView server_read(std::span<const std::uint8_t> datagram, ByteView c2s) {
  ServerView out;
  auto view = parse_packet(datagram);
  EXPECT_TRUE(view.ok());
  if (!view.ok()) return out;
  EXPECT_TRUE(view->mac.empty());
  ExtensionFieldReader reader(view->extensions);
  ExtensionField ef;
  std::vector<ExtensionField> fields;
  while (reader.next(ef)) fields.push_back(ef);
  EXPECT_FALSE(reader.failed());
  for (const ExtensionField& f : fields) {
    if (f.type == kEfUniqueIdentifier) out.uid.assign(f.value.begin(), f.value.end());
    if (f.type == kEfNtsCookie) out.cookie.assign(f.value.begin(), f.value.end());
    if (f.type == kEfNtsCookiePlaceholder) {
      ++out.placeholders;
      EXPECT_EQ(f.raw.size(), 4 + out.cookie.size());
    }
  }
  const ExtensionField& auth = fields.back();
  EXPECT_EQ(auth.type, kEfNtsAuthenticator);
  const std::size_t nonce_len = u16_at(auth.value, 0);
  const std::size_t ct_len = u16_at(auth.value, 2);
  const ByteView nonce = auth.value.subspan(4, nonce_len);
  const ByteView ct = auth.value.subspan(4 + ((nonce_len + 3) & ~std::size_t{3}), ct_len);
  const ByteView ad[] = {
      datagram.first(static_cast<std::size_t>(auth.raw.data() - datagram.data()))};
  auto plain = aead_decrypt(c2s, nonce, ad, ct);
  out.authentic = plain.ok() && plain->empty();
  return out;
}

std::vector<std::uint8_t> server_reply(const std::vector<std::uint8_t>& uid,
                                       const std::vector<std::vector<std::uint8_t>>& cookies,
                                       ByteView s2c, std::uint8_t stratum = 2,
                                       std::array<std::uint8_t, 4> refid = {127, 0, 0, 1}) {
  Header h;
  h.version = 4;
  h.mode = Mode::kServer;
  h.stratum = stratum;
  h.refid = refid;
  h.origin_ts = NtpTimestamp::from_raw(0x1122334455667788ULL);
  std::vector<std::uint8_t> out(1024, 0);
  encode_header(h, std::span<std::uint8_t, kHeaderSize>(out.data(), kHeaderSize));
  std::size_t pos = kHeaderSize;
  pos += encode_extension(kEfUniqueIdentifier, uid, std::span(out).subspan(pos));
  std::vector<std::uint8_t> plaintext(512, 0);
  std::size_t plain_len = 0;
  for (const auto& c : cookies) {
    plain_len += encode_extension(kEfNtsCookie, c, std::span(plaintext).subspan(plain_len));
  }
  plaintext.resize(plain_len);
  const std::vector<std::uint8_t> nonce = filled(16, 0xC0);
  const ByteView ad[] = {std::span(out).first(pos)};
  auto sealed = aead_encrypt(s2c, nonce, ad, plaintext);
  EXPECT_TRUE(sealed.ok());
  std::vector<std::uint8_t> body = {0, 16, static_cast<std::uint8_t>(sealed->size() >> 8),
                                    static_cast<std::uint8_t>(sealed->size())};
  body.insert(body.end(), nonce.begin(), nonce.end());
  body.insert(body.end(), sealed->begin(), sealed->end());
  pos += encode_extension(kEfNtsAuthenticator, body, std::span(out).subspan(pos), 28);
  out.resize(pos);
  return out;
}

TEST(NtsEf, RequestLayout) {
  Fixture f;
  auto req = build_nts_request(f.request(2));
  ASSERT_TRUE(req.ok()) << to_string(req.error());
  // 48 header + 36 UID + 3 x 104 (cookie, two placeholders) + 40 authenticator.
  ASSERT_EQ(req->size(), 48U + 36U + 3U * 104U + 40U);
  const std::span<const std::uint8_t> b(*req);
  EXPECT_EQ(to_hex(b.first(48)), to_hex(f.header));
  EXPECT_EQ(u16_at(b, 48), 0x0104);
  EXPECT_EQ(u16_at(b, 50), 36);
  EXPECT_EQ(to_hex(b.subspan(52, 32)), to_hex(f.uid));
  EXPECT_EQ(u16_at(b, 84), 0x0204);
  EXPECT_EQ(u16_at(b, 86), 104);
  EXPECT_EQ(to_hex(b.subspan(88, 100)), to_hex(f.cookie));
  for (std::size_t at : {std::size_t{188}, std::size_t{292}}) {
    EXPECT_EQ(u16_at(b, at), 0x0304);
    EXPECT_EQ(u16_at(b, at + 2), 104);
    for (std::size_t i = at + 4; i < at + 104; ++i) ASSERT_EQ(b[i], 0) << i;
  }
  const std::size_t auth = 396;
  EXPECT_EQ(u16_at(b, auth), 0x0404);
  EXPECT_EQ(u16_at(b, auth + 2), 40);
  EXPECT_EQ(u16_at(b, auth + 4), 16);  // nonce length
  EXPECT_EQ(u16_at(b, auth + 6), 16);  // ciphertext length: the tag of an empty plaintext
  EXPECT_EQ(to_hex(b.subspan(auth + 8, 16)), to_hex(f.nonce));
  // The tag is S2V(AD = bytes 0..395, nonce, empty plaintext) under the C2S key.
  const ByteView ad[] = {b.first(auth)};
  auto expected = aead_encrypt(f.c2s, f.nonce, ad, {});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(to_hex(b.subspan(auth + 24, 16)), to_hex(*expected));
}

TEST(NtsEf, RequestArgumentChecks) {
  Fixture f;
  EXPECT_EQ(build_nts_request(f.request(kNtsMaxPlaceholders + 1)).error(), NtsError::kBadArgument);
  auto r = f.request(0);
  const std::vector<std::uint8_t> short_uid(31, 1);
  r.unique_id = short_uid;
  EXPECT_EQ(build_nts_request(r).error(), NtsError::kBadArgument);
  r = f.request(0);
  r.cookie = {};
  EXPECT_EQ(build_nts_request(r).error(), NtsError::kBadArgument);
  r = f.request(0);
  r.nonce = std::span(f.nonce).first(12);
  EXPECT_EQ(build_nts_request(r).error(), NtsError::kBadArgument);
  r = f.request(0);
  r.c2s_key = std::span(f.c2s).first(16);
  EXPECT_EQ(build_nts_request(r).error(), NtsError::kBadArgument);
  // 7 placeholders of a 200-byte cookie: 48 + 36 + 8 * 204 + 40 > 1472.
  Fixture big;
  big.cookie = filled(200, 0);
  EXPECT_EQ(build_nts_request(big.request(7)).error(), NtsError::kTooLarge);
}

TEST(NtsEf, ServerAcceptsRequestAndClientAcceptsReply) {
  Fixture f;
  auto req = build_nts_request(f.request(3));
  ASSERT_TRUE(req.ok());
  const ServerView seen = server_read(*req, f.c2s);
  EXPECT_TRUE(seen.authentic);
  EXPECT_EQ(seen.uid, f.uid);
  EXPECT_EQ(seen.cookie, f.cookie);
  EXPECT_EQ(seen.placeholders, 3U);

  // The server returns one fresh cookie per cookie field it received.
  const std::vector<std::vector<std::uint8_t>> fresh = {filled(100, 0x31), filled(100, 0x32),
                                                        filled(100, 0x33), filled(100, 0x34)};
  const auto reply = server_reply(seen.uid, fresh, f.s2c);
  auto view = parse_packet(reply);
  ASSERT_TRUE(view.ok());
  auto verified = verify_nts_reply(*view, f.uid, f.s2c);
  ASSERT_TRUE(verified.ok()) << to_string(verified.error());
  EXPECT_EQ(verified->cookies, fresh);
}

TEST(NtsEf, RequestWithWrongKeyFailsAtServer) {
  Fixture f;
  auto req = build_nts_request(f.request(0));
  ASSERT_TRUE(req.ok());
  EXPECT_FALSE(server_read(*req, f.s2c).authentic);
  (*req)[100] ^= 0x04;  // inside the cookie: part of the AD
  EXPECT_FALSE(server_read(*req, f.c2s).authentic);
}

Result<NtsReply, NtsError> verify_bytes(std::span<const std::uint8_t> datagram, const Fixture& f) {
  auto view = parse_packet(datagram);
  if (!view) return Err{NtsError::kMalformedExtension};
  return verify_nts_reply(*view, f.uid, f.s2c);
}

TEST(NtsEf, EveryFlippedBitInTheReplyIsRejected) {
  Fixture f;
  const auto reply = server_reply(f.uid, {filled(40, 7)}, f.s2c);
  ASSERT_TRUE(verify_bytes(reply, f).ok());
  for (std::size_t bit = 0; bit < reply.size() * 8; ++bit) {
    auto tampered = reply;
    tampered[bit / 8] = static_cast<std::uint8_t>(tampered[bit / 8] ^ (1U << (bit % 8)));
    EXPECT_FALSE(verify_bytes(tampered, f).ok()) << "bit " << bit;
  }
  // A flip in the header or in the sealed bytes is an authentication failure specifically.
  auto header_flip = reply;
  header_flip[47] ^= 0x01;
  EXPECT_EQ(verify_bytes(header_flip, f).error(), NtsError::kAuthenticationFailed);
  auto tag_flip = reply;
  tag_flip[reply.size() - 1] ^= 0x80;
  EXPECT_EQ(verify_bytes(tag_flip, f).error(), NtsError::kAuthenticationFailed);
}

TEST(NtsEf, WrongUniqueIdOrKeyIsRejected) {
  Fixture f;
  const auto other_uid = filled(32, 0x00);
  const auto reply = server_reply(other_uid, {filled(40, 7)}, f.s2c);
  EXPECT_EQ(verify_bytes(reply, f).error(), NtsError::kUniqueIdMismatch);
  const auto wrong_key = server_reply(f.uid, {filled(40, 7)}, f.c2s);
  EXPECT_EQ(verify_bytes(wrong_key, f).error(), NtsError::kAuthenticationFailed);
}

TEST(NtsEf, NothingMayFollowTheAuthenticator) {
  Fixture f;
  auto reply = server_reply(f.uid, {filled(40, 7)}, f.s2c);
  // An unauthenticated extension field appended by someone on the path.
  auto with_ef = reply;
  std::vector<std::uint8_t> ef(64, 0);
  const std::size_t ef_len = encode_extension(kEfNtsCookie, filled(28, 1), ef);
  ASSERT_EQ(ef_len, 32U);
  with_ef.insert(with_ef.end(), ef.begin(), ef.begin() + static_cast<std::ptrdiff_t>(ef_len));
  EXPECT_EQ(verify_bytes(with_ef, f).error(), NtsError::kFieldAfterAuthenticator);
  // A legacy MAC (key id + 16 bytes) after the authenticator.
  auto with_mac = reply;
  with_mac.resize(with_mac.size() + 20, 0xEE);
  EXPECT_EQ(verify_bytes(with_mac, f).error(), NtsError::kFieldAfterAuthenticator);
}

TEST(NtsEf, MissingFieldsAndNak) {
  Fixture f;
  // Header + UID only: no authenticator.
  auto reply = server_reply(f.uid, {}, f.s2c);
  const std::size_t uid_end = kHeaderSize + 36;
  std::vector<std::uint8_t> no_auth(reply.begin(), reply.begin() + uid_end);
  EXPECT_EQ(verify_bytes(no_auth, f).error(), NtsError::kMissingAuthenticator);

  // The same shape as a kiss-o'-death NTSN: an NTS NAK (RFC 8915 §5.7).
  auto nak = server_reply(f.uid, {}, f.s2c, 0, {'N', 'T', 'S', 'N'});
  nak.resize(uid_end);
  EXPECT_EQ(verify_bytes(nak, f).error(), NtsError::kNtsNak);
  // A NAK for somebody else's request is not ours to act on.
  auto foreign_nak = server_reply(filled(32, 0), {}, f.s2c, 0, {'N', 'T', 'S', 'N'});
  foreign_nak.resize(uid_end);
  EXPECT_EQ(verify_bytes(foreign_nak, f).error(), NtsError::kUniqueIdMismatch);

  // No extension fields at all.
  std::vector<std::uint8_t> bare(reply.begin(), reply.begin() + kHeaderSize);
  EXPECT_EQ(verify_bytes(bare, f).error(), NtsError::kMissingUniqueId);
}

TEST(NtsEf, ReplyWithoutCookiesIsStillAuthentic) {
  Fixture f;
  const auto reply = server_reply(f.uid, {}, f.s2c);
  auto verified = verify_bytes(reply, f);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->cookies.empty());
  EXPECT_EQ(to_string(NtsError::kNtsNak), "nts_nak");
}

}  // namespace
}  // namespace ntpmon::proto
