// Unit tests of `server_lists` and the server list file scanner: exact entries for valid
// lists, exact file:line:col messages for every error, the limits, and path resolution.
#include "config/server_list.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace ntpmon::config {
namespace {

std::vector<std::string> messages(const ConfigResult& result) {
  std::vector<std::string> out;
  if (result.ok()) return out;
  for (const auto& e : result.error()) out.push_back(e.to_string());
  return out;
}

// A fresh directory holding a servers.yaml and its list files; removed at the end of the test.
class ListDir : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "ntpmon-lists-XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to `name` (relative to the directory) and returns the full path.
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  ConfigResult load(const std::string& yaml, const ConfigLimits& limits = {}) {
    return load_config_file(write("servers.yaml", yaml), limits);
  }
  // Every error of a configuration that must fail.
  std::vector<std::string> errors(const std::string& yaml, const ConfigLimits& limits = {}) {
    const auto result = load(yaml, limits);
    EXPECT_FALSE(result.ok()) << yaml;
    return messages(result);
  }

  std::filesystem::path dir_;
};

TEST_F(ListDir, ParsesHostsNamesCommentsAndBlankLines) {
  write("fleet.txt",
        "# data centre 1\n"
        "127.0.0.1\n"
        "\n"
        "127.0.0.2 rack-2   # a comment after the fields\n"
        "\t ::1\tloopback6\r\n"
        "   \n"
        "ntp.example.net.\n"
        "fe80::1%eth0 link-local\n"
        "[2001:db8::7]\n"
        "time.example #not-a-name\n"
        "192.0.2.1 caf\xc3\xa9\n"
        "10.1.2.3 rack#3");  // no final newline
  const auto result = load("server_lists:\n  - path: fleet.txt\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  const Config& c = *result;
  ASSERT_EQ(c.server_list_files, std::vector<std::string>{path("fleet.txt")});
  struct Expected {
    std::string host;
    std::string name;
    int line;
  };
  const std::vector<Expected> expected = {
      {"127.0.0.1", "127.0.0.1", 2},
      {"127.0.0.2", "rack-2", 4},
      {"::1", "loopback6", 5},
      {"ntp.example.net.", "ntp.example.net.", 7},
      {"fe80::1%eth0", "link-local", 8},
      {"2001:db8::7", "2001:db8::7", 9},
      {"time.example", "time.example", 10},
      {"192.0.2.1", "caf\xc3\xa9", 11},
      {"10.1.2.3", "rack#3", 12},
  };
  ASSERT_EQ(c.servers.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const ServerConfig& s = c.servers[i];
    EXPECT_EQ(s.host, expected[i].host) << i;
    EXPECT_EQ(s.name, expected[i].name) << i;
    EXPECT_EQ(s.line, expected[i].line) << i;
    EXPECT_EQ(s.list_file, 0) << i;
    EXPECT_EQ(file_of(c, s), path("fleet.txt")) << i;
    // Without keys in the entry, a line means what a YAML entry with only `host` means.
    EXPECT_EQ(s.port, 123) << i;
    EXPECT_EQ(s.version, 4) << i;
    EXPECT_FALSE(s.expected_stratum.has_value()) << i;
    EXPECT_FALSE(s.poll_s.has_value()) << i;
    EXPECT_FALSE(s.alert_thresholds.has_value()) << i;
    EXPECT_FALSE(s.pool) << i;
    EXPECT_FALSE(s.nts) << i;
    EXPECT_FALSE(s.key_id.has_value()) << i;
  }
}

TEST_F(ListDir, EntryKeysApplyToEveryLineAndYamlEntriesComeFirst) {
  write("a.txt", "127.0.0.1 a1\n127.0.0.2 a2\n");
  write("lists/b.txt", "127.0.1.1\n");
  const auto result = load(
      "servers:\n"
      "  - host: 127.9.9.9\n"
      "    port: 1123\n"
      "server_lists:\n"
      "  - path: a.txt\n"
      "    port: 12301\n"
      "    version: 3\n"
      "    poll: 2.5\n"
      "    stratum: 2\n"
      "  - path: lists/b.txt\n"
      "alert_thresholds: {offset_ms: 5}\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  const Config& c = *result;
  ASSERT_EQ(c.servers.size(), 4u);
  EXPECT_EQ(c.servers[0].host, "127.9.9.9");
  EXPECT_EQ(c.servers[0].port, 1123);
  EXPECT_EQ(c.servers[0].line, 2);
  EXPECT_EQ(c.servers[0].list_file, -1);
  EXPECT_EQ(file_of(c, c.servers[0]), c.source);
  for (int i : {1, 2}) {
    const ServerConfig& s = c.servers[static_cast<std::size_t>(i)];
    EXPECT_EQ(s.name, i == 1 ? "a1" : "a2");
    EXPECT_EQ(s.port, 12301);
    EXPECT_EQ(s.version, 3);
    EXPECT_EQ(s.poll_s, 2.5);
    EXPECT_EQ(s.expected_stratum, 2);
    EXPECT_EQ(s.line, i);
    EXPECT_EQ(s.list_file, 0);
  }
  const ServerConfig& b = c.servers[3];
  EXPECT_EQ(b.host, "127.0.1.1");
  EXPECT_EQ(b.port, 123);
  EXPECT_EQ(b.version, 4);
  EXPECT_FALSE(b.poll_s.has_value());
  EXPECT_FALSE(b.expected_stratum.has_value());
  EXPECT_EQ(b.list_file, 1);
  EXPECT_EQ(file_of(c, b), path("lists/b.txt"));
  // The global thresholds apply to list entries through value_or, as to YAML entries.
  EXPECT_FALSE(b.alert_thresholds.has_value());
  EXPECT_EQ(c.alert_thresholds.offset_ms, 5.0);
  EXPECT_EQ(c.server_list_files, (std::vector<std::string>{path("a.txt"), path("lists/b.txt")}));
}

TEST_F(ListDir, PathsRelativeToTheConfigFileAbsolutePathsAsWritten) {
  const std::string absolute = write("elsewhere/abs.txt", "127.0.0.5\n");
  write("conf/rel.txt", "127.0.0.6\n");
  const std::string config =
      write("conf/servers.yaml",
            "servers: []\nserver_lists:\n  - path: rel.txt\n  - path: " + absolute + "\n");
  const auto result = load_config_file(config);
  ASSERT_TRUE(result.ok()) << messages(result).front();
  EXPECT_EQ(result->server_list_files, (std::vector<std::string>{path("conf/rel.txt"), absolute}));
  ASSERT_EQ(result->servers.size(), 2u);
  EXPECT_EQ(result->servers[0].host, "127.0.0.6");
  EXPECT_EQ(result->servers[1].host, "127.0.0.5");
}

TEST_F(ListDir, ParseConfigFromTextTakesRelativePathsFromTheWorkingDirectory) {
  write("cwd.txt", "127.0.0.8\n");
  const auto old = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  const auto result = parse_config("server_lists: [{path: cwd.txt}]\n");
  std::filesystem::current_path(old);
  ASSERT_TRUE(result.ok()) << messages(result).front();
  ASSERT_EQ(result->servers.size(), 1u);
  EXPECT_EQ(result->server_list_files, std::vector<std::string>{"cwd.txt"});
  EXPECT_EQ(file_of(*result, result->servers[0]), "cwd.txt");
}

TEST_F(ListDir, LineErrorsCarryTheListFileLineAndColumn) {
  const std::string list = write("bad.txt",
                                 "127.0.0.1\n"
                                 "bad_host!\n"
                                 "  127.0.0.1:123 x\n"
                                 "256.1.1.1\n"
                                 "127.0.0.2 name extra\n"
                                 "127.0.0.3 a\x01"
                                 "b\n"
                                 "127.0.0.4 \xff\xfe\n"
                                 "[::1 x\n"
                                 "127.0.0.5 ok\n");
  EXPECT_EQ(
      errors("server_lists: [{path: bad.txt}]\n"),
      (std::vector<std::string>{
          list + ":2:1: host 'bad_host!' is not a valid host name (letters, digits, '-' and '_' in "
                 "dot-separated labels)",
          list + ":3:3: host '127.0.0.1:123' looks like host:port; put the port in the 'port' key",
          list + ":4:1: host '256.1.1.1' is not a valid IPv4 address (expected a.b.c.d, each "
                 "0-255)",
          list + ":5:16: unexpected third field 'extra': a line is '<host> [<name>]' (port, "
                 "version, poll and stratum are set for the whole file in its 'server_lists' "
                 "entry)",
          list + ":6:11: name 'a\\x01b' contains control characters",
          list + ":7:11: name is not valid UTF-8",
          list + ":8:1: host '[::1' is not a valid bracketed IPv6 address (the port goes in "
                 "'port')",
      }));
}

TEST_F(ListDir, FileErrorsPointAtThePathInTheYamlFile) {
  std::filesystem::create_directories(dir_ / "a-directory");
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0);
  const auto config = path("servers.yaml");
  EXPECT_EQ(
      errors("server_lists:\n"
             "  - path: missing.txt\n"
             "  - path: a-directory\n"
             "  - path: fifo\n"),
      (std::vector<std::string>{
          config + ":2:11: 'path' '" + path("missing.txt") +
              "': cannot open: No such file or directory",
          config + ":3:11: 'path' '" + path("a-directory") + "' is a directory, not a regular file",
          config + ":4:11: 'path' '" + path("fifo") + "' is a FIFO, not a regular file",
      }));
}

TEST_F(ListDir, AFileAboveTheSizeLimitIsRefusedWithoutReadingIt) {
  // Sparse: 256 MiB + 1 byte of apparent size, no disk blocks.
  const std::string big = path("big.txt");
  { std::ofstream(big) << ""; }
  std::filesystem::resize_file(big, (std::size_t{256} << 20) + 1);
  EXPECT_EQ(errors("server_lists: [{path: big.txt}]\n"),
            (std::vector<std::string>{path("servers.yaml") + ":1:23: 'path' '" + big +
                                      "': the file is larger than 256 MiB, the limit of a "
                                      "server list"}));
  // The bound is configurable for tests; exactly at the limit is accepted.
  write("small.txt", "127.0.0.1\n");  // 10 bytes
  ConfigLimits limits;
  limits.max_server_list_bytes = 10;
  EXPECT_TRUE(load("server_lists: [{path: small.txt}]\n", limits).ok());
  limits.max_server_list_bytes = 9;
  const auto result = load("server_lists: [{path: small.txt}]\n", limits);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(messages(result).front(), path("servers.yaml") + ":1:23: 'path' '" + path("small.txt") +
                                          "': the file is larger than 0 MiB, the limit of a "
                                          "server list");
}

TEST_F(ListDir, DefaultLimits) {
  const ConfigLimits limits;
  EXPECT_EQ(limits.max_servers, 2'000'000u);
  EXPECT_EQ(limits.max_server_list_bytes, 268'435'456u);
  EXPECT_EQ(limits.max_list_errors, 100u);
}

TEST_F(ListDir, TheServerLimitCountsYamlEntriesAndStopsAtTheLineThatExceedsIt) {
  write("a.txt", "127.0.0.1\n127.0.0.2\n");
  const std::string b = write("b.txt", "# two servers\n127.0.1.1\n  127.0.1.2\n127.0.1.3\n");
  write("c.txt", "127.0.2.1\n");
  ConfigLimits limits;
  limits.max_servers = 4;  // one YAML entry + 2 from a.txt + 1 from b.txt
  EXPECT_EQ(errors("servers: [{host: 127.9.9.9}]\n"
                   "server_lists: [{path: a.txt}, {path: b.txt}, {path: c.txt}]\n",
                   limits),
            (std::vector<std::string>{
                b + ":3:3: more than 4 servers in total ('servers' entries and server lists "
                    "together); the rest of this file is not read (split the fleet across "
                    "several monitors)",
            }));
  limits.max_servers = 7;
  const auto result = load(
      "servers: [{host: 127.9.9.9}]\n"
      "server_lists: [{path: a.txt}, {path: b.txt}, {path: c.txt}]\n",
      limits);
  ASSERT_TRUE(result.ok()) << messages(result).front();
  EXPECT_EQ(result->servers.size(), 7u);
}

TEST_F(ListDir, ErrorsPerFileAreCappedThenTheFileIsSkipped) {
  const std::string list = write("junk.txt", "a!\nb!\n127.0.0.1\nc!\nd!\n");
  ConfigLimits limits;
  limits.max_list_errors = 2;
  const auto all = errors("server_lists: [{path: junk.txt}]\n", limits);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all[0].starts_with(list + ":1:1: host 'a!' ")) << all[0];
  EXPECT_TRUE(all[1].starts_with(list + ":2:1: host 'b!' ")) << all[1];
  EXPECT_EQ(all[2], list + ":4: more than 2 errors in this file; the rest of it is not checked");
}

