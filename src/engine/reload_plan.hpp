// What a SIGHUP changes in the engine, decided from the running and the new configuration.
//
// Responsible for: comparing the two configurations (and their key files' keys) and saying what
// the engine must redo: new keys for the probes, a new webhook sender, a new window of requests
// in flight, and whether the history settings, which wait for a restart, changed. Pure: no
// I/O. Not responsible for: the Monitor's part (Monitor::reload reads every key it uses) or
// carrying the plan out (the daemon).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "proto/keys.hpp"

namespace ntpmon::engine {

struct ReloadPlan {
  bool keys_changed = false;
  // Stop the running webhook sender and start one for the new configuration (if it has one).
  bool restart_webhook = false;
  std::optional<std::size_t> max_in_flight;  // the new window, when it changed
  // The history settings changed: they wait for a restart (the store is opened once), the
  // daemon keeps the running ones and logs config_restart_required.
  bool history_needs_restart = false;
};

ReloadPlan plan_reload(const config::Config& running,
                       const std::vector<proto::SymmetricKey>& running_keys,
                       const config::Config& fresh,
                       const std::vector<proto::SymmetricKey>& fresh_keys);

}  // namespace ntpmon::engine
