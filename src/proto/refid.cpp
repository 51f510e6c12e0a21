#include "proto/refid.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>

namespace ntpmon::proto {
namespace {

// Printable ASCII, optionally padded with trailing NULs ("GPS\0"); at least one character.
// Returns the length without padding, or 0 if the bytes are not such text.
std::size_t ascii_length(const RefidBytes& refid) {
  std::size_t length = refid.size();
  while (length > 0 && refid[length - 1] == 0) --length;
  for (std::size_t i = 0; i < length; ++i) {
    if (refid[i] < 0x20 || refid[i] > 0x7E) return 0;
  }
  return length;
}

std::string ascii_text(const RefidBytes& refid, std::size_t length) {
  return std::string(refid.begin(), refid.begin() + static_cast<std::ptrdiff_t>(length));
}

std::string hex_text(const RefidBytes& refid) {
  char buffer[9];
  std::snprintf(buffer, sizeof buffer, "%02x%02x%02x%02x", refid[0], refid[1], refid[2], refid[3]);
  return buffer;
}

std::string dotted_quad(const RefidBytes& refid) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%u.%u.%u.%u", refid[0], refid[1], refid[2], refid[3]);
  return buffer;
}

}  // namespace

DecodedRefid decode_refid(const RefidBytes& refid, std::uint8_t stratum) {
  if (stratum <= 1) {
    const std::size_t length = ascii_length(refid);
    if (length == 0) return {RefidKind::kOther, hex_text(refid)};
    return {stratum == 0 ? RefidKind::kKissCode : RefidKind::kClockName, ascii_text(refid, length)};
  }
  // An IPv6 upstream's MD5 hash is indistinguishable from an IPv4 address here; callers that
  // know their upstream's IPv6 address compare against ipv6_refid().
  if (stratum < 16) return {RefidKind::kAddress, dotted_quad(refid)};
  return {RefidKind::kOther, hex_text(refid)};
}

RefidBytes ipv6_refid(const std::array<std::uint8_t, 16>& address) {
  RefidBytes refid{};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  // MD5 is what RFC 5905 prescribes here; it identifies, it does not protect anything.
  if (EVP_Digest(address.data(), address.size(), digest, &digest_size, EVP_md5(), nullptr) == 1 &&
      digest_size >= refid.size()) {
    std::copy(digest, digest + refid.size(), refid.begin());
  }
  return refid;
}

std::optional<std::string> kiss_code(const RefidBytes& refid) {
  const std::size_t length = ascii_length(refid);
  if (length == 0) return std::nullopt;
  return ascii_text(refid, length);
}

}  // namespace ntpmon::proto
