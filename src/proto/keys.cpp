#include "proto/keys.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <unordered_set>

namespace ntpmon::proto {
namespace {

// The longest key ntpsec stores (its keystr buffer, "Bug 2537"); also a sane cap for chrony.
constexpr std::size_t kMaxNtpsecKeyBytes = 32;
constexpr std::size_t kNtpsecMaxAsciiChars = 20;
constexpr std::uint32_t kNtpsecMaxKeyId = 65535;

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !is_blank(line[i])) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  });
  return out;
}

// Strict decimal: digits only (no sign, no spaces), within [min, max].
std::optional<std::uint32_t> parse_id(std::string_view word, std::uint32_t min, std::uint32_t max) {
  if (word.empty() ||
      !std::all_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (ec != std::errc() || ptr != word.data() + word.size() || value < min || value > max) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::vector<std::uint8_t>> decode_hex(std::string_view digits) {
  if (digits.size() % 2 != 0) return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(digits.size() / 2);
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    const int hi = hex_value(digits[i]);
    const int lo = hex_value(digits[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>((hi << 4) | lo));
  }
  return out;
}

std::vector<std::uint8_t> ascii_bytes(std::string_view text) {
  return std::vector<std::uint8_t>(text.begin(), text.end());
}

struct TypeLookup {
  std::optional<MacType> type;
  bool known_elsewhere = false;  // a name the daemon accepts that we do not implement
};

TypeLookup chrony_type(std::string_view word) {
  const std::string name = upper(word);
  static constexpr std::array<std::pair<std::string_view, MacType>, 7> kTypes{{
      {"MD5", MacType::kMd5},
      {"SHA1", MacType::kSha1},
      {"SHA256", MacType::kSha256},
      {"SHA384", MacType::kSha384},
      {"SHA512", MacType::kSha512},
      {"AES128", MacType::kAes128Cmac},
      {"AES256", MacType::kAes256Cmac},
  }};
  for (const auto& [n, t] : kTypes) {
    if (name == n) return {t, false};
  }
  // chrony.conf(5) lists these as available with some crypto libraries.
  static constexpr std::array<std::string_view, 6> kOthers{"SHA3-224", "SHA3-256", "SHA3-384",
                                                           "SHA3-512", "TIGER",    "WHIRLPOOL"};
  const bool other = std::find(kOthers.begin(), kOthers.end(), name) != kOthers.end();
  return {std::nullopt, other};
}

// ntpsec tries "<TYPE>-CBC" as a CMAC cipher first, then TYPE as an OpenSSL digest name, then
// treats anything starting with M as MD5 (libntp/authreadkeys.c).
TypeLookup ntpsec_type(std::string_view word) {
  const std::string name = upper(word);
  if (name == "AES" || name == "AES128CMAC" || name == "AES-128")
    return {MacType::kAes128Cmac, false};
  if (name == "AES-256") return {MacType::kAes256Cmac, false};
  static constexpr std::array<std::pair<std::string_view, MacType>, 12> kDigests{{
      {"MD5", MacType::kMd5},
      {"SHA1", MacType::kSha1},
      {"SHA-1", MacType::kSha1},
      {"SHA256", MacType::kSha256},
      {"SHA-256", MacType::kSha256},
      {"SHA2-256", MacType::kSha256},
      {"SHA384", MacType::kSha384},
      {"SHA-384", MacType::kSha384},
      {"SHA2-384", MacType::kSha384},
      {"SHA512", MacType::kSha512},
      {"SHA-512", MacType::kSha512},
      {"SHA2-512", MacType::kSha512},
  }};
  for (const auto& [n, t] : kDigests) {
    if (name == n) return {t, false};
  }
  // ntp.keys(5) lists these as widely supported; valid for ntpsec, not implemented here.
  static constexpr std::array<std::string_view, 8> kOthers{
      "AES-192", "RIPEMD160", "SHA224", "SHA-224", "SHA3-224", "SHA3-256", "SHA3-384", "SHA3-512"};
  if (std::find(kOthers.begin(), kOthers.end(), name) != kOthers.end()) return {std::nullopt, true};
  if (!name.empty() && name[0] == 'M') return {MacType::kMd5, false};
  return {std::nullopt, false};
}

using ParseResult = Result<std::vector<SymmetricKey>, KeyFileProblem>;

// Calls parse_line(line_text, line_number) -> optional<error> or a key for every line.
template <typename LineParser>
ParseResult parse_lines(std::string_view text, LineParser parse_line) {
  std::vector<SymmetricKey> keys;
  std::unordered_set<std::uint32_t> ids;
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    auto parsed = parse_line(line);
    if (!parsed) return Err{KeyFileProblem{line_number, parsed.error()}};
    if (!parsed->has_value()) continue;  // blank or comment
    SymmetricKey& key = **parsed;
    if (!ids.insert(key.id).second)
      return Err{KeyFileProblem{line_number, KeyFileError::kDuplicateId}};
    keys.push_back(std::move(key));
  }
  return keys;
}

using LineResult = Result<std::optional<SymmetricKey>, KeyFileError>;

LineResult parse_chrony_line(std::string_view line) {
  const std::vector<std::string_view> words = split_words(line);
  if (words.empty()) return std::optional<SymmetricKey>{};
  if (std::string_view("!;#%").find(words[0][0]) != std::string_view::npos) {
    return std::optional<SymmetricKey>{};
  }
  if (words.size() < 2 || words.size() > 3) return Err{KeyFileError::kBadFieldCount};
  SymmetricKey key;
  const auto id = parse_id(words[0], 1, std::numeric_limits<std::uint32_t>::max());
  if (!id) return Err{KeyFileError::kBadId};
  key.id = *id;
  if (words.size() == 3) {
    const TypeLookup lookup = chrony_type(words[1]);
    if (!lookup.type) {
      return Err{lookup.known_elsewhere ? KeyFileError::kUnsupportedType
                                        : KeyFileError::kUnknownType};
    }
    key.type = *lookup.type;
  }
  const std::string_view value = words.back();
  if (value.starts_with("HEX:")) {
    auto bytes = decode_hex(value.substr(4));
    if (!bytes) return Err{KeyFileError::kBadHex};
    key.secret = std::move(*bytes);
  } else if (value.starts_with("ASCII:")) {
    key.secret = ascii_bytes(value.substr(6));
  } else {
    key.secret = ascii_bytes(value);
  }
  const std::size_t required = required_key_size(key.type);
  if (key.secret.empty() || (required != 0 && key.secret.size() != required)) {
    return Err{KeyFileError::kBadKeyLength};
  }
  return std::optional<SymmetricKey>{std::move(key)};
}

LineResult parse_ntpsec_line(std::string_view line) {
  // ntpsec's tokenizer stops at # anywhere, so keys can never contain it.
  line = line.substr(0, line.find('#'));
  const std::vector<std::string_view> words = split_words(line);
  if (words.empty()) return std::optional<SymmetricKey>{};
  if (words.size() != 3) return Err{KeyFileError::kBadFieldCount};
  SymmetricKey key;
  const auto id = parse_id(words[0], 1, kNtpsecMaxKeyId);
  if (!id) return Err{KeyFileError::kBadId};
  key.id = *id;
  const TypeLookup lookup = ntpsec_type(words[1]);
  if (!lookup.type) {
    return Err{lookup.known_elsewhere ? KeyFileError::kUnsupportedType
                                      : KeyFileError::kUnknownType};
  }
  key.type = *lookup.type;
  const std::string_view value = words[2];
  if (value.size() <= kNtpsecMaxAsciiChars) {
    key.secret = ascii_bytes(value);
  } else {
    if (value.size() > 2 * kMaxNtpsecKeyBytes) return Err{KeyFileError::kBadKeyLength};
    auto bytes = decode_hex(value);
    if (!bytes) return Err{KeyFileError::kBadHex};
    key.secret = std::move(*bytes);
  }
  const std::size_t required = required_key_size(key.type);
  if (required != 0) {
    if (key.secret.size() < required) return Err{KeyFileError::kBadKeyLength};
    key.secret.resize(required);  // ntpsec truncates a long CMAC key to the cipher key size
  }
  return std::optional<SymmetricKey>{std::move(key)};
}

}  // namespace

