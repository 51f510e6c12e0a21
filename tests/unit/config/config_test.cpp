// Unit tests of the YAML configuration loader: exact values for valid files, exact
// file:line:col messages for invalid ones, and no exception for any input.
#include "config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ntpmon::config {
namespace {

// The seed example of the original README, verbatim.
constexpr const char* kSeed = R"(servers:
  - host: pool.ntp.org
    stratum: 2
  - host: time.google.com
    stratum: 1
alert_thresholds:
  offset_ms: 50
  delay_ms: 200
)";

std::vector<std::string> messages(const ConfigResult& result) {
  std::vector<std::string> out;
  if (result.ok()) return out;
  for (const auto& e : result.error()) out.push_back(e.to_string());
  return out;
}

// Parses `yaml` expecting failure and returns every error as "file:line:col: message".
std::vector<std::string> errors_of(const std::string& yaml) {
  const auto result = parse_config(yaml, "servers.yaml");
  EXPECT_FALSE(result.ok()) << yaml;
  return messages(result);
}

// The single error `yaml` produces.
std::string error_of(const std::string& yaml) {
  const auto all = errors_of(yaml);
  EXPECT_EQ(all.size(), 1u) << yaml;
  return all.empty() ? std::string() : all.front();
}

// The first server of a config with one entry whose body (indented four spaces) is `body`.
ServerConfig one_server(const std::string& body) {
  const auto result = parse_config("servers:\n  - " + body + "\n");
  EXPECT_TRUE(result.ok()) << body << "\n" << (result.ok() ? "" : messages(result).front());
  if (!result.ok() || result->servers.size() != 1) return {};
  return result->servers.front();
}

TEST(ConfigSeed, ParsesToTheExpectedValues) {
  const auto result = parse_config(kSeed, "seed.yaml");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  const Config& c = *result;
  EXPECT_EQ(c.source, "seed.yaml");
  ASSERT_EQ(c.servers.size(), 2u);

  EXPECT_EQ(c.servers[0].name, "pool.ntp.org");
  EXPECT_EQ(c.servers[0].host, "pool.ntp.org");
  EXPECT_EQ(c.servers[0].port, 123);
  EXPECT_EQ(c.servers[0].version, 4);
  EXPECT_EQ(c.servers[0].expected_stratum, 2);
  EXPECT_FALSE(c.servers[0].poll_s.has_value());
  EXPECT_FALSE(c.servers[0].alert_thresholds.has_value());
  EXPECT_EQ(c.servers[0].line, 2);

  EXPECT_EQ(c.servers[1].name, "time.google.com");
  EXPECT_EQ(c.servers[1].host, "time.google.com");
  EXPECT_EQ(c.servers[1].expected_stratum, 1);
  EXPECT_EQ(c.servers[1].line, 4);

  EXPECT_EQ(c.alert_thresholds.offset_ms, 50.0);
  EXPECT_EQ(c.alert_thresholds.delay_ms, 200.0);
  EXPECT_EQ(c.poll.min_poll_s, 64.0);
  EXPECT_EQ(c.poll.max_poll_s, 1024.0);
}

TEST(ConfigSeed, ShippedServersYamlMatchesTheSeed) {
  const auto result = load_config_file(NTPMON_SOURCE_DIR "/config/servers.yaml");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  ASSERT_EQ(result->servers.size(), 2u);
  EXPECT_EQ(result->servers[0].host, "pool.ntp.org");
  EXPECT_EQ(result->servers[0].expected_stratum, 2);
  EXPECT_EQ(result->servers[1].host, "time.google.com");
  EXPECT_EQ(result->servers[1].expected_stratum, 1);
  EXPECT_EQ(result->alert_thresholds.offset_ms, 50.0);
  EXPECT_EQ(result->alert_thresholds.delay_ms, 200.0);
  EXPECT_EQ(result->poll.min_poll_s, 64.0);
  EXPECT_EQ(result->poll.max_poll_s, 1024.0);
  EXPECT_EQ(result->source, NTPMON_SOURCE_DIR "/config/servers.yaml");
}

TEST(ConfigSeed, ShippedLoopbackExampleParses) {
  const auto result = load_config_file(NTPMON_SOURCE_DIR "/config/loopback-example.yaml");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  ASSERT_EQ(result->servers.size(), 3u);
  for (const auto& s : result->servers) {
    EXPECT_TRUE(s.host == "127.0.0.1" || s.host == "::1") << s.host;
    EXPECT_EQ(s.poll_s, 1.0) << s.name;
  }
  EXPECT_EQ(result->servers[0].name, "sim-good");
  EXPECT_EQ(result->servers[0].port, 12301);
  // Partial per-server override: offset from the entry, delay from the global block.
  ASSERT_TRUE(result->servers[1].alert_thresholds.has_value());
  EXPECT_EQ(result->servers[1].alert_thresholds->offset_ms, 5.0);
  EXPECT_EQ(result->servers[1].alert_thresholds->delay_ms, 10.0);
  EXPECT_EQ(result->servers[2].version, 3);
  EXPECT_EQ(result->poll.min_poll_s, 1.0);
  EXPECT_EQ(result->poll.max_poll_s, 16.0);
}

TEST(ConfigValues, DefaultsForAMinimalFile) {
  const auto result = parse_config("servers:\n  - host: ntp.example\n");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->source, "<string>");
  const ServerConfig& s = result->servers.at(0);
  EXPECT_EQ(s.name, "ntp.example");
  EXPECT_EQ(s.port, 123);
  EXPECT_EQ(s.version, 4);
  EXPECT_FALSE(s.expected_stratum.has_value());
  EXPECT_FALSE(s.poll_s.has_value());
  EXPECT_FALSE(s.alert_thresholds.has_value());
  EXPECT_EQ(result->alert_thresholds.offset_ms, 50.0);
  EXPECT_EQ(result->alert_thresholds.delay_ms, 200.0);
  EXPECT_EQ(result->poll.min_poll_s, 64.0);
  EXPECT_EQ(result->poll.max_poll_s, 1024.0);
}