TEST_F(ListDir, DuplicateNamesAcrossYamlAndListsAndWithinAList) {
  const std::string a = write("a.txt",
                              "127.0.0.1\n"
                              "127.0.0.2 yaml-one\n"
                              "127.0.0.3 127.0.0.1\n");
  const std::string b = write("b.txt", "\n127.0.0.4 127.0.0.1\n\t127.0.0.9\n");
  const std::string config = path("servers.yaml");
  EXPECT_EQ(errors("servers:\n"
                   "  - host: 127.0.0.9\n"
                   "  - host: 127.0.0.8\n"
                   "    name: yaml-one\n"
                   "server_lists:\n"
                   "  - path: a.txt\n"
                   "  - path: b.txt\n"),
            (std::vector<std::string>{
                a + ":2:11: duplicate server name 'yaml-one' (also used by the entry at " + config +
                    ":3); give each line a distinct name (its second field)",
                a + ":3:11: duplicate server name '127.0.0.1' (also used by the entry at line "
                    "1); give each line a distinct name (its second field)",
                b + ":2:11: duplicate server name '127.0.0.1' (also used by the entry at " + a +
                    ":1); give each line a distinct name (its second field)",
                b + ":3:2: duplicate server name '127.0.0.9' (also used by the entry at " + config +
                    ":2); give each line a distinct name (its second field)",
            }));
}

