// Sub-commands of the ntp-monitor executable. Each lives in its own cmd_*.cpp and registers
// its options on the CLI11 app; main.cpp only wires them and maps errors to exit codes.
#pragma once

#include <CLI/CLI.hpp>

namespace ntpmon::app {

// Exit codes shared by every sub-command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // ran, but a server did not give a valid answer
inline constexpr int kExitUsage = 2;    // bad arguments or bad configuration

// Each register_* adds a sub-command whose callback stores its exit code in *exit_code.
void register_query(CLI::App& app, int* exit_code);
void register_simulate(CLI::App& app, int* exit_code);
void register_check_config(CLI::App& app, int* exit_code);
void register_demo(CLI::App& app, int* exit_code);
void register_healthcheck(CLI::App& app, int* exit_code);
// The Nagios/Icinga plugin: its exit codes are the plugin states (0-3), a usage error is 3.
void register_check(CLI::App& app, int* exit_code);
inline constexpr int kExitPluginUnknown = 3;
// The default command (no sub-command): the monitoring daemon. Adds its options to `app`.
void register_run(CLI::App& app, int* exit_code);

// For the commands that run the daemon (the default one and demo), first thing once their
// arguments are known: restarts the process once with glibc's malloc asking for transparent
// huge pages, unless GLIBC_TUNABLES already says either way (main.cpp says why). Returns
// without restarting when it cannot.
void prefer_huge_pages();

}  // namespace ntpmon::app
