// `ntp-monitor check-config FILE`: validates a configuration file without contacting any server,
// so that a deployment (CI, a package's post-install, an operator before a reload) can reject a
// bad file early. Prints every problem, one per line, in the file:line:col form editors jump to.
#include <cstdio>
#include <memory>
#include <string>

#include "app/commands.hpp"
#include "config/config.hpp"

namespace ntpmon::app {

void register_check_config(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "check-config", "Validate a configuration file and report every error with file:line:col");
  // The callback runs after main() has returned from register_*, so the option's storage must
  // be owned by the callback.
  auto path = std::make_shared<std::string>();
  // No CLI::ExistingFile check: the loader reports a missing file in the same format as every
  // other configuration error.
  cmd->add_option("file", *path, "YAML configuration file (see docs/configuration.md)")->required();
  cmd->callback([path, exit_code] {
    const auto result = config::load_config_file(*path);
    if (!result.ok()) {
      for (const auto& error : result.error()) {
        std::fprintf(stderr, "%s\n", error.to_string().c_str());
      }
      *exit_code = kExitUsage;
      return;
    }
    const std::size_t n = result->servers.size();
    std::printf("%s: ok (%zu %s)\n", path->c_str(), n, n == 1 ? "server" : "servers");
    *exit_code = kExitOk;
  });
}

}  // namespace ntpmon::app
