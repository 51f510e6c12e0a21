#include "proto/nts_ef.hpp"

#include <algorithm>
#include <array>

#include "proto/aes_siv.hpp"

namespace ntpmon::proto {
namespace {

constexpr std::size_t kEfHeaderSize = 4;
// Nonce length u16 + ciphertext length u16 at the start of the Authenticator body.
constexpr std::size_t kAuthenticatorLengthsSize = 4;
constexpr std::array<std::uint8_t, 4> kKissNtsn = {'N', 'T', 'S', 'N'};

std::size_t round_up4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

std::size_t ef_size(std::size_t value_size, std::size_t min_size = kMinExtensionSize) {
  return std::max(round_up4(kEfHeaderSize + value_size), round_up4(min_size));
}

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((unsigned{p[0]} << 8) | unsigned{p[1]});
}

void store_u16(std::uint8_t* p, std::size_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// A field's value is padded to a multiple of 4; it carries `expected` if it starts with it and
// only zero padding follows.
bool value_equals(std::span<const std::uint8_t> value, std::span<const std::uint8_t> expected) {
  if (value.size() < expected.size()) return false;
  return std::equal(expected.begin(), expected.end(), value.begin()) &&
         std::all_of(value.begin() + static_cast<std::ptrdiff_t>(expected.size()), value.end(),
                     [](std::uint8_t b) { return b == 0; });
}

struct UniqueIdCheck {
  int count = 0;
  bool match = false;
  void see(std::span<const std::uint8_t> value, std::span<const std::uint8_t> ours) {
    ++count;
    match = value_equals(value, ours);
  }
};

NtsError from_aead_error(AeadError error) {
  switch (error) {
    case AeadError::kAuthenticationFailed:
    case AeadError::kTooShort:
      return NtsError::kAuthenticationFailed;
    case AeadError::kBadKeyLength:
      return NtsError::kBadArgument;
    case AeadError::kTooManyComponents:
    case AeadError::kCryptoFailure:
      break;
  }
  return NtsError::kCryptoFailure;
}

}  // namespace

std::string_view to_string(NtsError error) {
  switch (error) {
    case NtsError::kBadArgument:
      return "bad_argument";
    case NtsError::kTooLarge:
      return "too_large";
    case NtsError::kMalformedExtension:
      return "malformed_extension";
    case NtsError::kMissingUniqueId:
      return "missing_unique_id";
    case NtsError::kDuplicateUniqueId:
      return "duplicate_unique_id";
    case NtsError::kUniqueIdMismatch:
      return "unique_id_mismatch";
    case NtsError::kMissingAuthenticator:
      return "missing_authenticator";
    case NtsError::kFieldAfterAuthenticator:
      return "field_after_authenticator";
    case NtsError::kBadAuthenticator:
      return "bad_authenticator";
    case NtsError::kAuthenticationFailed:
      return "nts_authentication_failed";
    case NtsError::kNtsNak:
      return "nts_nak";
    case NtsError::kCryptoFailure:
      return "crypto_failure";
  }
  return "unknown";
}

Result<std::vector<std::uint8_t>, NtsError> build_nts_request(const NtsRequest& request) {
  if (request.unique_id.size() < kNtsMinUniqueIdSize || request.nonce.size() != kNtsNonceSize ||
      request.cookie.empty() || request.c2s_key.size() != kAesSivKeySize ||
      request.placeholders > kNtsMaxPlaceholders) {
    return Err{NtsError::kBadArgument};
  }
  const std::size_t authenticator_value =
      kAuthenticatorLengthsSize + round_up4(kNtsNonceSize) + round_up4(kAesSivTagSize);
  const std::size_t total = kHeaderSize + ef_size(request.unique_id.size()) +
                            ef_size(request.cookie.size()) * (1 + request.placeholders) +
                            ef_size(authenticator_value, kMinLastExtensionSize);
  if (total > kMaxPacketSize) return Err{NtsError::kTooLarge};

  std::vector<std::uint8_t> packet(total);
  std::copy(request.header.begin(), request.header.end(), packet.begin());
  std::size_t pos = kHeaderSize;
  const auto rest = [&] { return std::span<std::uint8_t>(packet).subspan(pos); };
  pos += encode_extension(kEfUniqueIdentifier, request.unique_id, rest());
  pos += encode_extension(kEfNtsCookie, request.cookie, rest());
  // §5.5: placeholders are the cookie's size so that the reply, which carries one cookie per
  // field, is no larger than the request (no amplification).
  const std::vector<std::uint8_t> zeros(request.cookie.size(), 0);
  for (std::size_t i = 0; i < request.placeholders; ++i) {
    pos += encode_extension(kEfNtsCookiePlaceholder, zeros, rest());
  }

  const std::span<const std::uint8_t> associated_data(packet.data(), pos);
  const ByteView ad_list[] = {associated_data};
  auto sealed = aead_encrypt(request.c2s_key, request.nonce, ad_list, {});
  if (!sealed) return Err{NtsError::kCryptoFailure};

  std::vector<std::uint8_t> value(authenticator_value, 0);
  store_u16(value.data(), kNtsNonceSize);
  store_u16(value.data() + 2, sealed->size());
  std::copy(request.nonce.begin(), request.nonce.end(), value.begin() + kAuthenticatorLengthsSize);
  std::copy(sealed->begin(), sealed->end(),
            value.begin() +
                static_cast<std::ptrdiff_t>(kAuthenticatorLengthsSize + round_up4(kNtsNonceSize)));
  pos += encode_extension(kEfNtsAuthenticator, value, rest(), kMinLastExtensionSize);
  if (pos != total) return Err{NtsError::kTooLarge};  // unreachable: sizes computed above
  return packet;
}

Result<NtsReply, NtsError> verify_nts_reply(const PacketView& reply,
                                            std::span<const std::uint8_t> unique_id,
                                            std::span<const std::uint8_t> s2c_key) {
  if (unique_id.empty()) return Err{NtsError::kBadArgument};
  UniqueIdCheck uid;
  const ExtensionField* authenticator = nullptr;
  ExtensionField authenticator_storage;
  bool field_after_authenticator = false;

  ExtensionFieldReader reader(reply.extensions);
  ExtensionField ef;
  while (reader.next(ef)) {
    if (authenticator != nullptr) {
      field_after_authenticator = true;
      break;
    }
    if (ef.type == kEfUniqueIdentifier) {
      uid.see(ef.value, unique_id);
    } else if (ef.type == kEfNtsAuthenticator) {
      authenticator_storage = ef;
      authenticator = &authenticator_storage;
    }
  }
  if (reader.failed()) return Err{NtsError::kMalformedExtension};
  if (uid.count > 1) return Err{NtsError::kDuplicateUniqueId};
  if (uid.count == 1 && !uid.match) return Err{NtsError::kUniqueIdMismatch};

  if (authenticator == nullptr) {
    // §5.7: an NTS NAK is a kiss-o'-death NTSN that echoes our unique id and carries no
    // authenticator. Only the echoed id makes it credible, so it needs the id.
    if (uid.count == 1 && reply.header.stratum == 0 && reply.header.refid == kKissNtsn) {
      return Err{NtsError::kNtsNak};
    }
    return Err{uid.count == 0 ? NtsError::kMissingUniqueId : NtsError::kMissingAuthenticator};
  }
  // Anything after the authenticator is not covered by it (§5.6): an attacker could append it.
  if (field_after_authenticator || !reply.mac.empty()) {
    return Err{NtsError::kFieldAfterAuthenticator};
  }

  const std::span<const std::uint8_t> body = authenticator->value;
  if (body.size() < kAuthenticatorLengthsSize) return Err{NtsError::kBadAuthenticator};
  const std::size_t nonce_len = load_u16(body.data());
  const std::size_t ciphertext_len = load_u16(body.data() + 2);
  const std::size_t nonce_end = kAuthenticatorLengthsSize + round_up4(nonce_len);
  if (nonce_len == 0 || ciphertext_len < kAesSivTagSize ||
      nonce_end + round_up4(ciphertext_len) > body.size()) {
    return Err{NtsError::kBadAuthenticator};
  }
  const std::span<const std::uint8_t> nonce = body.subspan(kAuthenticatorLengthsSize, nonce_len);
  const std::span<const std::uint8_t> ciphertext = body.subspan(nonce_end, ciphertext_len);
  const auto ad_size = static_cast<std::size_t>(authenticator->raw.data() - reply.bytes.data());
  const ByteView ad_list[] = {reply.bytes.first(ad_size)};

  auto plaintext = aead_decrypt(s2c_key, nonce, ad_list, ciphertext);
  if (!plaintext) return Err{from_aead_error(plaintext.error())};

  NtsReply out;
  ExtensionFieldReader inner(*plaintext);
  while (inner.next(ef)) {
    if (ef.type == kEfNtsCookie) {
      out.cookies.emplace_back(ef.value.begin(), ef.value.end());
    } else if (ef.type == kEfUniqueIdentifier) {
      uid.see(ef.value, unique_id);
    }
  }
  if (inner.failed()) return Err{NtsError::kMalformedExtension};
  if (uid.count == 0) return Err{NtsError::kMissingUniqueId};
  if (uid.count > 1) return Err{NtsError::kDuplicateUniqueId};
  if (!uid.match) return Err{NtsError::kUniqueIdMismatch};
  return out;
}

}  // namespace ntpmon::proto
