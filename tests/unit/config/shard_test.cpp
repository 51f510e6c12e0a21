// Unit tests of sharding (config/shard.hpp): the rendezvous assignment's coverage, movement and
// stability, the K/N and host-name parsers, how flags and the file's block settle the shard, and
// the `shard:` / `vantage:` keys of the configuration file.
#include "config/shard.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace ntpmon::config {
namespace {

std::vector<std::string> names(std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back("server-" + std::to_string(i) + ".example");
  return out;
}

TEST(ShardAssignment, EveryNameIsInExactlyOneShard) {
  const auto all = names(1000);
  for (std::uint32_t count : {1U, 2U, 3U, 4U, 7U}) {
    std::vector<std::size_t> sizes(count, 0);
    std::set<std::string> seen;
    for (std::uint32_t k = 0; k < count; ++k) {
      Config config;
      for (const auto& name : all) {
        ServerConfig server;
        server.name = name;
        config.servers.push_back(server);
      }
      apply_shard(config, Shard{k, count});
      EXPECT_EQ(config.fleet_servers, all.size());
      EXPECT_EQ(config.shard_active, (Shard{k, count}));
      sizes[k] = config.servers.size();
      for (const auto& server : config.servers) {
        EXPECT_TRUE(seen.insert(server.name).second) << server.name << " in two shards";
        EXPECT_EQ(shard_of(server.name, count), k);
      }
    }
    EXPECT_EQ(seen.size(), all.size()) << count << " shards";
    // Balanced within a few standard deviations of a binomial split.
    for (std::uint32_t k = 0; k < count; ++k) {
      const double expected = 1000.0 / count;
      EXPECT_NEAR(static_cast<double>(sizes[k]), expected, 5 * std::sqrt(expected) + 1)
          << "shard " << k << " of " << count;
    }
  }
}

TEST(ShardAssignment, ThreeToFourMovesAQuarterAndOnlyToTheNewShard) {
  std::size_t moved = 0;
  for (const auto& name : names(1000)) {
    const std::uint32_t before = shard_of(name, 3);
    const std::uint32_t after = shard_of(name, 4);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 3U) << name << " moved between two old shards";
    }
  }
  const double fraction = static_cast<double>(moved) / 1000.0;
  EXPECT_GE(fraction, 0.20);
  EXPECT_LE(fraction, 0.30);
}

TEST(ShardAssignment, IsStableAcrossBuildsAndPlatforms) {
  // Fixed values: a change of the hash moves servers between running replicas of different
  // versions, so it must be deliberate (and documented) rather than a side effect.
  EXPECT_EQ(shard_name_hash(""), shard_name_hash(""));
  EXPECT_NE(shard_name_hash("a"), shard_name_hash("b"));
  EXPECT_NE(shard_name_hash("abcdefgh"), shard_name_hash(std::string_view("abcdefgh\0", 9)));
  const std::vector<std::uint32_t> expected = {2, 1, 2, 1, 2};
  std::vector<std::uint32_t> got;
  for (const char* name : {"time.example.org", "ntp1.example.net", "127.0.0.1", "pool-a", "x"}) {
    got.push_back(shard_of(name, 5));
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(shard_name_hash("time.example.org"), 0x5a9afdd83a40b7b0ULL);
  EXPECT_EQ(shard_weight(shard_name_hash("time.example.org"), 2), 0xc4e320ce44e166a3ULL);
  // One shard: everything in shard 0.
  EXPECT_EQ(shard_of("anything", 1), 0U);
}

TEST(ShardParse, AcceptsKOverN) {
  const auto s = parse_shard("2/3");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (Shard{2, 3}));
  EXPECT_EQ(*parse_shard("0/1"), (Shard{0, 1}));
}

TEST(ShardParse, RejectsWhatIsNotAShard) {
  EXPECT_EQ(parse_shard("3/3").error(),
            "shard 3 does not exist among 3 (K counts from 0: K/N needs K < N)");
  EXPECT_EQ(parse_shard("1/0").error(), "the shard count N must be at least 1 (K/N, got 0)");
  for (const char* bad :
       {"", "3", "/3", "3/", "a/b", "-1/3", "1/-3", "1 /3", "1/3/4", "+1/3", "1/1001", "0x1/3"}) {
    const auto s = parse_shard(bad);
    EXPECT_FALSE(s.ok()) << bad;
  }
  EXPECT_EQ(parse_shard("x/3").error(),
            "'x/3' is not K/N (shard K of N: two decimal numbers, N from 1 to 1000, K from 0 to "
            "N-1)");
}

