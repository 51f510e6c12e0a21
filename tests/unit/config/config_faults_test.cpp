// Configuration files that flood or block: the cap on reported errors (the first
// kMaxReportedErrors in file order, then "and N more errors", with the memory bounded while the
// file is checked) and the file-kind check (a FIFO, a directory, a socket or a device is refused
// before it is opened for reading, with a message naming its kind).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_check.hpp"
#include "config/yaml_document.hpp"

namespace ntpmon::config {
namespace {

std::vector<std::string> messages(const std::vector<ConfigError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

// A YAML text with an unknown top-level key on each of `lines` lines.
std::string unknown_keys(int lines) {
  std::string text;
  for (int i = 1; i <= lines; ++i) text += "bogus_" + std::to_string(i) + ": 1\n";
  return text;
}

std::string unknown_key_error(int line) {
  return "cfg.yaml:" + std::to_string(line) + ":1: unknown key 'bogus_" + std::to_string(line) +
         "' at the top level (expected one of: servers, server_lists, alert_thresholds, poll, "
         "alerts, selection, dns, history, key_file, requests, key_format, probe, metrics, shard, "
         "vantage)";
}

TEST(ConfigErrorCap, AFileWithAnErrorOnEveryLineReportsTheFirstTwentyAndACount) {
  const auto result = parse_config(unknown_keys(5000), "cfg.yaml");
  ASSERT_FALSE(result.ok());
  const auto& errors = result.error();
  ASSERT_EQ(errors.size(), kMaxReportedErrors + 1);
  for (int i = 0; i < static_cast<int>(kMaxReportedErrors); ++i) {
    EXPECT_EQ(errors[static_cast<std::size_t>(i)].to_string(), unknown_key_error(i + 1));
  }
  // 4980 unknown keys, and "missing required key 'servers'".
  EXPECT_EQ(errors.back().more, 4981u);
  EXPECT_EQ(errors.back().to_string(),
            "cfg.yaml: and 4981 more errors (only the first 20 are reported)");
  EXPECT_EQ(error_count(errors), 5001u);
  // The whole report is one short line, not megabytes.
  EXPECT_LT(join_config_errors(errors).size(), 8u * 1024u);
}

TEST(ConfigErrorCap, AtTheCapNothingIsCounted) {
  // 19 unknown keys and the missing 'servers': exactly 20, no "more" entry.
  const auto result = parse_config(unknown_keys(19), "cfg.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().size(), kMaxReportedErrors);
  EXPECT_EQ(result.error().back().more, 0u);
  EXPECT_EQ(error_count(result.error()), kMaxReportedErrors);
}

// Errors found out of file order (the checker walks sections in its own order) still come out
// as the first ones of the file, although only a bounded number is ever held.
class OrderChecker : public YamlChecker {
 public:
  OrderChecker() : YamlChecker("t.yml", ScalarStyle::kAsWritten) {}
  [[nodiscard]] std::size_t held() const { return errors_.size(); }
};

TEST(ConfigErrorCap, TheFirstErrorsInFileOrderAreKeptWhateverOrderTheyAreFoundIn) {
  OrderChecker checker;
  std::size_t most_held = 0;
  for (int line = 10000; line >= 1; --line) {
    YAML::Mark mark;
    mark.line = line - 1;
    mark.column = 0;
    checker.error_at(mark, "error " + std::to_string(line));
    most_held = std::max(most_held, checker.held());
  }
  EXPECT_LE(most_held, 2 * kMaxReportedErrors);
  const auto errors = checker.take_errors();
  ASSERT_EQ(errors.size(), kMaxReportedErrors + 1);
  for (int line = 1; line <= static_cast<int>(kMaxReportedErrors); ++line) {
    EXPECT_EQ(errors[static_cast<std::size_t>(line - 1)].to_string(),
              "t.yml:" + std::to_string(line) + ":1: error " + std::to_string(line));
  }
  EXPECT_EQ(errors.back().more, 10000u - kMaxReportedErrors);
}

TEST(ConfigErrorCap, ErrorsOfEverySectionAreCountedWhenTheListIsCut) {
  // 20 unknown top-level keys, then a server entry with 21 bad keys: the list is cut while the
  // entry is read; every error is still counted and the first 20 of the file are shown.
  std::string text = unknown_keys(20) + "servers:\n  - host: a\n";
  for (int i = 0; i < 21; ++i) text += "    bad_" + std::to_string(i) + ": 1\n";
  text += "  - host: b\n";
  const auto result = parse_config(text, "cfg.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(error_count(result.error()), 41u);
  EXPECT_EQ(result.error()[19].to_string(), unknown_key_error(20));
  EXPECT_EQ(result.error().back().to_string(),
            "cfg.yaml: and 21 more errors (only the first 20 are reported)");
}

// ---- What is not a regular file ------------------------------------------------------------

class FileKinds : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "ntpmon-kinds-XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string fifo(const std::string& name) {
    const std::string p = path(name);
    EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0);
    return p;
  }
  std::string socket_file(const std::string& name) {
    const std::string p = path(name);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(p.size(), sizeof addr.sun_path);
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
    return p;
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = path(name);
    std::ofstream(p) << text;
    return p;
  }

  std::filesystem::path dir_;
};

// Runs `read` on a FIFO nobody writes to and says how long it took. A reader that opens the
// FIFO and waits is released after 3 s by a writer that opens and closes it, so that a wrong
// implementation fails the time check instead of hanging the test.
template <typename Read>
double seconds_on_fifo(const std::string& fifo_path, Read read) {
  std::atomic<bool> done{false};
  std::thread release([&] {
    for (int i = 0; i < 30 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (done) return;
    const int fd = ::open(fifo_path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  });
  const auto start = std::chrono::steady_clock::now();
  read();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  done = true;
  release.join();
  return took.count();
}

TEST_F(FileKinds, EachKindIsNamed) {
  std::filesystem::create_directories(path("dir"));
  const std::string f = fifo("fifo");
  const std::string s = socket_file("sock");
  const std::string r = write("regular", "x");
  EXPECT_EQ(not_a_regular_file(path("dir")), "is a directory, not a regular file");
  EXPECT_EQ(not_a_regular_file(f), "is a FIFO, not a regular file");
  EXPECT_EQ(not_a_regular_file(s), "is a socket, not a regular file");
  EXPECT_EQ(not_a_regular_file("/dev/null"), "is a character device, not a regular file");
  EXPECT_EQ(not_a_regular_file(r), std::nullopt);
  EXPECT_EQ(not_a_regular_file(path("missing")), std::nullopt);  // left to whoever opens it
  // A symbolic link is judged by what it points to.
  std::filesystem::create_symlink(f, path("link-to-fifo"));
  EXPECT_EQ(not_a_regular_file(path("link-to-fifo")), "is a FIFO, not a regular file");
}

TEST_F(FileKinds, ReadingAFifoFailsAtOnce) {
  const std::string f = fifo("fifo");
  Result<RegularFile, std::string> got = Err{std::string("not run")};
  const double took = seconds_on_fifo(f, [&] { got = read_regular_file(f, 1024, "big"); });
  EXPECT_LT(took, 1.0);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error(), "is a FIFO, not a regular file");
  EXPECT_EQ(read_regular_file("/dev/zero", 1024, "big").error(),
            "is a character device, not a regular file");
  EXPECT_EQ(read_regular_file(write("ok", "hello"), 1024, "big")->text, "hello");
}

TEST_F(FileKinds, AConfigurationThatIsAFifoIsOneClearError) {
  const std::string f = fifo("servers.yaml");
  ConfigResult result = Err{std::vector<ConfigError>{}};
  const double took = seconds_on_fifo(f, [&] { result = load_config_file(f); });
  EXPECT_LT(took, 1.0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(messages(result.error()),
            std::vector<std::string>{f + ": is a FIFO, not a regular file"});
}

TEST_F(FileKinds, ASocketOrADeviceAsTheConfigurationIsRefused) {
  const std::string s = socket_file("servers.yaml");
  EXPECT_EQ(messages(load_config_file(s).error()),
            std::vector<std::string>{s + ": is a socket, not a regular file"});
  EXPECT_EQ(messages(load_config_file("/dev/zero").error()),
            std::vector<std::string>{"/dev/zero: is a character device, not a regular file"});
}

TEST_F(FileKinds, KeyAndCaFilesMustBeRegularFiles) {
  const std::string keys = fifo("keys");
  const std::string ca = fifo("ca.pem");
  const std::string config = write("servers.yaml",
                                   "key_file: keys\n"
                                   "servers:\n"
                                   "  - {host: a, key: 1}\n"
                                   "  - {host: b, nts: true, ca_file: ca.pem}\n");
  ConfigResult result = Err{std::vector<ConfigError>{}};
  const double took = seconds_on_fifo(keys, [&] { result = load_config_file(config); });
  EXPECT_LT(took, 1.0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(messages(result.error()),
            (std::vector<std::string>{
                config + ":1:11: 'key_file' '" + keys + "' is a FIFO, not a regular file",
                config + ":4:35: 'ca_file' '" + ca + "' is a FIFO, not a regular file",
            }));
}

}  // namespace
}  // namespace ntpmon::config
