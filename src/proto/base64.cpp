#include "proto/base64.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace ntpmon::proto {

std::string encode_base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  if (bytes.empty()) return out;
  // EVP_EncodeBlock writes a terminating NUL after the 4*ceil(n/3) characters.
  std::string buffer(out.size() + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buffer.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  buffer.resize(static_cast<std::size_t>(std::max(written, 0)));
  return buffer;
}

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.empty()) return std::string();
  // EVP_DecodeBlock skips leading and trailing whitespace and reads the padding as zero bits:
  // the length, the alphabet and where '=' stands are checked here, and canonical form below.
  const std::size_t pad = text.ends_with("==") ? 2 : (text.ends_with('=') ? 1 : 0);
  const auto alphabet = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  };
  if (!std::all_of(text.begin(), text.end() - static_cast<std::ptrdiff_t>(pad), alphabet)) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  if (encode_base64(out) != text) return std::nullopt;  // bits set after the last byte
  return out;
}

std::string encode_base64url(std::string_view bytes) {
  std::string out = encode_base64(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::optional<std::string> decode_base64url(std::string_view text) {
  if (text.find_first_of("+/=") != std::string_view::npos || text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string standard(text);
  std::replace(standard.begin(), standard.end(), '-', '+');
  std::replace(standard.begin(), standard.end(), '_', '/');
  standard.append((4 - standard.size() % 4) % 4, '=');
  return decode_base64(standard);
}

}  // namespace ntpmon::proto