TEST(ConfigValues, EveryServerKey) {
  const auto s = one_server(
      "host: ntp.example\n    name: lab\n    port: 1123\n    version: 3\n    stratum: 15\n"
      "    poll: 0.5\n    alert_thresholds: {offset_ms: 2.5, delay_ms: 1e3}");
  EXPECT_EQ(s.name, "lab");
  EXPECT_EQ(s.host, "ntp.example");
  EXPECT_EQ(s.port, 1123);
  EXPECT_EQ(s.version, 3);
  EXPECT_EQ(s.expected_stratum, 15);
  EXPECT_EQ(s.poll_s, 0.5);
  ASSERT_TRUE(s.alert_thresholds.has_value());
  EXPECT_EQ(s.alert_thresholds->offset_ms, 2.5);
  EXPECT_EQ(s.alert_thresholds->delay_ms, 1000.0);
}

TEST(ConfigValues, RangeLimitsAreInclusive) {
  EXPECT_EQ(one_server("host: a\n    port: 1").port, 1);
  EXPECT_EQ(one_server("host: a\n    port: 65535").port, 65535);
  EXPECT_EQ(one_server("host: a\n    port: +80").port, 80);
  EXPECT_EQ(one_server("host: a\n    stratum: 1").expected_stratum, 1);
  EXPECT_EQ(one_server("host: a\n    poll: 131072").poll_s, 131072.0);
}

TEST(ConfigValues, PerServerThresholdsInheritFromTheGlobalBlockWhereverItIs) {
  // The global block comes after the list; the override still inherits from it.
  const auto result = parse_config(
      "servers:\n"
      "  - host: a\n"
      "    alert_thresholds:\n"
      "      delay_ms: 30\n"
      "  - host: b\n"
      "alert_thresholds:\n"
      "  offset_ms: 7\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  EXPECT_EQ(result->alert_thresholds.offset_ms, 7.0);
  EXPECT_EQ(result->alert_thresholds.delay_ms, 200.0);
  ASSERT_TRUE(result->servers[0].alert_thresholds.has_value());
  EXPECT_EQ(result->servers[0].alert_thresholds->offset_ms, 7.0);
  EXPECT_EQ(result->servers[0].alert_thresholds->delay_ms, 30.0);
  EXPECT_FALSE(result->servers[1].alert_thresholds.has_value());
}

TEST(ConfigValues, GlobalPollBounds) {
  const auto result = parse_config("servers: [{host: a}]\npoll:\n  min: 16\n  max: 16\n");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->poll.min_poll_s, 16.0);
  EXPECT_EQ(result->poll.max_poll_s, 16.0);
  const auto only_max = parse_config("servers: [{host: a}]\npoll: {max: 2048}\n");
  ASSERT_TRUE(only_max.ok());
  EXPECT_EQ(only_max->poll.min_poll_s, 64.0);
  EXPECT_EQ(only_max->poll.max_poll_s, 2048.0);
}

TEST(ConfigHosts, Ipv4AndNames) {
  EXPECT_EQ(one_server("host: 192.0.2.1").host, "192.0.2.1");
  EXPECT_EQ(one_server("host: 0.0.0.0").host, "0.0.0.0");
  EXPECT_EQ(one_server("host: ntp.example.").host, "ntp.example.");
  EXPECT_EQ(one_server("host: ntp_1.lab-2.example").host, "ntp_1.lab-2.example");
  EXPECT_EQ(one_server("host: 1ntp.example").host, "1ntp.example");
  EXPECT_EQ(one_server("host: localhost").host, "localhost");
}

TEST(ConfigHosts, Ipv6LiteralsAreStoredUnbracketed) {
  EXPECT_EQ(one_server("host: ::1").host, "::1");
  EXPECT_EQ(one_server("host: \"::1\"").host, "::1");
  EXPECT_EQ(one_server("host: \"[::1]\"").host, "::1");
  EXPECT_EQ(one_server("host: '[2001:db8::123]'").host, "2001:db8::123");
  EXPECT_EQ(one_server("host: 2001:db8:0:0:0:0:0:7").host, "2001:db8:0:0:0:0:0:7");
  EXPECT_EQ(one_server("host: ::ffff:192.0.2.1").host, "::ffff:192.0.2.1");
  EXPECT_EQ(one_server("host: fe80::1%eth0").host, "fe80::1%eth0");
  // The default name is the unbracketed host.
  EXPECT_EQ(one_server("host: \"[::1]\"").name, "::1");
}

