// ASCII text rules of HTTP that the exporter's parsers share.
//
// Responsible for: comparing tokens case-insensitively the way HTTP does (header names,
// authentication schemes, the closed values of security headers): ASCII letters only, no
// locale. Not responsible for: any parsing or validation of the tokens themselves.
#pragma once

#include <algorithm>
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

}  // namespace ntpmon::exporter
