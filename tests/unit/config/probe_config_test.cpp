// Unit tests of the `probe:` section (docs/probe.md) and of the /probe target syntax.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/probe_target.hpp"

namespace ntpmon::config {
namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
  const auto result = parse_config(yaml, "servers.yaml");
  EXPECT_FALSE(result.ok()) << yaml;
  std::vector<std::string> out;
  if (!result.ok()) {
    for (const auto& e : result.error()) out.push_back(e.to_string());
  }
  return out;
}

Config parsed(const std::string& yaml) {
  auto result = parse_config(yaml, "servers.yaml");
  EXPECT_TRUE(result.ok()) << yaml << (result.ok() ? "" : result.error().front().to_string());
  return result.ok() ? std::move(*result) : Config{};
}

TEST(ProbeConfig, DefaultsWithoutTheSection) {
  const Config c = parsed("servers: [{host: a}]\n");
  EXPECT_EQ(c.probe.max_targets, 1000u);
  EXPECT_EQ(c.probe.target_ttl_s, 600.0);
  ASSERT_EQ(c.probe.modules.size(), 1u);
  const ProbeModule* m = c.probe.module("default");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->version, 4);
  EXPECT_FALSE(m->nts);
  EXPECT_FALSE(m->key_id);
  EXPECT_FALSE(m->poll);
  EXPECT_EQ(c.probe.module("nope"), nullptr);
}

TEST(ProbeConfig, ModulesAndLimits) {
  const Config c = parsed(
      "servers: [{host: a}]\n"
      "probe:\n"
      "  max_targets: 5\n"
      "  target_ttl_s: 2.5\n"
      "  modules:\n"
      "    v3: {version: 3}\n"
      "    slow:\n"
      "      poll: {min: 256, max: 2048}\n"
      "    plain:\n");
  EXPECT_EQ(c.probe.max_targets, 5u);
  EXPECT_EQ(c.probe.target_ttl_s, 2.5);
  ASSERT_EQ(c.probe.modules.size(), 4u);  // the built-in default stays
  EXPECT_EQ(c.probe.modules[0].name, "default");
  EXPECT_EQ(c.probe.module("v3")->version, 3);
  ASSERT_TRUE(c.probe.module("slow")->poll);
  EXPECT_EQ(c.probe.module("slow")->poll->min_poll_s, 256.0);
  EXPECT_EQ(c.probe.module("slow")->poll->max_poll_s, 2048.0);
  EXPECT_EQ(c.probe.module("plain")->version, 4);
  EXPECT_EQ(c.probe.module("slow")->line, 7);
}

TEST(ProbeConfig, RedefinedDefaultAndAuthentication) {
  const Config c = parsed(
      "servers: [{host: a}]\n"
      // Any readable regular file: the key file itself is read by the engine, not here.
      "key_file: " NTPMON_SOURCE_DIR
      "/config/servers.yaml\n"
      "probe:\n"
      "  max_targets: 0\n"
      "  modules:\n"
      "    default: {version: 3}\n"
      "    keyed: {key: 7}\n"
      "    secure: {nts: true, ntske_port: 4461}\n");
  EXPECT_EQ(c.probe.max_targets, 0u);
  EXPECT_EQ(c.probe.module("default")->version, 3);
  EXPECT_EQ(c.probe.module("keyed")->key_id, 7u);
  EXPECT_TRUE(c.probe.module("secure")->nts);
  EXPECT_EQ(c.probe.module("secure")->ntske_port, 4461);
}