TEST_F(ListDir, DuplicateNameReportsAreCapped) {
  const std::string list = write("same.txt", "127.0.0.1\n127.0.0.1\n127.0.0.1\n127.0.0.1\n");
  ConfigLimits limits;
  limits.max_list_errors = 2;
  const auto all = errors("server_lists: [{path: same.txt}]\n", limits);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], list +
                        ":2:1: duplicate server name '127.0.0.1' (also used by the entry at "
                        "line 1); give each line a distinct name (its second field)");
  EXPECT_EQ(all[2], list + ":4:1: more than 2 duplicate server names; the rest are not reported");
}

TEST_F(ListDir, ServerListsEntryErrors) {
  write("a.txt", "127.0.0.1\n");
  const std::string config = path("servers.yaml");
  EXPECT_EQ(errors("server_lists:\n"
                   "  - path: a.txt\n"
                   "    port: 0\n"
                   "    version: 5\n"
                   "    stratum: 16\n"
                   "    poll: 0\n"
                   "    name: x\n"
                   "  - port: 123\n"
                   "  - fleet.txt\n"
                   "  -\n"
                   "  - path: ''\n"
                   "  - path: ./a.txt\n"
                   "  - path: a.txt\n"
                   "  - path: [a.txt]\n"),
            (std::vector<std::string>{
                // A '-' alone has no position of its own: the message points at the list.
                config + ":2:3: 'server_lists' entry 4 is empty ('-' with nothing after it)",
                config + ":3:11: 'port' must be an integer from 1 to 65535, got '0'",
                config + ":4:14: 'version' must be 3 or 4, got '5'",
                config + ":5:14: 'stratum' must be an integer from 1 to 15, got '16'",
                config + ":6:11: 'poll' must be a number of seconds greater than 0 and at most "
                         "131072 (2^17), got '0'",
                config + ":7:5: unknown key 'name' in server_lists entry (expected one of: path, "
                         "port, version, poll, stratum)",
                config + ":8:5: server_lists entry has no 'path' (the file listing the servers)",
                config + ":9:5: a server_lists entry must be a mapping with at least 'path', got "
                         "'fleet.txt' (write '- path: fleet.txt')",
                config + ":11:11: 'path' is empty",
                config + ":12:11: 'path' '" + path("./a.txt") +
                    "' is the file already listed at line 2; list each file once",
                config + ":13:11: 'path' '" + path("a.txt") +
                    "' is already listed at line 2; list each file once",
                config + ":14:11: 'path' must be a string, got a list",
            }));
}

