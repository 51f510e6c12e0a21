// Sharding: which servers of the configuration this replica monitors (docs/architecture.md,
// "Sharding").
//
// Responsible for: the rendezvous (highest-random-weight) assignment of server names to shards,
// the hash it rests on, reading `--shard K/N` and a host name's trailing ordinal, settling the
// command line with the file's `shard:` block, and cutting a Config down to one shard's servers.
// Pure: no I/O, no clock; the host name is an argument. Not responsible for: reading the host
// name (src/app does) or what a reload keeps (Monitor::reload matches the kept servers).
//
// The assignment: server `name` goes to the shard k in [0, N) with the largest
// shard_weight(shard_name_hash(name), k) (the lowest k on a tie). Every name lands in exactly
// one shard; going from N to N+1 shards moves only the names whose new shard N wins, about
// 1/(N+1) of them, and no name moves between two old shards. The hash is defined here byte by
// byte (not std::hash), so every build on every platform assigns the same servers to the same
// shards: replicas of different versions or architectures still split a fleet exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "proto/result.hpp"

namespace ntpmon::config {

// A 64-bit hash of a server's configured name: the bytes taken 8 at a time as little-endian
// words, each folded in with the splitmix64 finalizer, the length last.
std::uint64_t shard_name_hash(std::string_view name);
// The weight of shard `index` for a name with hash `name_hash`: the splitmix64 finalizer of the
// name hash mixed with the shard index.
std::uint64_t shard_weight(std::uint64_t name_hash, std::uint32_t index);
// The shard (0 .. count-1) that rendezvous hashing gives `name` among `count` shards.
std::uint32_t shard_of(std::string_view name, std::uint32_t count);

// "K/N" as `--shard` takes it: 1 <= N <= kMaxShardCount, 0 <= K < N, decimal digits only.
Result<Shard, std::string> parse_shard(std::string_view text);
// The ordinal at the end of a host name's first label ("ntp-monitor-2" and
// "ntp-monitor-2.ntp-monitor.default.svc" give 2), as a StatefulSet names its pods; nullopt
// when the label does not end in a digit or the number has more than 9 digits.
std::optional<std::uint32_t> hostname_ordinal(std::string_view hostname);

// What the command line says about the shard (`ntp-monitor --shard ...`).
struct ShardFlags {
  std::optional<Shard> shard;          // --shard K/N
  bool from_hostname = false;          // --shard-from-hostname
  std::string hostname;                // the host name it reads (filled by the caller)
  std::optional<std::uint32_t> count;  // --shard-count N
};

// The shard this process runs: --shard; else with --shard-from-hostname the host name's ordinal
// among --shard-count (or the file's shard.count) shards; else the file's shard block; else
// the whole fleet (0/1). The error is a message for people, naming the flag or key at fault.
Result<Shard, std::string> resolve_shard(const ShardFlags& flags,
                                         const std::optional<ShardSettings>& file);

// Keeps the servers of `shard` (in their order), and records the shard and how many servers
// the file had in all (Config::shard_active, Config::fleet_servers).
void apply_shard(Config& config, Shard shard);

}  // namespace ntpmon::config
