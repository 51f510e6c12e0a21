// ASCII text rules of HTTP that the exporter's parsers share.
//
// Responsible for: comparing tokens case-insensitively the way HTTP does (header names,
// authentication schemes, media types, the closed values of security headers): ASCII letters
// only, no locale; trimming optional whitespace around list items; reading a weight (q=).
// Not responsible for: any other parsing or validation of the tokens themselves.
#pragma once

#include <algorithm>
#include <optional>
#include <string_view>

namespace ntpmon::exporter {

inline bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    return lower(x) == lower(y);
  });
}

// RFC 9110 §5.6.3 optional whitespace (space, tab) removed from both ends.
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 §12.4.2 qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in
// thousandths; nullopt if it is not one (the caller then ignores the item, never guesses).
inline std::optional<int> parse_qvalue(std::string_view q) {
  if (q.empty() || q.size() > 5 || (q[0] != '0' && q[0] != '1')) return std::nullopt;
  int thousandths = (q[0] - '0') * 1000;
  if (q.size() == 1) return thousandths;
  if (q[1] != '.') return std::nullopt;
  int scale = 100;
  for (std::size_t i = 2; i < q.size(); ++i, scale /= 10) {
    if (q[i] < '0' || q[i] > '9') return std::nullopt;
    thousandths += (q[i] - '0') * scale;
  }
  if (thousandths > 1000) return std::nullopt;
  return thousandths;
}

}  // namespace ntpmon::exporter