TEST(ProbeConfig, Errors) {
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe: {max_targets: -1}\n"),
            std::vector<std::string>{"servers.yaml:2:22: 'max_targets' must be an integer from 0 "
                                     "(/probe off) to 100000, got '-1'"});
  EXPECT_EQ(
      errors_of("servers: [{host: a}]\nprobe: {target_ttl_s: 0}\n"),
      std::vector<std::string>{"servers.yaml:2:23: 'target_ttl_s' must be a number of "
                               "seconds greater than 0 and at most 604800 (7 days), got '0'"});
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe: {ttl: 5}\n"),
            std::vector<std::string>{"servers.yaml:2:9: unknown key 'ttl' in probe (expected one "
                                     "of: max_targets, target_ttl_s, modules)"});
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe:\n  modules:\n    m: {verison: 4}\n"),
            std::vector<std::string>{"servers.yaml:4:9: unknown key 'verison' in module 'm' "
                                     "(expected one of: version, nts, ntske_port, ca_file, key, "
                                     "poll)"});
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe:\n  modules:\n    'a b': {}\n"),
            std::vector<std::string>{"servers.yaml:4:5: module name 'a b' must be 1 to 64 "
                                     "letters, digits, '_', '-' or '.'"});
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe:\n  modules:\n    m: {key: 3}\n"),
            std::vector<std::string>{"servers.yaml:4:14: 'key' 3 needs a top-level 'key_file' "
                                     "(the file holding the key)"});
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe:\n  modules:\n    m: {version: 3, nts: true}\n"),
            std::vector<std::string>{"servers.yaml:4:18: 'version' 3 cannot carry NTS ('nts: "
                                     "true' needs version 4)"});
  EXPECT_EQ(
      errors_of("servers: [{host: a}]\nprobe:\n  modules:\n    m: {poll: {min: 99, max: 9}}\n"),
      std::vector<std::string>{"servers.yaml:4:21: poll 'min' (99 s) is greater than 'max' "
                               "(9 s)"});
  EXPECT_EQ(errors_of("servers: [{host: a}]\nprobe:\n  modules: [a]\n"),
            std::vector<std::string>{"servers.yaml:3:12: 'modules' must be a mapping of module "
                                     "names to settings, got a list"});
}

TEST(ProbeTargetSyntax, Accepted) {
  const auto check = [](std::string_view text, std::string_view host, std::uint16_t port) {
    const auto t = parse_probe_target(text);
    ASSERT_TRUE(t.ok()) << text << ": " << t.error();
    EXPECT_EQ(t->host, host) << text;
    EXPECT_EQ(t->port, port) << text;
  };
  check("ntp.example.org", "ntp.example.org", 123);
  check("ntp.example.org.", "ntp.example.org.", 123);
  check("192.0.2.1", "192.0.2.1", 123);
  check("192.0.2.1:10123", "192.0.2.1", 10123);
  check("[2001:db8::1]:123", "2001:db8::1", 123);
  check("[::1]", "::1", 123);
  check("[::1]:65535", "::1", 65535);
  check("2001:db8::1", "2001:db8::1", 123);  // unbracketed: no port
  check("[fe80::1%eth0]:1", "fe80::1%eth0", 1);
}

TEST(ProbeTargetSyntax, Refused) {
  const auto refused = [](std::string_view text) {
    const auto t = parse_probe_target(text);
    EXPECT_FALSE(t.ok()) << text;
    return t.ok() ? std::string() : t.error();
  };
  EXPECT_EQ(refused(""), "target is empty (expected HOST or HOST:PORT)");
  EXPECT_EQ(refused("a:0"), "target 'a:0' has an invalid port (expected 1 to 65535)");
  EXPECT_EQ(refused("a:65536"), "target 'a:65536' has an invalid port (expected 1 to 65535)");
  EXPECT_EQ(refused("a:"), "target 'a:' has an invalid port (expected 1 to 65535)");
  EXPECT_EQ(refused("a:+1"), "target 'a:+1' has an invalid port (expected 1 to 65535)");
  EXPECT_EQ(refused("a:0000123"), "target 'a:0000123' has an invalid port (expected 1 to 65535)");
  EXPECT_EQ(refused("[::1"), "target '[::1' has an unclosed '['");
  EXPECT_EQ(refused("[::1]x"), "target '[::1]x' has text after ']' that is not ':PORT'");
  EXPECT_EQ(refused("[::1]:"), "target '[::1]:' has an invalid port (expected 1 to 65535)");
  EXPECT_EQ(refused("[192.0.2.1]:123"),
            "target '[192.0.2.1]:123' is not a host name, an IPv4 address or a bracketed IPv6 "
            "address");
  EXPECT_FALSE(parse_probe_target("http://a/").ok());
  EXPECT_FALSE(parse_probe_target("a b").ok());
  EXPECT_FALSE(parse_probe_target("a/b").ok());
  EXPECT_FALSE(parse_probe_target("999.1.1.1").ok());
  EXPECT_FALSE(parse_probe_target("1:2:3").ok());
  EXPECT_FALSE(parse_probe_target(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(parse_probe_target("a\nb:1").ok());
  EXPECT_FALSE(parse_probe_target("-a").ok());
  // Bounded before any other check; the message does not echo the text.
  const std::string long_name(400, 'a');
  EXPECT_EQ(refused(long_name), "target is 400 bytes long (at most 300)");
  // Control bytes are shown escaped, not echoed.
  EXPECT_EQ(refused("\x1b[2J:1").find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace ntpmon::config
