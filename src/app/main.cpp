// ntp-monitor entry point: parses the command line and runs one sub-command, or the monitoring
// daemon when none is given.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "app/commands.hpp"

namespace {

// The daemon keeps state for every monitored address in several tables, and each probe touches
// an entry of each: with tens of thousands of addresses, that is a different 4 KiB page per
// table per probe, and the page walks cost as much as the work. glibc's malloc can ask the
// kernel for transparent huge pages (2 MiB) for its heap, but reads that setting only from the
// environment at start-up, so the daemon sets it and starts itself again (same process, same
// arguments) before doing anything. An operator who set glibc.malloc.hugetlb in GLIBC_TUNABLES
// (0 turns it off) is left alone, and so is a system without /proc. docs/architecture.md.
void prefer_huge_pages(char** argv) {
  constexpr std::string_view kTunable = "glibc.malloc.hugetlb";
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, kTunable.data()) != nullptr) return;
  std::string value = tunables != nullptr && *tunables != '\0' ? std::string(tunables) + ":" : "";
  value += std::string(kTunable) + "=1";
  if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Not restarted (no /proc, say): go on with the heap as it is.
}

// Sub-commands that are not the daemon: one-shot tools with a small heap.
bool runs_daemon(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "query" || arg == "simulate" || arg == "check-config" || arg == "--help" ||
        arg == "-h" || arg == "--version") {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (runs_daemon(argc, argv)) prefer_huge_pages(argv);
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
