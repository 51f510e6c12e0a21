// Base64 (RFC 4648) on OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock, strict on input.
//
// Responsible for: the standard alphabet with padding (section 4: HTTP Basic credentials) and
// the URL-safe alphabet without padding (section 5: the API's page cursors), refusing anything
// that is not the canonical encoding of some bytes (whitespace, a wrong length, padding inside,
// other alphabets, non-zero bits after the last byte). Pure. Not responsible for: what the bytes
// mean.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ntpmon::proto {

std::string encode_base64(std::string_view bytes);
// nullopt unless `text` is exactly encode_base64 of some bytes.
std::optional<std::string> decode_base64(std::string_view text);

std::string encode_base64url(std::string_view bytes);
// nullopt unless `text` is exactly encode_base64url of some bytes.
std::optional<std::string> decode_base64url(std::string_view text);

}  // namespace ntpmon::proto