TEST(ConfigHosts, InvalidHosts) {
  const std::string head = "servers:\n  - host: ";
  EXPECT_EQ(error_of(head + "256.1.1.1\n"),
            "servers.yaml:2:11: 'host' '256.1.1.1' is not a valid IPv4 address "
            "(expected a.b.c.d, each 0-255)");
  EXPECT_EQ(error_of(head + "1.2.3\n"),
            "servers.yaml:2:11: 'host' '1.2.3' is not a valid IPv4 address "
            "(expected a.b.c.d, each 0-255)");
  EXPECT_EQ(error_of(head + "010.0.0.1\n"),
            "servers.yaml:2:11: 'host' '010.0.0.1' is not a valid IPv4 address "
            "(expected a.b.c.d, each 0-255)");
  EXPECT_EQ(error_of(head + "123\n"),
            "servers.yaml:2:11: 'host' '123' is not a valid IPv4 address "
            "(expected a.b.c.d, each 0-255)");
  EXPECT_EQ(error_of(head + "ntp.example:123\n"),
            "servers.yaml:2:11: 'host' 'ntp.example:123' looks like host:port; put the port in "
            "the 'port' key");
  EXPECT_EQ(error_of(head + "1:2:3:4:5:6:7:8:9\n"),
            "servers.yaml:2:11: 'host' '1:2:3:4:5:6:7:8:9' is not a valid IPv6 address");
  EXPECT_EQ(error_of(head + "\"[::1]:123\"\n"),
            "servers.yaml:2:11: 'host' '[::1]:123' is not a valid bracketed IPv6 address "
            "(the port goes in 'port')");
  EXPECT_EQ(error_of(head + "\"[192.0.2.1]\"\n"),
            "servers.yaml:2:11: 'host' '[192.0.2.1]' is not a valid bracketed IPv6 address "
            "(the port goes in 'port')");
  EXPECT_EQ(error_of(head + "fe80::1%\n"),
            "servers.yaml:2:11: 'host' 'fe80::1%' is not a valid IPv6 address");
  EXPECT_EQ(error_of(head + "-bad.example\n"),
            "servers.yaml:2:11: 'host' '-bad.example' is not a valid host name (letters, "
            "digits, '-' and '_' in dot-separated labels)");
  EXPECT_EQ(error_of(head + "a..example\n"),
            "servers.yaml:2:11: 'host' 'a..example' is not a valid host name (letters, digits, "
            "'-' and '_' in dot-separated labels)");
  EXPECT_EQ(error_of(head + "\"ntp example\"\n"),
            "servers.yaml:2:11: 'host' 'ntp example' is not a valid host name (letters, "
            "digits, '-' and '_' in dot-separated labels)");
  EXPECT_EQ(error_of(head + "\"\"\n"), "servers.yaml:2:11: 'host' is empty");
  EXPECT_EQ(error_of(head + std::string(64, 'a') + ".example\n").substr(0, 19),
            "servers.yaml:2:11: ");
  // Unquoted [::1] is a YAML list, not a string.
  EXPECT_EQ(error_of(head + "[::1]\n"), "servers.yaml:2:11: 'host' must be a string, got a list");
}

TEST(ConfigErrors, UnknownKeyMessageFromTheDocs) {
  EXPECT_EQ(error_of("# monitored servers\n"
                     "servers:\n"
                     "  - host: pool.ntp.org\n"
                     "    stratum: 2\n"
                     "\n"
                     "  - host: time.google.com\n"
                     "    stratm: 1\n"),
            "servers.yaml:7:5: unknown key 'stratm' in server entry (expected one of: host, "
            "pool, name, port, version, stratum, poll, alert_thresholds, max_addresses, nts, "
            "ntske_port, ca_file, key)");
}

TEST(ConfigErrors, UnknownKeysAtEveryLevel) {
  EXPECT_EQ(error_of("servers: [{host: a}]\nalert: {}\n"),
            "servers.yaml:2:1: unknown key 'alert' at the top level (expected one of: "
            "servers, server_lists, alert_thresholds, poll, alerts, selection, dns, history, "
            "key_file, requests, key_format, probe, metrics, shard, vantage)");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalert_thresholds:\n  offset: 3\n"),
            "servers.yaml:3:3: unknown key 'offset' in alert_thresholds (expected one of: "
            "offset_ms, delay_ms)");
  EXPECT_EQ(error_of("servers: [{host: a}]\npoll: {min: 1, maxpoll: 2}\n"),
            "servers.yaml:2:16: unknown key 'maxpoll' in poll (expected one of: min, max)");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: ntp\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got 'ntp'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: \"123\"\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got the quoted "
            "string \"123\"");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 12.5\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got '12.5'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 0x7b\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got '0x7b'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 0123\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got '0123'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: [123]\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got a list");
  EXPECT_EQ(error_of("servers:\n  - host: a\nalert_thresholds: [50, 200]\n"),
            "servers.yaml:3:19: 'alert_thresholds' must be a mapping with offset_ms and/or "
            "delay_ms, got a list");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    poll: {min: 1}\n"),
            "servers.yaml:3:11: 'poll' must be a number of seconds greater than 0 and at most "
            "131072 (2^17), got a mapping");
  EXPECT_EQ(error_of("servers:\n  host: a\n"),
            "servers.yaml:2:3: 'servers' must be a list of servers, got a mapping");
  EXPECT_EQ(error_of("servers:\n  - pool.ntp.org\n"),
            "servers.yaml:2:5: a server entry must be a mapping with at least 'host', got "
            "'pool.ntp.org' (write '- host: pool.ntp.org')");
  EXPECT_EQ(error_of("servers:\n  - host: {name: a}\n"),
            "servers.yaml:2:11: 'host' must be a string, got a mapping");
  EXPECT_EQ(error_of("- host: a\n"),
            "servers.yaml:1:1: the top level must be a mapping with a 'servers' list, got a "
            "list");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalert_thresholds: {offset_ms: .inf}\n"),
            "servers.yaml:2:31: 'offset_ms' must be a number of milliseconds greater than 0, "
            "got '.inf'");
}

TEST(ConfigErrors, OutOfRange) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 0\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got '0'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 65536\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got '65536'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 99999999999999999999999\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got "
            "'99999999999999999999999'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    version: 2\n"),
            "servers.yaml:3:14: 'version' must be 3 or 4, got '2'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    stratum: 16\n"),
            "servers.yaml:3:14: 'stratum' must be an integer from 1 to 15, got '16'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    poll: 0\n"),
            "servers.yaml:3:11: 'poll' must be a number of seconds greater than 0 and at most "
            "131072 (2^17), got '0'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    poll: -64\n"),
            "servers.yaml:3:11: 'poll' must be a number of seconds greater than 0 and at most "
            "131072 (2^17), got '-64'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    poll: 131072.5\n"),
            "servers.yaml:3:11: 'poll' must be a number of seconds greater than 0 and at most "
            "131072 (2^17), got '131072.5'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalert_thresholds:\n  delay_ms: 0\n"),
            "servers.yaml:3:13: 'delay_ms' must be a number of milliseconds greater than 0, "
            "got '0'");
}