std::string_view to_string(KeyFileError error) {
  switch (error) {
    case KeyFileError::kBadFieldCount:
      return "bad_field_count";
    case KeyFileError::kBadId:
      return "bad_id";
    case KeyFileError::kUnknownType:
      return "unknown_type";
    case KeyFileError::kUnsupportedType:
      return "unsupported_type";
    case KeyFileError::kBadHex:
      return "bad_hex";
    case KeyFileError::kBadKeyLength:
      return "bad_key_length";
    case KeyFileError::kDuplicateId:
      return "duplicate_id";
  }
  return "unknown";
}

std::string to_string(const KeyFileProblem& problem) {
  return "line " + std::to_string(problem.line) + ": " + std::string(to_string(problem.error));
}

Result<std::vector<SymmetricKey>, KeyFileProblem> parse_chrony_keys(std::string_view text) {
  return parse_lines(text, parse_chrony_line);
}

Result<std::vector<SymmetricKey>, KeyFileProblem> parse_ntpsec_keys(std::string_view text) {
  return parse_lines(text, parse_ntpsec_line);
}

const SymmetricKey* find_key(std::span<const SymmetricKey> keys, std::uint32_t id) {
  const auto it = std::find_if(keys.begin(), keys.end(),
                               [id](const SymmetricKey& key) { return key.id == id; });
  return it == keys.end() ? nullptr : &*it;
}

}  // namespace ntpmon::proto
