// `ntp-monitor check-config FILE`: validates a configuration file without contacting any server,
// so that a deployment (CI, a package's post-install, an operator before a reload) can reject a
// bad file early. Prints every problem, one per line, in the file:line:col form editors jump to.
// It loads what the daemon loads at start: the YAML file, its server lists and its key file
// (with every server's key id looked up), so a file it accepts does not fail at start.
//
// `ntp-monitor check-config --list-alerts` prints instead the alerts the daemon can raise (per
// server, and one for the host's own clock), one line each: the name (its log, webhook and
// ntp_monitor_alert_active{alert} name) and the severity. A test holds deploy/prometheus/rules.yml
// to this list.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "app/commands.hpp"
#include "config/config.hpp"
#include "config/shard.hpp"
#include "engine/key_file.hpp"
#include "monitor/snapshot.hpp"

namespace ntpmon::app {

void register_check_config(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "check-config", "Validate a configuration file and report every error with file:line:col");
  // The callback runs after main() has returned from register_*, so the option's storage must
  // be owned by the callback.
  auto path = std::make_shared<std::string>();
  // No CLI::ExistingFile check: the loader reports a missing file in the same format as every
  // other configuration error.
  auto* file =
      cmd->add_option("file", *path, "YAML configuration file (see docs/configuration.md)");
  auto list_alerts = std::make_shared<bool>(false);
  cmd->add_flag("--list-alerts", *list_alerts,
                "Print the name and severity of every alert the daemon raises, and exit")
      ->excludes(file);
  cmd->callback([path, file, list_alerts, exit_code] {
    if (*list_alerts) {
      for (int i = 0; i < monitor::kAlertKindCount; ++i) {
        const auto kind = static_cast<monitor::AlertKind>(i);
        std::printf("%s %s\n", monitor::alert_name(kind), monitor::alert_severity(kind));
      }
      *exit_code = kExitOk;
      return;
    }
    // Required unless listing alerts; CLI11 reports it as it would have with ->required().
    if (file->count() == 0) throw CLI::RequiredError("file");
    const auto result = config::load_config_file(*path);
    if (!result.ok()) {
      for (const auto& error : result.error()) {
        std::fprintf(stderr, "%s\n", error.to_string().c_str());
      }
      *exit_code = kExitUsage;
      return;
    }
    // The same check as the daemon's start: a missing key file or a key id it does not hold.
    const auto keys = engine::load_config_keys(*result);
    if (!keys.ok()) {
      std::fprintf(stderr, "%s\n", keys.error().c_str());
      *exit_code = kExitUsage;
      return;
    }
    const config::Config& config = *result;
    const std::size_t n = config.servers.size();
    std::string summary = std::to_string(n) + (n == 1 ? " server" : " servers");
    if (!config.server_list_files.empty()) {
      std::size_t from_lists = 0;
      for (const auto& server : config.servers) from_lists += server.list_file >= 0 ? 1 : 0;
      const std::size_t files = config.server_list_files.size();
      summary += ": " + std::to_string(n - from_lists) + " from 'servers', " +
                 std::to_string(from_lists) + " from " + std::to_string(files) +
                 (files == 1 ? " server list" : " server lists");
    }
    if (!config.key_file.empty()) {
      summary += ", " + std::to_string(keys->size()) + (keys->size() == 1 ? " key" : " keys") +
                 " in " + config.key_file;
    }
    // The shard block: how many of the servers the shard it names would monitor (or, without an
    // index, that the command line must give it).
    if (config.shard) {
      const std::string of = " of " + std::to_string(config.shard->count) + " shards";
      if (config.shard->index) {
        const std::uint32_t index = *config.shard->index;
        std::size_t in_shard = 0;
        for (const auto& server : config.servers) {
          in_shard += config::shard_of(server.name, config.shard->count) == index ? 1 : 0;
        }
        summary +=
            ", shard " + std::to_string(index) + of + ": " + std::to_string(in_shard) + " of them";
      } else {
        summary += ", split into" + of.substr(3) + " (the index comes from the command line)";
      }
    }
    if (!config.vantage.empty()) summary += ", vantage " + config.vantage;
    std::printf("%s: ok (%s)\n", path->c_str(), summary.c_str());
    *exit_code = kExitOk;
  });
}

}  // namespace ntpmon::app
