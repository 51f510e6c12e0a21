// ntp-monitor entry point: parses the command line and runs one sub-command, or the monitoring
// daemon when none is given.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "app/commands.hpp"

namespace ntpmon::app {
namespace {
char** command_line = nullptr;  // main's argv, for prefer_huge_pages()
}  // namespace

// The daemon keeps state for every monitored address in several tables, and each probe touches
// an entry of each: with tens of thousands of addresses, that is a different 4 KiB page per
// table per probe, and the page walks cost as much as the work. glibc's malloc can ask the
// kernel for transparent huge pages (2 MiB) for its heap, but reads that setting only from the
// environment at start-up, so the daemon sets it and starts itself again (same process, same
// arguments) before doing anything. An operator who set glibc.malloc.hugetlb in GLIBC_TUNABLES
// (0 turns it off) is left alone, and so is a system without /proc. docs/architecture.md.
void prefer_huge_pages() {
  constexpr std::string_view kTunable = "glibc.malloc.hugetlb";
  if (command_line == nullptr) return;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, kTunable.data()) != nullptr) return;
  std::string value = tunables != nullptr && *tunables != '\0' ? std::string(tunables) + ":" : "";
  value += std::string(kTunable) + "=1";
  if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  // The file the link names, so that the process keeps its name ("ntp-monitor" in ps and
  // systemctl status, not "exe"); the link itself when the file was replaced since the start
  // (an upgrade: the name ends in " (deleted)") or cannot be read.
  std::array<char, 4096> target{};
  const ssize_t n = readlink("/proc/self/exe", target.data(), target.size() - 1);
  const std::string_view resolved(target.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
  const bool usable =
      n > 0 && static_cast<std::size_t>(n) < target.size() - 1 && !resolved.ends_with(" (deleted)");
  execv(usable ? target.data() : "/proc/self/exe", command_line);
  // Not restarted (no /proc, say): go on with the heap as it is.
}

}  // namespace ntpmon::app

int main(int argc, char** argv) {
  ntpmon::app::command_line = argv;
  CLI::App app{"ntp-monitor: watch NTP servers and tell which ones keep good time"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", NTPMON_VERSION);
  int exit_code = ntpmon::app::kExitOk;
  ntpmon::app::register_query(app, &exit_code);
  ntpmon::app::register_simulate(app, &exit_code);
  ntpmon::app::register_check_config(app, &exit_code);
  ntpmon::app::register_demo(app, &exit_code);
  ntpmon::app::register_healthcheck(app, &exit_code);
  ntpmon::app::register_check(app, &exit_code);
  ntpmon::app::register_run(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc == 0) return ntpmon::app::kExitOk;
    // A plugin's bad usage is UNKNOWN (3), not the other commands' 2: Nagios reads the code.
    const bool plugin = argc > 1 && std::string_view(argv[1]) == "check";
    return plugin ? ntpmon::app::kExitPluginUnknown : ntpmon::app::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ntp-monitor: %s\n", e.what());
    return ntpmon::app::kExitUsage;
  }
  return exit_code;
}