TEST(ConfigErrors, PollMinAboveMax) {
  EXPECT_EQ(error_of("servers: [{host: a}]\npoll:\n  min: 128\n  max: 64\n"),
            "servers.yaml:3:8: poll 'min' (128 s) is greater than 'max' (64 s)");
  EXPECT_EQ(error_of("servers: [{host: a}]\npoll:\n  min: 2048\n"),
            "servers.yaml:3:8: poll 'min' (2048 s) is greater than 'max' (1024 s, the default)");
  EXPECT_EQ(error_of("servers: [{host: a}]\npoll:\n  max: 32\n"),
            "servers.yaml:3:8: poll 'min' (64 s, the default) is greater than 'max' (32 s)");
}

TEST(ConfigErrors, MissingHostAndMissingValues) {
  EXPECT_EQ(error_of("servers:\n  - name: lab\n    port: 123\n"),
            "servers.yaml:2:5: server entry has no 'host' (the name or address to monitor)");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port:\n"),
            "servers.yaml:3:5: 'port' has no value (expected an integer from 1 to 65535)");
  EXPECT_EQ(error_of("servers:\n  - host:\n"),
            "servers.yaml:2:5: 'host' has no value "
            "(expected a string)");
  // A null node has no position of its own in yaml-cpp, so point at the list.
  EXPECT_EQ(error_of("servers:\n  - host: a\n  -\n"),
            "servers.yaml:2:3: 'servers' entry 2 is empty ('-' with nothing after it)");
}

TEST(ConfigErrors, DuplicateNames) {
  EXPECT_EQ(error_of("servers:\n"
                     "  - host: ntp.example\n"
                     "  - host: ntp.example\n"
                     "    port: 1123\n"),
            "servers.yaml:3:11: duplicate server name 'ntp.example' (also used by the entry at "
            "line 2); give each entry a distinct 'name'");
  EXPECT_EQ(error_of("servers:\n"
                     "  - host: a.example\n"
                     "    name: lab\n"
                     "  - host: b.example\n"
                     "    name: lab\n"),
            "servers.yaml:5:11: duplicate server name 'lab' (also used by the entry at line 2); "
            "give each entry a distinct 'name'");
  // An explicit name equal to another entry's default name is a clash too.
  EXPECT_EQ(error_of("servers:\n  - host: a.example\n  - host: b.example\n    name: a.example\n"),
            "servers.yaml:4:11: duplicate server name 'a.example' (also used by the entry at "
            "line 2); give each entry a distinct 'name'");
  // Distinct names for the same host are fine (for example two ports).
  const auto ok = parse_config(
      "servers:\n  - {host: a, name: a-123}\n  - {host: a, port: 1123, name: a-1123}\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->servers.size(), 2u);
}

TEST(ConfigErrors, DuplicateMappingKeys) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: 1\n    port: 2\n"),
            "servers.yaml:4:5: duplicate key 'port' in server entry (first set at line 3)");
  EXPECT_EQ(error_of("servers:\n  - host: a\nservers:\n  - host: b\n"),
            "servers.yaml:3:1: duplicate key 'servers' at the top level (first set at line 1)");
}

TEST(ConfigErrors, EmptyOrMissingServers) {
  EXPECT_EQ(error_of("servers: []\n"),
            "servers.yaml:1:10: 'servers' is empty; list at least one server");
  EXPECT_EQ(error_of("servers:\n"),
            "servers.yaml:1:1: 'servers' has no value (expected a list of servers)");
  EXPECT_EQ(error_of("alert_thresholds: {offset_ms: 5}\n"),
            "servers.yaml: missing required key 'servers' (the list of servers to monitor) or "
            "'server_lists' (files listing them)");
  EXPECT_EQ(error_of(""),
            "servers.yaml: the file is empty; expected a mapping with a 'servers' list");
  EXPECT_EQ(error_of("# only a comment\n"),
            "servers.yaml: the file is empty; expected a mapping with a 'servers' list");
}

TEST(ConfigErrors, YamlSyntaxErrors) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n\tport: 1\n"),
            "servers.yaml:3:1: YAML syntax error: illegal tab when looking for indentation");
  EXPECT_EQ(error_of("servers:\n  - host: a\n   port: 1\n"),
            "servers.yaml:3:4: YAML syntax error: end of sequence not found");
  EXPECT_EQ(error_of("servers: [{host: a}\n"),
            "servers.yaml:2:1: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(error_of("servers: [{host: a}]\n---\nservers: [{host: b}]\n"),
            "servers.yaml:2:1: a second YAML document ('---') is not allowed; put everything "
            "in one");
  // A stray ',' outside a flow collection made yaml-cpp 0.7's LoadAll allocate forever.
  EXPECT_EQ(error_of(","), "servers.yaml:1:1: YAML syntax error: unexpected ','");
  EXPECT_EQ(error_of("\"servers\",\n"), "servers.yaml:1:10: YAML syntax error: unexpected ','");
  EXPECT_EQ(error_of(",servers: [{host: a}]\n"),
            "servers.yaml:1:1: YAML syntax error: unexpected ','");
}