TEST_F(ListDir, ServerListsKeyErrors) {
  const std::string config = path("servers.yaml");
  EXPECT_EQ(
      errors("server_lists: fleet.txt\n"),
      (std::vector<std::string>{config + ":1:15: 'server_lists' must be a list of mappings with "
                                         "'path', got 'fleet.txt'"}));
  EXPECT_EQ(errors("server_lists: []\n"),
            (std::vector<std::string>{config +
                                      ":1:15: 'server_lists' is empty; list at least one file"}));
  EXPECT_EQ(
      errors("server_lists:\n"),
      (std::vector<std::string>{config + ":1:1: 'server_lists' has no value (expected a list of "
                                         "mappings with 'path')"}));
  write("empty.txt", "# nothing yet\n\n");
  EXPECT_EQ(
      errors("server_lists: [{path: empty.txt}]\n"),
      (std::vector<std::string>{
          config + ":1:1: no servers: the server lists are empty; list at least one server"}));
  EXPECT_EQ(
      errors("servers: []\nserver_lists: [{path: empty.txt}]\n"),
      (std::vector<std::string>{config + ":2:1: no servers: the server lists are empty and so is "
                                         "'servers'; list at least one server"}));
}

TEST_F(ListDir, YamlErrorsComeBeforeListErrorsWhichFollowTheListOrder) {
  const std::string a = write("a.txt", "\n\n\nbad!\n");
  const std::string b = write("b.txt", "bad?\n");
  const std::string config = path("servers.yaml");
  const auto all = errors(
      "server_lists: [{path: b.txt}, {path: a.txt}]\n"
      "servers: [{host: 127.0.0.1}]\n"
      "poll: {min: 0}\n");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all[0].starts_with(config + ":3:13: 'min' must be")) << all[0];
  EXPECT_TRUE(all[1].starts_with(b + ":1:1: host 'bad?'")) << all[1];
  EXPECT_TRUE(all[2].starts_with(a + ":4:1: host 'bad!'")) << all[2];
}

