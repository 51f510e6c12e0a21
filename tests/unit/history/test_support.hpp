// Helpers shared by the history unit tests: a folder per test for database files, and queue
// entries with fixed values, so that each test states only what it checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "history/writer_queue.hpp"

namespace ntpmon::history::test {

// A fresh, empty folder named after the running test and the process (ctest runs tests of one
// executable in parallel processes). The fixture removes it.
inline std::filesystem::path make_test_dir(std::string_view prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (std::string(prefix) + std::to_string(::getpid()) + "-" + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// A sample of `server` at `time_ns` as the store queues it; the other fields are fixed.
inline detail::Entry sample_entry(std::string server, std::int64_t time_ns) {
  SampleRecord s;
  s.time_unix_ns = time_ns;
  s.server = std::move(server);
  s.address = "192.0.2.1";
  s.offset_s = 1e-3;
  s.delay_s = 2e-3;
  s.stratum = 2;
  s.state = "candidate";
  return detail::Entry{std::in_place_index<0>, std::move(s)};
}

}  // namespace ntpmon::history::test