TEST(ConfigErrors, EveryErrorIsReportedInFileOrder) {
  const auto all = errors_of(
      "servers:\n"               // 1
      "  - host: a.example\n"    // 2
      "    stratm: 2\n"          // 3
      "    port: 70000\n"        // 4
      "  - name: no-host\n"      // 5
      "  - host: a.example\n"    // 6
      "    version: five\n"      // 7
      "  - host: b.example\n"    // 8
      "    alert_thresholds:\n"  // 9
      "      offset_ms: -1\n"    // 10
      "      delay_ms: \"9\"\n"  // 11
      "poll:\n"                  // 12
      "  min: 0\n"               // 13
      "alert_thresholds:\n"      // 14
      "  offset_ms: fifty\n");   // 15
  const std::vector<std::string> expected = {
      "servers.yaml:3:5: unknown key 'stratm' in server entry (expected one of: host, pool, "
      "name, port, version, stratum, poll, alert_thresholds, max_addresses, nts, "
      "ntske_port, ca_file, key)",
      "servers.yaml:4:11: 'port' must be an integer from 1 to 65535, got '70000'",
      "servers.yaml:5:5: server entry has no 'host' (the name or address to monitor)",
      "servers.yaml:6:11: duplicate server name 'a.example' (also used by the entry at line 2); "
      "give each entry a distinct 'name'",
      "servers.yaml:7:14: 'version' must be 3 or 4, got 'five'",
      "servers.yaml:10:18: 'offset_ms' must be a number of milliseconds greater than 0, got "
      "'-1'",
      "servers.yaml:11:17: 'delay_ms' must be a number of milliseconds greater than 0, got the "
      "quoted string \"9\"",
      "servers.yaml:13:8: 'min' must be a number of seconds greater than 0 and at most 131072 "
      "(2^17), got '0'",
      "servers.yaml:15:14: 'offset_ms' must be a number of milliseconds greater than 0, got "
      "'fifty'",
  };
  EXPECT_EQ(all, expected);
}

TEST(ConfigErrors, ErrorFieldsAndFormatting) {
  const auto result = parse_config("servers:\n  - host: a\n    port: 0\n", "x.yaml");
  ASSERT_FALSE(result.ok());
  const auto errors = result.error();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, "x.yaml");
  EXPECT_EQ(errors[0].line, 3);
  EXPECT_EQ(errors[0].column, 11);
  EXPECT_EQ((ConfigError{"f", 0, 0, "m"}.to_string()), "f: m");
  EXPECT_EQ((ConfigError{"f", 4, 0, "m"}.to_string()), "f:4: m");
  EXPECT_EQ((ConfigError{"f", 4, 2, "m"}.to_string()), "f:4:2: m");
}

TEST(ConfigErrors, ValuesInMessagesStayOnOneLine) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n    port: |\n      1\n      2\n"),
            "servers.yaml:3:11: 'port' must be an integer from 1 to 65535, got the quoted string "
            "\"1\\x0a2\\x0a\"");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    " + std::string(60, 'k') + ": 1\n"),
            "servers.yaml:3:5: unknown key '" + std::string(40, 'k') +
                "...' in server entry (expected one of: host, pool, name, port, version, "
                "stratum, poll, alert_thresholds, max_addresses, nts, "
                "ntske_port, ca_file, key)");
}

TEST(ConfigRobustness, HostileInputNeverThrows) {
  const std::vector<std::string> inputs = {
      std::string(5000, '['),
      "servers: " + std::string(5000, '{'),
      "a: &x [*x]\n",
      "servers: *nothing\n",
      "servers: [&e {host: a}, *e]\n",
      "? [a, b]\n: c\n",
      "servers:\n  - ? {a: b}\n    : c\n",
      std::string("servers:\0\n", 10),
      "\xff\xfe\x00s",
      "%YAML 1.2\n%TAG ! tag:x,2000:\n---\nservers: [{host: !x a}]\n",
      "servers: [{host: a, port: !!int 5}]\n",
      "servers: !!map [1]\n",
  };
  for (const auto& input : inputs) {
    EXPECT_NO_THROW({
      const auto result = parse_config(input);
      if (!result.ok()) {
        EXPECT_FALSE(result.error().empty());
      }
    }) << input;
  }
}

TEST(ConfigRobustness, AliasOfAnEntryIsADuplicateName) {
  EXPECT_EQ(error_of("servers:\n  - &e {host: a}\n  - *e\n"),
            "servers.yaml:2:15: duplicate server name 'a' (also used by the entry at line 2); "
            "give each entry a distinct 'name'");
}

TEST(ConfigFiles, MissingFileIsOneClearError) {
  const auto result = load_config_file("/nonexistent/ntp-monitor.yaml");
  EXPECT_EQ(messages(result), std::vector<std::string>{"/nonexistent/ntp-monitor.yaml: cannot "
                                                       "open: No such file or directory"});
}

TEST(ConfigFiles, DirectoryIsOneClearError) {
  const auto result = load_config_file(NTPMON_SOURCE_DIR "/config");
  EXPECT_EQ(messages(result), std::vector<std::string>{
                                  NTPMON_SOURCE_DIR "/config: is a directory, not a regular file"});
}

TEST(ConfigFiles, OversizedFileIsRefused) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("ntpmon_config_test_big_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "servers: [{host: a}]\n";
    out << std::string(2 * 1024 * 1024, '#') << "\n";
  }
  const auto result = load_config_file(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(
      messages(result),
      std::vector<std::string>{path.string() + ": the file is larger than 1024 KiB; this is not a "
                                               "configuration file"});
}

TEST(ConfigFiles, FileErrorsCarryThePath) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("ntpmon_config_test_bad_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "servers:\n  - host: a\n    port: 0\n";
  }
  const auto result = load_config_file(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(messages(result),
            std::vector<std::string>{path.string() +
                                     ":3:11: 'port' must be an integer from 1 to 65535, got '0'"});
}

