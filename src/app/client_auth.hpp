// The authentication options that `query` and `check` share (NTS or a symmetric key), and
// what they mean for a one-shot query.
//
// Responsible for: adding --nts, --ntske-port, --ca-file, --key-file, --key-id and --key-format
// to a sub-command, and turning them into engine::QueryOptions (loading the key file as the
// daemon does, engine/key_file.hpp). Not responsible for: each command's other options, or how
// it reports an error (query: stderr and exit 2; check: UNKNOWN).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/query.hpp"

namespace ntpmon::app {

struct ClientAuthArgs {
  bool nts = false;
  int ntske_port = 4460;
  std::string ca_file;
  std::string key_file;
  std::int64_t key_id = -1;
  std::string key_format = "auto";
};

void add_client_auth_options(CLI::App& cmd, ClientAuthArgs& args);

// Sets options.auth and what it needs (NTS-KE port and CA file, or the key). The error is one
// line for people: the options contradict each other, or the key cannot be had.
std::optional<std::string> apply_client_auth(const ClientAuthArgs& args,
                                             engine::QueryOptions& options);

}  // namespace ntpmon::app
