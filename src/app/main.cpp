// ntp-monitor entry point: parses the command line and runs one sub-command, or the monitoring
// daemon when none is given.
#include <cstdio>
#include <exception>

#include "app/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ntp-monitor: watch NTP servers and tell which ones keep good time"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", NTPMON_VERSION);
  int exit_code = ntpmon::app::kExitOk;
  ntpmon::app::register_query(app, &exit_code);
  ntpmon::app::register_simulate(app, &exit_code);
  ntpmon::app::register_check_config(app, &exit_code);
  ntpmon::app::register_demo(app, &exit_code);
  ntpmon::app::register_run(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? ntpmon::app::kExitOk : ntpmon::app::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ntp-monitor: %s\n", e.what());
    return ntpmon::app::kExitUsage;
  }
  return exit_code;
}
