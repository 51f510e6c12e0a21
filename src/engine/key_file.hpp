// The daemon's symmetric keys: reading `key_file` and checking it against the servers' `key:` ids.
//
// Responsible for: reading the key file named in the configuration (bounded size), choosing its
// format (chrony.keys or ntpsec's ntp.keys, or detected from the text as `ntp-monitor query
// --key-format auto` does), parsing it with proto/keys, and checking that every server's key id
// is in it, with the file:line:col of the `key:` value that names a missing id. Never throws.
// Not responsible for: computing MACs (proto/mac), or when the file is read (the daemon reads it
// at start, where a failure stops the start, and on every reload, where a failure keeps the
// running configuration and keys).
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "proto/keys.hpp"
#include "proto/result.hpp"

namespace ntpmon::engine {

// The keys of config.key_file (none without one). The error is one line for people:
// "servers.yaml:4:10: key 7 is not in /etc/chrony.keys" or "/etc/chrony.keys (chrony format):
// line 3: bad_hex".
Result<std::vector<proto::SymmetricKey>, std::string> load_config_keys(
    const config::Config& config);

}  // namespace ntpmon::engine