// ---- Daemon keys: alerts, selection, dns, pool ----------------------------------------------

TEST(ConfigDaemon, DefaultsWhenTheKeysAreAbsent) {
  const auto result = parse_config(kSeed);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->alerts.hold, 3);
  EXPECT_FALSE(result->alerts.webhook.has_value());
  EXPECT_EQ(result->selection.interval_s, 1.0);
  EXPECT_EQ(result->dns.refresh_s, 3600.0);
  EXPECT_EQ(result->dns.timeout_s, 5.0);
  EXPECT_EQ(result->requests.max_in_flight, 4096);
  EXPECT_EQ(result->requests.source_ports, 4);
  EXPECT_EQ(result->requests.source_port_lifetime_s, 30.0);
  EXPECT_EQ(result->requests.source_port_requests, 65536);
  EXPECT_FALSE(result->poll_min_explicit);
  EXPECT_FALSE(result->servers[0].pool);
  EXPECT_EQ(result->servers[0].max_addresses, 0);
}

TEST(ConfigDaemon, EveryKeyParsed) {
  const auto result = parse_config(
      "servers:\n"
      "  - pool: pool.ntp.org\n"
      "    max_addresses: 6\n"
      "  - pool: 2.debian.pool.ntp.org\n"
      "  - host: ntp1.example\n"
      "alerts:\n"
      "  hold: 5\n"
      "  webhook:\n"
      "    url: http://127.0.0.1:9093/api/v1/alerts\n"
      "    timeout_s: 2.5\n"
      "    queue_size: 10\n"
      "selection: {interval_s: 0.5}\n"
      "dns: {refresh_s: 600, timeout_s: 2.5}\n"
      "requests: {max_in_flight: 64, source_ports: 2, source_port_lifetime_s: 2.5,\n"
      "           source_port_requests: 0}\n"
      "poll: {min: 16}\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  const Config& c = *result;
  ASSERT_EQ(c.servers.size(), 3u);
  EXPECT_TRUE(c.servers[0].pool);
  EXPECT_EQ(c.servers[0].host, "pool.ntp.org");
  EXPECT_EQ(c.servers[0].name, "pool.ntp.org");
  EXPECT_EQ(c.servers[0].max_addresses, 6);
  EXPECT_TRUE(c.servers[1].pool);
  EXPECT_EQ(c.servers[1].max_addresses, kDefaultPoolAddresses);
  EXPECT_EQ(kDefaultPoolAddresses, 4);
  EXPECT_FALSE(c.servers[2].pool);
  EXPECT_EQ(c.servers[2].max_addresses, 0);
  EXPECT_EQ(c.alerts.hold, 5);
  ASSERT_TRUE(c.alerts.webhook.has_value());
  EXPECT_EQ(c.alerts.webhook->url, "http://127.0.0.1:9093/api/v1/alerts");
  EXPECT_EQ(c.alerts.webhook->timeout_s, 2.5);
  EXPECT_EQ(c.alerts.webhook->queue_size, 10);
  EXPECT_EQ(c.selection.interval_s, 0.5);
  EXPECT_EQ(c.dns.refresh_s, 600.0);
  EXPECT_EQ(c.dns.timeout_s, 2.5);
  EXPECT_EQ(c.requests.max_in_flight, 64);
  EXPECT_EQ(c.requests.source_ports, 2);
  EXPECT_EQ(c.requests.source_port_lifetime_s, 2.5);
  EXPECT_EQ(c.requests.source_port_requests, 0);
  EXPECT_TRUE(c.poll_min_explicit);
  EXPECT_EQ(c.poll.min_poll_s, 16.0);
}

TEST(ConfigDaemon, WebhookDefaults) {
  const auto result =
      parse_config("servers: [{host: a}]\nalerts: {webhook: {url: 'https://[::1]/hook'}}\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  ASSERT_TRUE(result->alerts.webhook.has_value());
  EXPECT_EQ(result->alerts.webhook->url, "https://[::1]/hook");
  EXPECT_EQ(result->alerts.webhook->timeout_s, 5.0);
  EXPECT_EQ(result->alerts.webhook->queue_size, 256);
  EXPECT_EQ(result->alerts.hold, 3);
}

TEST(ConfigDaemon, PollMaxAloneIsNotAnExplicitMinimum) {
  const auto result = parse_config("servers: [{host: a}]\npoll: {max: 2048}\n");
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->poll_min_explicit);
}

TEST(ConfigDaemon, OffsetReferenceIsConsensusUnlessLocalIsAsked) {
  const auto by_default = parse_config("servers: [{host: a}]\n");
  ASSERT_TRUE(by_default.ok());
  EXPECT_EQ(by_default->alerts.offset_reference, OffsetReference::kConsensus);
  const auto local = parse_config("servers: [{host: a}]\nalerts: {offset_reference: local}\n");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->alerts.offset_reference, OffsetReference::kLocal);
  const auto consensus =
      parse_config("servers: [{host: a}]\nalerts: {offset_reference: consensus}\n");
  ASSERT_TRUE(consensus.ok());
  EXPECT_EQ(consensus->alerts.offset_reference, OffsetReference::kConsensus);
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts: {offset_reference: system}\n"),
            "servers.yaml:2:28: 'offset_reference' must be consensus or local, got 'system'");
}

