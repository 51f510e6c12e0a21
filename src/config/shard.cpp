// Rendezvous hashing of server names to shards (shard.hpp says why and how).
#include "config/shard.hpp"

#include <charconv>
#include <vector>

namespace ntpmon::config {
namespace {

// splitmix64's finalizer (a bijection on 64-bit words with full avalanche): the mixer of both
// the name hash and the weights. The constants are part of the assignment: changing them moves
// servers between shards.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;  // 2^64 / golden ratio
constexpr std::uint64_t kNameSeed = 0x6e74706d6f6e0001ULL;

std::optional<std::uint32_t> decimal(std::string_view text, std::uint32_t max) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  std::uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

}  // namespace

std::uint64_t shard_name_hash(std::string_view name) {
  std::uint64_t h = kNameSeed;
  std::size_t i = 0;
  while (i < name.size()) {
    std::uint64_t word = 0;
    for (std::size_t b = 0; b < 8 && i < name.size(); ++b, ++i) {
      word |= std::uint64_t{static_cast<unsigned char>(name[i])} << (8U * b);
    }
    h = mix64(h + word + kGolden);
  }
  return mix64(h ^ static_cast<std::uint64_t>(name.size()));
}

std::uint64_t shard_weight(std::uint64_t name_hash, std::uint32_t index) {
  return mix64(name_hash ^ mix64(kGolden * (std::uint64_t{index} + 1)));
}

std::uint32_t shard_of(std::string_view name, std::uint32_t count) {
  const std::uint64_t h = shard_name_hash(name);
  std::uint32_t best = 0;
  std::uint64_t best_weight = shard_weight(h, 0);
  for (std::uint32_t k = 1; k < count; ++k) {
    const std::uint64_t w = shard_weight(h, k);
    if (w > best_weight) {
      best = k;
      best_weight = w;
    }
  }
  return best;
}

Result<Shard, std::string> parse_shard(std::string_view text) {
  const auto slash = text.find('/');
  const auto index = decimal(text.substr(0, slash), kMaxShardCount);
  const auto count = slash == std::string_view::npos
                         ? std::nullopt
                         : decimal(text.substr(slash + 1), kMaxShardCount);
  if (!index || !count) {
    return Err{std::string("'" + std::string(text) +
                           "' is not K/N (shard K of N: two decimal numbers, N from 1 to " +
                           std::to_string(kMaxShardCount) + ", K from 0 to N-1)")};
  }
  if (*count == 0) return Err{std::string("the shard count N must be at least 1 (K/N, got 0)")};
  if (*index >= *count) {
    return Err{std::string("shard " + std::to_string(*index) + " does not exist among " +
                           std::to_string(*count) + " (K counts from 0: K/N needs K < N)")};
  }
  return Shard{*index, *count};
}

std::optional<std::uint32_t> hostname_ordinal(std::string_view hostname) {
  const std::string_view label = hostname.substr(0, hostname.find('.'));
  std::size_t start = label.size();
  while (start > 0 && label[start - 1] >= '0' && label[start - 1] <= '9') --start;
  return decimal(label.substr(start), 999'999'999);
}

Result<Shard, std::string> resolve_shard(const ShardFlags& flags,
                                         const std::optional<ShardSettings>& file) {
  if (flags.shard) return *flags.shard;
  if (flags.from_hostname) {
    const auto ordinal = hostname_ordinal(flags.hostname);
    if (!ordinal) {
      return Err{
          std::string("--shard-from-hostname: the host name '" + flags.hostname +
                      "' does not end in a number (a StatefulSet pod name such as ntp-monitor-2)")};
    }
    const std::optional<std::uint32_t> count =
        flags.count ? flags.count : (file ? std::optional(file->count) : std::nullopt);
    if (!count) {
      return Err{std::string(
          "--shard-from-hostname needs the number of shards: --shard-count N or shard.count in "
          "the configuration file")};
    }
    if (*ordinal >= *count) {
      return Err{std::string("--shard-from-hostname: the host name '" + flags.hostname +
                             "' gives shard " + std::to_string(*ordinal) + ", but there are only " +
                             std::to_string(*count) + " shards (0 to " +
                             std::to_string(*count - 1) + ")")};
    }
    return Shard{*ordinal, *count};
  }
  if (!file) return Shard{};
  if (!file->index) {
    return Err{std::string(
        "the configuration's shard block has no index: give shard.index, --shard K/N or "
        "--shard-from-hostname")};
  }
  return Shard{*file->index, file->count};
}

void apply_shard(Config& config, Shard shard) {
  config.fleet_servers = config.servers.size();
  config.shard_active = shard;
  if (shard.count <= 1) return;
  std::erase_if(config.servers, [shard](const ServerConfig& server) {
    return shard_of(server.name, shard.count) != shard.index;
  });
  config.servers.shrink_to_fit();
}

}  // namespace ntpmon::config
