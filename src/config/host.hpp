// Syntax of the `host` values a configuration may name: host names, IPv4 dotted quads and IPv6
// literals, shared by the YAML loader and the server-list scanner.
//
// Responsible for: deciding whether a string is acceptable as a host and why not, without
// allocating on the accepting path (a server list may hold a million hosts). Not responsible
// for: resolving names (the engine does) or for saying which configuration key the value came
// from (messages start with "host" and callers reword them).
#pragma once

#include <string>
#include <string_view>

#include "proto/result.hpp"

namespace ntpmon::config {

// [0-9]+
bool all_digits(std::string_view s);

// Strict dotted quad: inet_aton-style forms ("127.1", "0x7f.0.0.1", "010.0.0.1") are refused.
bool is_ipv4(std::string_view s);
// An IPv6 literal, optionally with a zone ("fe80::1%eth0"), unbracketed.
bool is_ipv6(std::string_view s);
// RFC 1123 section 2.1 host name (plus '_'); a trailing dot is fine.
bool is_host_name(std::string_view s);

// Checks a host value. On success returns the host as the engine wants it, a view into `raw`
// (IPv6 without brackets); otherwise a message that starts with "host '<raw>' ...".
Result<std::string_view, std::string> check_host(std::string_view raw);

}  // namespace ntpmon::config