TEST(ConfigDaemon, MetricsPerServerIsStandardUnlessAnotherModeIsAsked) {
  const auto by_default = parse_config("servers: [{host: a}]\n");
  ASSERT_TRUE(by_default.ok());
  EXPECT_EQ(by_default->metrics.per_server, PerServerMetrics::kStandard);
  for (const auto& [text, mode] : {std::pair{"full", PerServerMetrics::kFull},
                                   std::pair{"standard", PerServerMetrics::kStandard},
                                   std::pair{"minimal", PerServerMetrics::kMinimal}}) {
    const auto parsed =
        parse_config(std::string("servers: [{host: a}]\nmetrics: {per_server: ") + text + "}\n");
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(parsed->metrics.per_server, mode);
    EXPECT_STREQ(to_string(mode), text);
  }
  EXPECT_EQ(error_of("servers: [{host: a}]\nmetrics: {per_server: dense}\n"),
            "servers.yaml:2:23: 'per_server' must be full, standard or minimal, got 'dense'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nmetrics: {per_srv: full}\n"),
            "servers.yaml:2:11: unknown key 'per_srv' in metrics (expected one of: per_server)");
  EXPECT_EQ(error_of("servers: [{host: a}]\nmetrics: full\n"),
            "servers.yaml:2:10: 'metrics' must be a mapping with per_server, got 'full'");
}

TEST(ConfigDaemon, Errors) {
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts: {hold: 0}\n"),
            "servers.yaml:2:16: 'hold' must be an integer from 1 to 100 (polls), got '0'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts: {holdd: 2}\n"),
            "servers.yaml:2:10: unknown key 'holdd' in alerts (expected one of: hold, webhook, "
            "certificate_expiry_days, offset_reference)");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts:\n  webhook: {timeout_s: 1}\n"),
            "servers.yaml:3:3: 'webhook' has no 'url' (where to POST alerts)");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts:\n  webhook: {url: ftp://x/}\n"),
            "servers.yaml:3:18: 'url' 'ftp://x/' must start with http:// or https://");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts:\n  webhook: {url: 'http://h:99999/'}\n"),
            "servers.yaml:3:18: 'url' 'http://h:99999/' has an invalid port");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts:\n  webhook: {url: 'http:///x'}\n"),
            "servers.yaml:3:18: 'url' 'http:///x' has no valid host");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts:\n  webhook: {url: http://h, queue_size: 0}\n"),
            "servers.yaml:3:40: 'queue_size' must be an integer from 1 to 100000, got '0'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts:\n  webhook: {url: http://h, timeout_s: 0}\n"),
            "servers.yaml:3:39: 'timeout_s' must be a number of seconds greater than 0 and at "
            "most 300, got '0'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nselection: {interval_s: -1}\n"),
            "servers.yaml:2:25: 'interval_s' must be a number of seconds greater than 0 and at "
            "most 3600, got '-1'");
  EXPECT_EQ(error_of("servers: [{host: a}]\ndns: {refresh_s: 0.5}\n"),
            "servers.yaml:2:18: 'refresh_s' must be a number of seconds from 1 to 604800 (7 "
            "days), got '0.5'");
  EXPECT_EQ(error_of("servers: [{host: a}]\ndns: {timeout_s: 0.05}\n"),
            "servers.yaml:2:18: 'timeout_s' must be a number of seconds from 0.1 to 60, got "
            "'0.05'");
  EXPECT_EQ(error_of("servers: [{host: a}]\ndns: {timeout_s: 61}\n"),
            "servers.yaml:2:18: 'timeout_s' must be a number of seconds from 0.1 to 60, got '61'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nrequests: {max_in_flight: 0}\n"),
            "servers.yaml:2:27: 'max_in_flight' must be an integer from 1 to 1000000 "
            "(requests), got '0'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nrequests: {in_flight: 5}\n"),
            "servers.yaml:2:12: unknown key 'in_flight' in requests (expected one of: "
            "max_in_flight, source_ports, source_port_lifetime_s, source_port_requests)");
  EXPECT_EQ(error_of("servers: [{host: a}]\nrequests: {source_ports: 0}\n"),
            "servers.yaml:2:26: 'source_ports' must be an integer from 1 to 64 (sockets), got "
            "'0'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nrequests: {source_port_lifetime_s: 0}\n"),
            "servers.yaml:2:36: 'source_port_lifetime_s' must be a number of seconds greater "
            "than 0 and at most 86400, got '0'");
  EXPECT_EQ(error_of("servers: [{host: a}]\ndns: 5\n"),
            "servers.yaml:2:6: 'dns' must be a mapping with refresh_s, got '5'");
}

TEST(ConfigDaemon, PoolErrors) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n    pool: b\n"),
            "servers.yaml:3:5: a server entry has either 'host' or 'pool', not both (first is at "
            "line 2)");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    max_addresses: 2\n"),
            "servers.yaml:3:5: 'max_addresses' applies to 'pool' entries only (a 'host' entry "
            "monitors every address of the host)");
  EXPECT_EQ(error_of("servers:\n  - pool: a\n    max_addresses: 0\n"),
            "servers.yaml:3:20: 'max_addresses' must be an integer from 1 to 64, got '0'");
  EXPECT_EQ(error_of("servers:\n  - pool: a:123\n"),
            "servers.yaml:2:11: 'pool' 'a:123' looks like host:port; put the port in the 'port' "
            "key");
  // A pool's name defaults to the pool host, so it collides with a host entry of that name.
  EXPECT_EQ(error_of("servers:\n  - pool: p.example\n  - host: p.example\n"),
            "servers.yaml:3:11: duplicate server name 'p.example' (also used by the entry at "
            "line 2); give each entry a distinct 'name'");
}

// ---- Authenticated time (nts, key, key_file, certificate_expiry_days) -----------------------

// A readable file for ca_file / key_file values, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/ntpmon-config-test-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    if (fd >= 0) close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigAuth, DefaultsAreUnauthenticated) {
  const ServerConfig s = one_server("host: a");
  EXPECT_FALSE(s.nts);
  EXPECT_EQ(s.ntske_port, 4460);
  EXPECT_EQ(s.ca_file, "");
  EXPECT_FALSE(s.key_id.has_value());
  const auto result = parse_config("servers: [{host: a}]\n");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->key_file, "");
  EXPECT_EQ(result->key_format, KeyFormat::kAuto);
  EXPECT_EQ(result->alerts.certificate_expiry_days, 14);
}