TEST_F(ListDir, AHundredThousandLines) {
  std::string text;
  for (int i = 0; i < 100'000; ++i) {
    text += "127." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
            std::to_string(i & 255) + "\n";
  }
  write("fleet.txt", text);
  const auto result = load("server_lists: [{path: fleet.txt, poll: 16}]\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  ASSERT_EQ(result->servers.size(), 100'000u);
  const ServerConfig& last = result->servers.back();
  EXPECT_EQ(last.host, "127.1.134.159");  // 99999 = 1 * 65536 + 134 * 256 + 159
  EXPECT_EQ(last.name, "127.1.134.159");
  EXPECT_EQ(last.line, 100'000);
  EXPECT_EQ(last.poll_s, 16.0);
}

TEST(ServerListExample, ShippedExampleParses) {
  const auto result = load_config_file(NTPMON_SOURCE_DIR "/config/server-lists-example.yaml");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  ASSERT_EQ(result->servers.size(), 5u);
  EXPECT_EQ(result->servers[0].name, "sim-reference");
  EXPECT_EQ(result->server_list_files,
            std::vector<std::string>{NTPMON_SOURCE_DIR "/config/server-lists-example.txt"});
  const std::vector<std::string> names = {"sim-list-a", "sim-list-b", "sim-list-v6", "127.0.0.4"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const ServerConfig& s = result->servers[i + 1];
    EXPECT_EQ(s.name, names[i]);
    EXPECT_EQ(s.port, 12302);
    EXPECT_EQ(s.expected_stratum, 2);
    EXPECT_EQ(s.poll_s, 4.0);
    EXPECT_EQ(s.line, static_cast<int>(i) + 2);
  }
  EXPECT_EQ(result->servers[3].host, "::1");
}

// ---- The scanner alone ----------------------------------------------------------------------

struct Scanned {
  std::vector<ServerConfig> servers;
  std::vector<int> name_columns;
  std::vector<ConfigError> errors;
  ServerListEnd end = ServerListEnd::kComplete;
};

Scanned scan(std::string_view text, std::size_t max_servers = 100, std::size_t max_errors = 10) {
  Scanned out;
  out.end = scan_server_list(text, "l.txt", 3, ServerListDefaults{}, max_servers, max_errors,
                             {&out.servers, &out.name_columns, &out.errors});
  return out;
}

TEST(ServerListScanner, ColumnsCountBytesFromOne) {
  const auto s = scan("  127.0.0.1\t\tname\n127.0.0.2\n# x\n\t::2   # c\n");
  ASSERT_EQ(s.servers.size(), 3u);
  EXPECT_EQ(s.name_columns, (std::vector<int>{14, 1, 2}));
  EXPECT_EQ(s.servers[2].line, 4);
  EXPECT_EQ(s.servers[2].list_file, 3);
  EXPECT_TRUE(s.errors.empty());
  EXPECT_EQ(s.end, ServerListEnd::kComplete);
}

TEST(ServerListScanner, EmptyAndCommentOnlyTextsHoldNoServers) {
  for (const char* text : {"", "\n", "\n\n  \t\n", "# only\n#\n", "\r\n"}) {
    const auto s = scan(text);
    EXPECT_TRUE(s.servers.empty()) << text;
    EXPECT_TRUE(s.errors.empty()) << text;
  }
}

TEST(ServerListScanner, NulBytesAreReportedNotTruncated) {
  const auto s = scan(std::string_view("127.0.0.1\0x\n", 12));
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].to_string(),
            "l.txt:1:1: host '127.0.0.1\\x00x' is not a valid host name (letters, digits, '-' "
            "and '_' in dot-separated labels)");
}

TEST(ServerListScanner, Limits) {
  auto s = scan("127.0.0.1\n127.0.0.2\n127.0.0.3\n", 2);
  EXPECT_EQ(s.end, ServerListEnd::kTooManyServers);
  EXPECT_EQ(s.servers.size(), 2u);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].line, 3);
  s = scan("a!\nb!\nc!\n", 100, 1);
  EXPECT_EQ(s.end, ServerListEnd::kTooManyErrors);
  ASSERT_EQ(s.errors.size(), 2u);
  EXPECT_EQ(s.errors[1].to_string(),
            "l.txt:2: more than 1 errors in this file; the rest of it is not checked");
}

TEST(ServerListScanner, Utf8) {
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("plain"));
  EXPECT_TRUE(is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x95\x90"));
  EXPECT_FALSE(is_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_utf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(is_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_utf8("\x80"));              // continuation byte alone
  EXPECT_FALSE(is_utf8("\xf8\x88\x80\x80\x80"));
}

}  // namespace
}  // namespace ntpmon::config
