#include "export/process_stats.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <string>

namespace ntpmon::exporter {
namespace {

// A line as Linux 6.1 writes it, with a command name holding spaces and parentheses. Fields 14
// and 15 (utime, stime) are 250 and 125 ticks, 22 (starttime) 123456, 23 (vsize) 268435456,
// 24 (rss) 3072 pages.
constexpr std::string_view kStat =
    "4242 (ntp) (mon itor)) S 1 4242 4242 0 -1 4194560 1520 0 0 0 250 125 0 0 20 0 9 0 123456 "
    "268435456 3072 18446744073709551615 1 1 0 0 0 0 0 4096 17123 0 0 0 17 1 0 0 0 0 0 0 0 0 0 "
    "0 0 0 0\n";

TEST(ProcessStats, ParsesProcSelfStat) {
  const auto stat = parse_proc_self_stat(kStat);
  ASSERT_TRUE(stat);
  EXPECT_EQ(stat->utime_ticks, 250U);
  EXPECT_EQ(stat->stime_ticks, 125U);
  EXPECT_EQ(stat->starttime_ticks, 123456U);
  EXPECT_EQ(stat->vsize_bytes, 268435456U);
  EXPECT_EQ(stat->rss_pages, 3072);
}

TEST(ProcessStats, RejectsMalformedProcSelfStat) {
  for (std::string_view text : {
           "",
           "4242 ntp S 1 4242",  // no parentheses
           "4242 )ntp( S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",  // reversed
           "4242 (ntp) S 1 4242 4242 0 -1 4194560 1520 0 0 0 250 125 0 0 20 0 9 0 123456",  // short
           "4242 (ntp) S 1 4242 4242 0 -1 4194560 1520 0 0 0 x 125 0 0 20 0 9 0 123456 1 2",
           "4242 (ntp) S 1 4242 4242 0 -1 4194560 1520 0 0 0 -250 125 0 0 20 0 9 0 123456 1 2",
           "4242 (ntp) S 1 4242 4242 0 -1 4194560 1520 0 0 0 250 125 0 0 20 0 9 0 1e3 1 2",
       }) {
    EXPECT_FALSE(parse_proc_self_stat(text)) << text;
  }
}

TEST(ProcessStats, ParsesBootTime) {
  const std::string proc_stat =
      "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 0 0\n"
      "cpu0 1393280 32966 572056 13343292 6130 0 17875 0 0 0\n"
      "intr 199292 0 0\n"
      "ctxt 1990473\n"
      "btimeout 1\n"
      "btime 1700000000\n"
      "processes 2915\n";
  EXPECT_EQ(parse_boot_time(proc_stat), 1700000000);
  EXPECT_EQ(parse_boot_time("btime 1700000001"), 1700000001) << "no final newline";
  EXPECT_FALSE(parse_boot_time(""));
  EXPECT_FALSE(parse_boot_time("cpu 1 2 3\nbtimeout 5\n"));
  EXPECT_FALSE(parse_boot_time("btime\n"));
  EXPECT_FALSE(parse_boot_time("btime soon\n"));
}

TEST(ProcessStats, CombinesWithClockTicksAndPageSize) {
  const auto stat = parse_proc_self_stat(kStat);
  ASSERT_TRUE(stat);
  const auto p = make_process_stats(*stat, 1700000000, 100, 4096, 12, 1024);
  EXPECT_DOUBLE_EQ(p.cpu_seconds_total, 3.75);                   // (250 + 125) / 100
  EXPECT_DOUBLE_EQ(p.start_time_seconds, 1700000000 + 1234.56);  // btime + 123456 / 100
  EXPECT_DOUBLE_EQ(p.virtual_memory_bytes, 268435456);
  EXPECT_DOUBLE_EQ(p.resident_memory_bytes, 3072.0 * 4096);
  EXPECT_DOUBLE_EQ(p.open_fds, 12);
  EXPECT_DOUBLE_EQ(p.max_fds, 1024);
}

// This test process itself: figures that must hold on any Linux machine.
TEST(ProcessStats, ReadsThisProcess) {
  const auto p = read_process_stats();
  ASSERT_TRUE(p);
  const double now_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(p->start_time_seconds, now_s - 3600) << "this test started less than an hour ago";
  EXPECT_LT(p->start_time_seconds, now_s + 5);
  EXPECT_GE(p->cpu_seconds_total, 0);
  EXPECT_GT(p->resident_memory_bytes, 0);
  EXPECT_GE(p->virtual_memory_bytes, p->resident_memory_bytes);
  EXPECT_GE(p->open_fds, 3) << "stdin, stdout, stderr";
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_DOUBLE_EQ(p->max_fds, static_cast<double>(limit.rlim_cur));
  EXPECT_LE(p->open_fds, p->max_fds);
}

}  // namespace
}  // namespace ntpmon::exporter
