#include "export/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

namespace ntpmon::exporter {
namespace {

// Parses an unsigned or signed decimal that is the whole of `field`.
template <typename T>
std::optional<T> parse_whole(std::string_view field) {
  T value{};
  const char* end = field.data() + field.size();
  auto [ptr, ec] = std::from_chars(field.data(), end, value);
  if (ec != std::errc() || ptr != end || field.empty()) return std::nullopt;
  return value;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// Small files whose size stat() reports as 0: read until the end.
std::optional<std::string> read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return text;
}

// Entries of /proc/self/fd except the one the directory stream itself holds open.
std::optional<std::uint64_t> count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  const int own = dirfd(dir);
  std::uint64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (auto fd = parse_whole<int>(name); fd && *fd == own) continue;
    ++count;
  }
  closedir(dir);
  return count;
}

}  // namespace

std::optional<ProcSelfStat> parse_proc_self_stat(std::string_view text) {
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  // Fields 3 onwards, separated by single spaces; field N is at index N - 3.
  std::string_view rest = text.substr(close + 1);
  constexpr std::size_t kWanted = 22;  // up to field 24 (rss)
  std::string_view fields[kWanted];
  std::size_t n = 0;
  while (n < kWanted) {
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    if (rest.empty()) break;
    std::size_t len = 0;
    while (len < rest.size() && !is_space(rest[len])) ++len;
    fields[n++] = rest.substr(0, len);
    rest.remove_prefix(len);
  }
  if (n < kWanted) return std::nullopt;
  auto utime = parse_whole<std::uint64_t>(fields[14 - 3]);
  auto stime = parse_whole<std::uint64_t>(fields[15 - 3]);
  auto starttime = parse_whole<std::uint64_t>(fields[22 - 3]);
  auto vsize = parse_whole<std::uint64_t>(fields[23 - 3]);
  auto rss = parse_whole<std::int64_t>(fields[24 - 3]);
  if (!utime || !stime || !starttime || !vsize || !rss) return std::nullopt;
  return ProcSelfStat{*utime, *stime, *starttime, *vsize, *rss};
}

std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat_text) {
  constexpr std::string_view kKey = "btime";
  while (!proc_stat_text.empty()) {
    const auto eol = proc_stat_text.find('\n');
    std::string_view line = proc_stat_text.substr(0, eol);
    proc_stat_text =
        eol == std::string_view::npos ? std::string_view() : proc_stat_text.substr(eol + 1);
    if (!line.starts_with(kKey) || line.size() <= kKey.size() || !is_space(line[kKey.size()])) {
      continue;
    }
    line.remove_prefix(kKey.size());
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    while (!line.empty() && (is_space(line.back()) || line.back() == '\r')) line.remove_suffix(1);
    return parse_whole<std::int64_t>(line);
  }
  return std::nullopt;
}

ProcessStats make_process_stats(const ProcSelfStat& stat, std::int64_t boot_time_s,
                                long clock_ticks_per_s, long page_bytes, std::uint64_t open_fds,
                                std::uint64_t max_fds) {
  const double ticks = clock_ticks_per_s > 0 ? static_cast<double>(clock_ticks_per_s) : 100.0;
  ProcessStats out;
  out.cpu_seconds_total = static_cast<double>(stat.utime_ticks + stat.stime_ticks) / ticks;
  out.start_time_seconds =
      static_cast<double>(boot_time_s) + static_cast<double>(stat.starttime_ticks) / ticks;
  out.virtual_memory_bytes = static_cast<double>(stat.vsize_bytes);
  out.resident_memory_bytes = static_cast<double>(stat.rss_pages) * static_cast<double>(page_bytes);
  out.open_fds = static_cast<double>(open_fds);
  out.max_fds = static_cast<double>(max_fds);
  return out;
}

std::optional<ProcessStats> read_process_stats() {
  const auto self_stat_text = read_file("/proc/self/stat");
  const auto stat_text = read_file("/proc/stat");
  if (!self_stat_text || !stat_text) return std::nullopt;
  const auto self_stat = parse_proc_self_stat(*self_stat_text);
  const auto boot_time = parse_boot_time(*stat_text);
  const auto open_fds = count_open_fds();
  rlimit limit{};
  if (!self_stat || !boot_time || !open_fds || getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return std::nullopt;
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  if (ticks <= 0 || page <= 0) return std::nullopt;
  return make_process_stats(*self_stat, *boot_time, ticks, page, *open_fds, limit.rlim_cur);
}

}  // namespace ntpmon::exporter
