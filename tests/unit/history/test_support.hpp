// Helpers shared by the history unit tests: a fixture with a folder per test for database
// files, and queue entries with fixed values, so that each test states only what it checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "history/history_store.hpp"
#include "history/writer_queue.hpp"

namespace ntpmon::history::test {

// A fixture with a fresh, empty folder for database files (dir_) and the path of a database in
// it (path_). The folder is named after the running test and the process (ctest runs tests of
// one executable in parallel processes) and removed after the test.
class TestDirFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("ntpmon-" + std::string(info->test_suite_name()) + "-" + std::to_string(::getpid()) +
            "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "history.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path dir_;
  std::string path_;
};

// TestDirFixture plus what the HistoryStore tests share: options for a fast writer without
// periodic retention, whose log lines are kept, and a search of those lines.
class StoreFixture : public TestDirFixture {
 protected:
  HistoryOptions options() {
    HistoryOptions o;
    o.flush_interval = std::chrono::milliseconds(20);
    o.retention_interval = std::chrono::hours(24);
    o.max_age = std::chrono::seconds(0);
    o.max_rows = 0;
    o.max_bytes = 0;
    o.log = [this](HistoryLogLevel level, std::string_view message) {
      std::lock_guard lock(log_mutex_);
      log_.emplace_back(level, std::string(message));
    };
    return o;
  }

  bool logged(HistoryLogLevel level, std::string_view needle) {
    std::lock_guard lock(log_mutex_);
    for (const auto& [l, m] : log_) {
      if (l == level && m.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  std::mutex log_mutex_;
  std::vector<std::pair<HistoryLogLevel, std::string>> log_;
};

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
