// What a SIGHUP changes in the engine, decided from the running and the new configuration.
//
// Responsible for: comparing the two configurations (and their key files' keys) and saying what
// the engine must redo: new keys for the probes, a new webhook sender, a new window of requests
// in flight, and which settings wait for a restart (the history store, opened once). Pure: no
// I/O. Not responsible for: the Monitor's part (Monitor::reload reads every key it uses) or
// carrying the plan out (the daemon).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proto/keys.hpp"

namespace ntpmon::engine {

struct ReloadPlan {
  bool keys_changed = false;
  // Stop the running webhook sender and start one for the new configuration (if it has one).
  bool restart_webhook = false;
  std::optional<std::size_t> max_in_flight;  // the new window, when it changed
  // Sections whose new values wait for a restart ("history"); the daemon keeps running with
  // the old ones and logs config_restart_required.
  std::vector<std::string> restart_required;
};

ReloadPlan plan_reload(const config::Config& running,
                       const std::vector<proto::SymmetricKey>& running_keys,
                       const config::Config& fresh,
                       const std::vector<proto::SymmetricKey>& fresh_keys);

}  // namespace ntpmon::engine
