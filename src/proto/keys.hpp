// Symmetric-key file parsers: chrony's chrony.keys and ntpsec's ntp.keys.
//
// Responsible for: turning the text of a key file into (id, MAC type, secret) entries, with a
// line-numbered reason for the first line that cannot be used. Never throws. Not responsible
// for: reading the file from disk or checking its permissions (the engine / app do that), or
// computing MACs (mac.hpp).
//
// Strictness: both daemons log a bad line and carry on; a monitor that silently loses a key
// would report "bad MAC" for a configuration mistake, so here the first bad line fails the
// whole file. The remaining differences from each daemon are listed beside its parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/mac.hpp"
#include "proto/result.hpp"

namespace ntpmon::proto {

struct SymmetricKey {
  std::uint32_t id = 0;
  MacType type = MacType::kMd5;
  std::vector<std::uint8_t> secret;

  friend bool operator==(const SymmetricKey&, const SymmetricKey&) = default;
};

enum class KeyFileError : std::uint8_t {
  kBadFieldCount,    // not "ID [TYPE] KEY" (chrony) / "keyno type key" (ntpsec)
  kBadId,            // not a decimal number in the format's range
  kUnknownType,      // a type name neither daemon knows
  kUnsupportedType,  // a type the daemon knows but this project does not implement (SHA3, ...)
  kBadHex,           // odd number of digits or a non-hex character
  kBadKeyLength,     // empty, longer than the format allows, or wrong size for a cipher
  kDuplicateId,      // the same id twice (chrony warns, ntpsec keeps the last)
};
// Stable snake_case names.
std::string_view to_string(KeyFileError error);

struct KeyFileProblem {
  std::size_t line = 0;  // 1-based
  KeyFileError error = KeyFileError::kBadFieldCount;
};
// "line 3: bad_hex"
std::string to_string(const KeyFileProblem& problem);

// chrony.keys (chrony.conf(5), "keyfile"): `ID [TYPE] KEY`. ID 1..2^32-1; TYPE defaults to MD5;
// KEY is `HEX:<digits>`, `ASCII:<text>` or bare ASCII text. Lines whose first non-blank
// character is one of ! ; # % are comments (a # later in the line is part of the key, as in
// chrony). Type names are matched case-insensitively. AES128 / AES256 keys must be exactly
// 16 / 32 bytes, as chrony requires.
Result<std::vector<SymmetricKey>, KeyFileProblem> parse_chrony_keys(std::string_view text);

// ntp.keys (ntpsec ntp.keys(5)): `keyno type key`. keyno 1..65535; type case-insensitive:
// md5 (or anything starting with M, ntpsec's legacy alias), sha1, sha256, sha384, sha512,
// aes / aes-128 / aes128cmac (AES-128-CMAC), aes-256. A key of up to 20 characters is ASCII,
// a longer one is hex of at most 32 bytes. # starts a comment anywhere. Differences from
// ntpsec: an odd hex digit count, a key over 32 bytes and extra fields are errors (ntpsec
// silently drops or truncates); a CMAC key longer than the cipher key is truncated as ntpsec
// does, a shorter one is an error because ntpsec pads it with indeterminate bytes.
Result<std::vector<SymmetricKey>, KeyFileProblem> parse_ntpsec_keys(std::string_view text);

// The key with this id, or nullptr.
const SymmetricKey* find_key(std::span<const SymmetricKey> keys, std::uint32_t id);

}  // namespace ntpmon::proto