TEST(ShardHostname, TakesTheTrailingOrdinalOfTheFirstLabel) {
  EXPECT_EQ(hostname_ordinal("ntp-monitor-2"), 2U);
  EXPECT_EQ(hostname_ordinal("ntp-monitor-12.ntp-monitor.default.svc.cluster.local"), 12U);
  EXPECT_EQ(hostname_ordinal("web0"), 0U);
  EXPECT_EQ(hostname_ordinal("ntp-monitor"), std::nullopt);
  EXPECT_EQ(hostname_ordinal("vm.example3"), std::nullopt);
  EXPECT_EQ(hostname_ordinal(""), std::nullopt);
  EXPECT_EQ(hostname_ordinal("n-1234567890"), std::nullopt);
}

TEST(ShardResolve, FlagsOverrideTheFile) {
  const std::optional<ShardSettings> file = ShardSettings{1, 4};
  ShardFlags flags;
  EXPECT_EQ(*resolve_shard(flags, std::nullopt), (Shard{0, 1}));
  EXPECT_EQ(*resolve_shard(flags, file), (Shard{1, 4}));
  flags.shard = Shard{2, 3};
  EXPECT_EQ(*resolve_shard(flags, file), (Shard{2, 3}));

  ShardFlags host;
  host.from_hostname = true;
  host.hostname = "ntp-monitor-3";
  EXPECT_EQ(*resolve_shard(host, file), (Shard{3, 4}));  // N from the file
  host.count = 5;
  EXPECT_EQ(*resolve_shard(host, file), (Shard{3, 5}));  // --shard-count wins
  host.count = 3;
  EXPECT_EQ(resolve_shard(host, file).error(),
            "--shard-from-hostname: the host name 'ntp-monitor-3' gives shard 3, but there are "
            "only 3 shards (0 to 2)");
  host.count.reset();
  EXPECT_EQ(resolve_shard(host, std::nullopt).error(),
            "--shard-from-hostname needs the number of shards: --shard-count N or shard.count in "
            "the configuration file");
  host.hostname = "vm";
  EXPECT_EQ(resolve_shard(host, file).error(),
            "--shard-from-hostname: the host name 'vm' does not end in a number (a StatefulSet "
            "pod name such as ntp-monitor-2)");

  const std::optional<ShardSettings> count_only = ShardSettings{std::nullopt, 4};
  EXPECT_FALSE(resolve_shard(ShardFlags{}, count_only).ok());
}

TEST(ShardConfig, ReadsTheShardAndVantageKeys) {
  const auto parsed =
      parse_config("servers: [{host: a}]\nshard: {index: 2, count: 3}\nvantage: eu-west\n");
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->shard.has_value());
  EXPECT_EQ(parsed->shard->index, 2U);
  EXPECT_EQ(parsed->shard->count, 3U);
  EXPECT_EQ(parsed->vantage, "eu-west");

  const auto defaults = parse_config("servers: [{host: a}]\n");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->shard.has_value());
  EXPECT_EQ(defaults->vantage, "");
  EXPECT_EQ(defaults->shard_active, (Shard{0, 1}));

  const auto count_only = parse_config("servers: [{host: a}]\nshard: {count: 3}\n");
  ASSERT_TRUE(count_only.ok());
  EXPECT_FALSE(count_only->shard->index.has_value());
}

std::string only_error(const std::string& yaml) {
  const auto result = parse_config(yaml, "servers.yaml");
  EXPECT_FALSE(result.ok()) << yaml;
  if (result.ok() || result.error().size() != 1) return {};
  return result.error().front().to_string();
}

TEST(ShardConfig, ReportsBadShardBlocks) {
  EXPECT_EQ(only_error("servers: [{host: a}]\nshard: {index: 3, count: 3}\n"),
            "servers.yaml:2:16: 'index' must be an integer from 0 to 2 (this replica's shard; "
            "shards count from 0 up to count-1), got '3'");
  EXPECT_EQ(only_error("servers: [{host: a}]\nshard: {index: 0, count: 0}\n"),
            "servers.yaml:2:26: 'count' must be an integer from 1 to 1000 (shards), got '0'");
  EXPECT_EQ(only_error("servers: [{host: a}]\nshard: {index: 0}\n"),
            "servers.yaml:2:1: 'shard' needs 'count' (the number of shards the servers are split "
            "into)");
  EXPECT_EQ(only_error("servers: [{host: a}]\nshard: 1/3\n"),
            "servers.yaml:2:8: 'shard' must be a mapping with count and index, got '1/3'");
  EXPECT_EQ(only_error("servers: [{host: a}]\nshard: {index: 0, count: 2, size: 3}\n"),
            "servers.yaml:2:29: unknown key 'size' in shard (expected one of: index, count)");
  EXPECT_EQ(only_error("servers: [{host: a}]\nvantage: \"a\\tb\"\n"),
            "servers.yaml:2:10: 'vantage' must be a name of at most 128 bytes of UTF-8 without "
            "control characters, got the quoted string \"a\\x09b\"");
}

}  // namespace
}  // namespace ntpmon::config
