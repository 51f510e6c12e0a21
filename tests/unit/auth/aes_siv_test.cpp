#include "proto/aes_siv.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>
#include <optional>

#include "hex.hpp"

namespace ntpmon::proto {
namespace {

using test::from_hex;
using test::to_hex;

// RFC 5297 Appendix A.1: deterministic authenticated encryption (one AD string, no nonce).
const std::vector<std::uint8_t> kA1Key =
    from_hex("fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff");
const std::vector<std::uint8_t> kA1Ad =
    from_hex("10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627");
const std::vector<std::uint8_t> kA1Plaintext = from_hex("11223344 55667788 99aabbcc ddee");
const char* const kA1Output =
    "85632d07c6e8f37f950acd320a2ecc93"  // V (the tag)
    "40c02b9690c4dc04daef7f6afe5c";     // C

// RFC 5297 Appendix A.2: nonce-based authenticated encryption (two AD strings, then nonce).
const std::vector<std::uint8_t> kA2Key =
    from_hex("7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f");
const std::vector<std::uint8_t> kA2Ad1 = from_hex(
    "00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100");
const std::vector<std::uint8_t> kA2Ad2 = from_hex("10203040 50607080 90a0");
const std::vector<std::uint8_t> kA2Nonce = from_hex("09f91102 9d74e35b d84156c5 635688c0");
const std::vector<std::uint8_t> kA2Plaintext = from_hex(
    "74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 74207573 696e6720 "
    "5349562d 414553");
const char* const kA2Output =
    "7bdb6e3b432667eb06f4d14bff2fbd0f"
    "cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0"
    "d";

TEST(AesSiv, Rfc5297A1DeterministicSeal) {
  const ByteView components[] = {kA1Ad};
  auto sealed = aes_siv_seal(kA1Key, components, kA1Plaintext);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(to_hex(*sealed), kA1Output);
}

TEST(AesSiv, Rfc5297A1DeterministicOpen) {
  const ByteView components[] = {kA1Ad};
  const auto sealed = from_hex(kA1Output);
  auto opened = aes_siv_open(kA1Key, components, sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, kA1Plaintext);
}

TEST(AesSiv, Rfc5297A2NonceBasedSealAndOpen) {
  const ByteView ad[] = {kA2Ad1, kA2Ad2};
  auto sealed = aead_encrypt(kA2Key, kA2Nonce, ad, kA2Plaintext);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(to_hex(*sealed), kA2Output);

  auto opened = aead_decrypt(kA2Key, kA2Nonce, ad, from_hex(kA2Output));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, kA2Plaintext);
}

// Expected tag produced independently: S2V per RFC 5297 §2.4 with every CMAC step computed by
// `openssl mac -cipher AES-128-CBC -macopt hexkey:<K1> CMAC` and dbl/xor in a short python3
// script (the same script reproduces the A.1 tag 85632d07...). Key and AD from A.1, nonce
// 20 21 .. 2f, empty plaintext: the case every NTS client request hits.
TEST(AesSiv, EmptyPlaintextKnownAnswer) {
  const std::vector<std::uint8_t> nonce = from_hex("202122232425262728292a2b2c2d2e2f");
  const ByteView ad[] = {kA1Ad};
  auto sealed = aead_encrypt(kA1Key, nonce, ad, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(to_hex(*sealed), "38c70b630c699e1ffa54f255b6a15451");

  auto opened = aead_decrypt(kA1Key, nonce, ad, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->empty());
}

// Same method as above, no AD strings at all: S2V of the empty plaintext alone.
TEST(AesSiv, EmptyPlaintextNoComponents) {
  auto sealed = aes_siv_seal(kA1Key, {}, {});
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(to_hex(*sealed), "f2007a5beb2b8900c588a7adf599f172");
}

TEST(AesSiv, EveryFlippedBitIsRejected) {
  const ByteView ad[] = {kA2Ad1, kA2Ad2};
  const auto sealed = from_hex(kA2Output);
  for (std::size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    auto tampered = sealed;
    tampered[bit / 8] = static_cast<std::uint8_t>(tampered[bit / 8] ^ (1U << (bit % 8)));
    auto opened = aead_decrypt(kA2Key, kA2Nonce, ad, tampered);
    ASSERT_FALSE(opened.ok()) << "bit " << bit;
    EXPECT_EQ(opened.error(), AeadError::kAuthenticationFailed);
  }
}

TEST(AesSiv, TamperedAssociatedDataNonceOrKeyIsRejected) {
  const auto sealed = from_hex(kA2Output);
  auto ad1 = kA2Ad1;
  ad1[0] ^= 0x01;
  const ByteView bad_ad[] = {ad1, kA2Ad2};
  EXPECT_EQ(aead_decrypt(kA2Key, kA2Nonce, bad_ad, sealed).error(),
            AeadError::kAuthenticationFailed);

  const ByteView ad[] = {kA2Ad1, kA2Ad2};
  auto nonce = kA2Nonce;
  nonce[15] ^= 0x80;
  EXPECT_EQ(aead_decrypt(kA2Key, nonce, ad, sealed).error(), AeadError::kAuthenticationFailed);

  auto key = kA2Key;
  key[31] ^= 0x01;
  EXPECT_EQ(aead_decrypt(key, kA2Nonce, ad, sealed).error(), AeadError::kAuthenticationFailed);

  // AD order matters: S2V chains the strings.
  const ByteView swapped[] = {kA2Ad2, kA2Ad1};
  EXPECT_EQ(aead_decrypt(kA2Key, kA2Nonce, swapped, sealed).error(),
            AeadError::kAuthenticationFailed);
}

TEST(AesSiv, EmptyPlaintextTagFlipIsRejected) {
  const std::vector<std::uint8_t> nonce(16, 0x42);
  const ByteView ad[] = {kA1Ad};
  auto sealed = aead_encrypt(kA1Key, nonce, ad, {});
  ASSERT_TRUE(sealed.ok());
  (*sealed)[7] ^= 0x10;
  EXPECT_EQ(aead_decrypt(kA1Key, nonce, ad, *sealed).error(), AeadError::kAuthenticationFailed);
}

TEST(AesSiv, BadInputsAreErrorsNotCrashes) {
  const std::vector<std::uint8_t> short_key(16, 0);
  EXPECT_EQ(aes_siv_seal(short_key, {}, kA1Plaintext).error(), AeadError::kBadKeyLength);
  EXPECT_EQ(aes_siv_open(short_key, {}, from_hex(kA1Output)).error(), AeadError::kBadKeyLength);
  const std::vector<std::uint8_t> fifteen(15, 0);
  EXPECT_EQ(aes_siv_open(kA1Key, {}, fifteen).error(), AeadError::kTooShort);
  const std::vector<ByteView> many(kAesSivMaxComponents + 1, ByteView(kA1Ad));
  EXPECT_EQ(aes_siv_seal(kA1Key, many, kA1Plaintext).error(), AeadError::kTooManyComponents);
  EXPECT_EQ(to_string(AeadError::kAuthenticationFailed), "authentication_failed");
}

// Cross-check against OpenSSL's own AES-128-SIV cipher (an independent implementation) for
// plaintext lengths around the 16-byte boundary where S2V switches between xorend and pad.
std::optional<std::vector<std::uint8_t>> openssl_siv(ByteView key, std::span<const ByteView> ad,
                                                     ByteView plaintext) {
  struct Free {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  struct FreeCipher {
    void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
  };
  std::unique_ptr<EVP_CIPHER, FreeCipher> cipher(EVP_CIPHER_fetch(nullptr, "AES-128-SIV", nullptr));
  std::unique_ptr<EVP_CIPHER_CTX, Free> ctx(EVP_CIPHER_CTX_new());
  if (!cipher || !ctx) return std::nullopt;
  if (EVP_EncryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) != 1) {
    return std::nullopt;
  }
  int len = 0;
  for (const ByteView a : ad) {
    if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, a.data(), static_cast<int>(a.size())) != 1) {
      return std::nullopt;
    }
  }
  std::vector<std::uint8_t> out(16 + plaintext.size());
  if (EVP_EncryptUpdate(ctx.get(), out.data() + 16, &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + 16 + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, out.data()) != 1) {
    return std::nullopt;
  }
  return out;
}

TEST(AesSiv, MatchesOpenSslSivCipher) {
  std::vector<std::uint8_t> plaintext;
  const std::vector<std::uint8_t> nonce = from_hex("000102030405060708090a0b0c0d0e0f");
  for (std::size_t size = 1; size <= 48; ++size) {
    plaintext.push_back(static_cast<std::uint8_t>(size * 7));
    const ByteView components[] = {kA2Ad1, nonce};
    const auto reference = openssl_siv(kA2Key, components, plaintext);
    if (!reference) GTEST_SKIP() << "OpenSSL has no usable AES-128-SIV";
    auto ours = aes_siv_seal(kA2Key, components, plaintext);
    ASSERT_TRUE(ours.ok());
    EXPECT_EQ(to_hex(*ours), to_hex(*reference)) << "size " << size;
  }
}

}  // namespace
}  // namespace ntpmon::proto
