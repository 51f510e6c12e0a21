// The process_* figures of the daemon itself (CPU time, memory, file descriptors, start time),
// read from Linux's /proc the way the Prometheus client libraries' process collectors read them.
//
// Responsible for: parsing /proc/self/stat and /proc/stat (pure functions of the file text, so
// they are tested with sample text) and a thin reader that gathers one ProcessStats for a
// scrape. Not responsible for: rendering them (prometheus.hpp) or deciding whether to export
// them (HttpServerOptions::process_metrics).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "export/prometheus.hpp"

namespace ntpmon::exporter {

// The fields of /proc/self/stat (proc(5)) that the process families need, in the kernel's
// units.
struct ProcSelfStat {
  std::uint64_t utime_ticks = 0;      // field 14, user mode CPU time, clock ticks
  std::uint64_t stime_ticks = 0;      // field 15, kernel mode CPU time, clock ticks
  std::uint64_t starttime_ticks = 0;  // field 22, start time after boot, clock ticks
  std::uint64_t vsize_bytes = 0;      // field 23, virtual memory size
  std::int64_t rss_pages = 0;         // field 24, resident set size
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so the fields are counted from its last ')'. nullopt
// when the text is not such a line.
std::optional<ProcSelfStat> parse_proc_self_stat(std::string_view text);

// The boot time (Unix seconds) from the `btime` line of /proc/stat's text; nullopt without one.
std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat_text);

// Combines the parsed figures with the system's constants (sysconf(_SC_CLK_TCK),
// sysconf(_SC_PAGESIZE)) and the descriptor counts.
ProcessStats make_process_stats(const ProcSelfStat& stat, std::int64_t boot_time_s,
                                long clock_ticks_per_s, long page_bytes, std::uint64_t open_fds,
                                std::uint64_t max_fds);

// Reads /proc/self/stat, /proc/stat, the entries of /proc/self/fd and the soft RLIMIT_NOFILE.
// nullopt if any of them cannot be read or parsed (not Linux, /proc not mounted): the scrape then
// goes without process families rather than with wrong ones. A few small reads; cheap enough per
// scrape, and it runs on the scraping thread, never the event loop.
std::optional<ProcessStats> read_process_stats();

}  // namespace ntpmon::exporter