TEST(ConfigAuth, NtsWithPortAndCaFile) {
  const TempFile ca("-----BEGIN CERTIFICATE-----\n");
  const ServerConfig s = one_server(
      "host: nts.example\n    nts: true\n    ntske_port: 4461\n    ca_file: " + ca.path());
  EXPECT_TRUE(s.nts);
  EXPECT_EQ(s.ntske_port, 4461);
  EXPECT_EQ(s.ca_file, ca.path());
  EXPECT_EQ(s.version, 4);
  EXPECT_FALSE(one_server("host: a\n    nts: false").nts);
}

TEST(ConfigAuth, KeyWithKeyFileAndFormat) {
  const TempFile keys("1 SHA1 HEX:00112233445566778899aabbccddeeff00112233\n");
  const auto result =
      parse_config("servers:\n  - host: a\n    key: 4294967295\nkey_file: " + keys.path() +
                   "\nkey_format: ntpsec\n"
                   "alerts: {certificate_expiry_days: 0}\n");
  ASSERT_TRUE(result.ok()) << messages(result).front();
  EXPECT_EQ(result->servers[0].key_id, 4294967295u);
  EXPECT_EQ(result->servers[0].key_line, 3);
  EXPECT_EQ(result->servers[0].key_column, 10);
  EXPECT_EQ(result->key_file, keys.path());
  EXPECT_EQ(result->key_format, KeyFormat::kNtpsec);
  EXPECT_EQ(result->alerts.certificate_expiry_days, 0);
}

TEST(ConfigAuth, RelativePathsAreTakenFromTheConfigDirectory) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "ntpmon-auth-cfg";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "chrony.keys") << "1 MD5 HEX:0011\n";
  std::ofstream(dir / "servers.yaml") << "servers: [{host: a, key: 1}]\nkey_file: chrony.keys\n";
  const auto result = load_config_file((dir / "servers.yaml").string());
  ASSERT_TRUE(result.ok()) << messages(result).front();
  EXPECT_EQ(result->key_file, (dir / "chrony.keys").string());
  std::filesystem::remove_all(dir);
}

TEST(ConfigAuth, Errors) {
  EXPECT_EQ(error_of("servers:\n  - host: a\n    nts: yes\n"),
            "servers.yaml:3:10: 'nts' must be true or false, got 'yes'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    nts: \"true\"\n"),
            "servers.yaml:3:10: 'nts' must be true or false, got the quoted string \"true\"");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    ntske_port: 4461\n"),
            "servers.yaml:3:5: 'ntske_port' applies only with 'nts: true'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    ca_file: /etc/ssl/ca.pem\n"),
            "servers.yaml:3:5: 'ca_file' applies only with 'nts: true'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    nts: true\n    ntske_port: 0\n"),
            "servers.yaml:4:17: 'ntske_port' must be an integer from 1 to 65535, got '0'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    nts: true\n    ca_file: /nonexistent/ca.pem\n"),
            "servers.yaml:4:14: 'ca_file' '/nonexistent/ca.pem' cannot be read: No such file or "
            "directory");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    nts: true\n    version: 3\n"),
            "servers.yaml:4:14: 'version' 3 cannot carry NTS ('nts: true' needs version 4)");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    key: 0\n"),
            "servers.yaml:3:10: 'key' must be a key id from 1 to 4294967295 (in 'key_file'), "
            "got '0'");
  EXPECT_EQ(error_of("servers:\n  - host: a\n    key: 7\n"),
            "servers.yaml:3:10: 'key' 7 needs a top-level 'key_file' (the file holding the key)");
  EXPECT_EQ(error_of("servers: [{host: a}]\nkey_file: /nonexistent/keys\n"),
            "servers.yaml:2:11: 'key_file' '/nonexistent/keys' cannot be read: No such file or "
            "directory");
  EXPECT_EQ(error_of("servers: [{host: a}]\nkey_format: ntpd\n"),
            "servers.yaml:2:13: 'key_format' must be auto, chrony or ntpsec, got 'ntpd'");
  EXPECT_EQ(error_of("servers: [{host: a}]\nalerts: {certificate_expiry_days: 3651}\n"),
            "servers.yaml:2:35: 'certificate_expiry_days' must be an integer from 0 (off) to "
            "3650, got '3651'");
  const TempFile keys("1 MD5 HEX:0011\n");
  EXPECT_EQ(
      error_of("servers:\n  - host: a\n    nts: true\n    key: 1\nkey_file: " + keys.path() + "\n"),
      "servers.yaml:4:5: a server entry authenticates with either 'nts: true' or 'key', "
      "not both");
}

}  // namespace
}  // namespace ntpmon::config

namespace ntpmon::config {
namespace {

TEST(ConfigHistory, LiveSamplesDefaultsTo600AndAcceptsZero) {
  const auto plain = parse_config("servers:\n- host: 192.0.2.1\n", "t.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->history.live_samples, 600);
  const auto none =
      parse_config("servers:\n- host: 192.0.2.1\nhistory: {live_samples: 0}\n", "t.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->history.live_samples, 0);
  const auto bad =
      parse_config("servers:\n- host: 192.0.2.1\nhistory: {live_samples: 100001}\n", "t.yaml");
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(bad.error().size(), 1u);
  EXPECT_EQ(bad.error()[0].line, 3);
  EXPECT_NE(bad.error()[0].message.find("an integer from 0 (none) to 100000"), std::string::npos)
      << bad.error()[0].message;
}

}  // namespace
}  // namespace ntpmon::config
