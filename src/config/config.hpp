// The monitoring configuration: YAML (config/servers.yaml) -> a validated, immutable Config.
//
// Responsible for: reading the file and the server list files it names (`server_lists`, plain
// text, one server per line, for fleets too large for YAML), checking every key and type against
// the schema in docs/configuration.md, and reporting every problem with file:line:col. Not
// responsible for: resolving host names or opening sockets (the engine does), or defaults that
// depend on the network (the good-citizen minimum poll is applied by the poll logic, which knows
// whether an address is loopback).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::config {

struct AlertThresholds {
  double offset_ms = 50.0;  // alert when |offset| exceeds this
  double delay_ms = 200.0;  // alert when the round-trip delay exceeds this
};

struct ServerConfig {
  std::string name;  // label in metrics and output; defaults to host
  std::string host;  // host name or address literal (IPv6 unbracketed)
  // A `pool:` entry (like chrony's `pool`): `host` names a pool whose DNS answer is several
  // servers; up to `max_addresses` of them are monitored, each as a source of this entry.
  bool pool = false;
  // How many of the resolved addresses to monitor; 0 = all of them (a `host:` entry).
  int max_addresses = 0;
  std::uint16_t port = 123;
  std::uint8_t version = 4;             // NTP version of our requests: 3 or 4
  std::optional<int> expected_stratum;  // alert when the observed stratum is higher
  // Which file `line` is in: -1 for the YAML file, otherwise an index into
  // Config::server_list_files. An index rather than the path, and declared here where it fills
  // alignment padding: a fleet may have a million entries, so every byte counts a megabyte.
  int list_file = -1;
  std::optional<double> poll_s;  // fixed poll interval for this server, seconds
  // Per-server override of the global thresholds, already complete: a key the entry leaves out
  // holds the global value, so callers use `alert_thresholds.value_or(config.alert_thresholds)`.
  std::optional<AlertThresholds> alert_thresholds;
  int line = 0;  // where the entry starts in the file (1-based); the file is `list_file`'s
  // Authentication (docs/authentication.md), at most one of the two. NTS (RFC 8915): NTS-KE
  // over TLS to `host`:`ntske_port`, the certificate checked against `ca_file` (a PEM bundle;
  // "" = the system trust store); NTS forces NTPv4. A symmetric key: `key_id` names a key of
  // Config::key_file; key_line/key_column point at the `key:` value for errors about the key
  // file that only the engine can detect (the id is missing from the file).
  bool nts = false;
  std::uint16_t ntske_port = 4460;
  std::string ca_file;
  std::optional<std::uint32_t> key_id;
  int key_line = 0;
  int key_column = 0;
};

// How to read Config::key_file: chrony.keys, ntpsec's ntp.keys, or detected from the text
// (the rule of `ntp-monitor query --key-format auto`).
enum class KeyFormat : std::uint8_t { kAuto, kChrony, kNtpsec };

struct PollSettings {
  double min_poll_s = 64.0;    // never poll a server more often than this by default
  double max_poll_s = 1024.0;  // back-off limit
};

// Where alert transitions are POSTed (Alertmanager webhook format).
struct WebhookConfig {
  std::string url;         // http:// or https://
  double timeout_s = 5.0;  // per attempt: connect, send and wait for the answer
  int queue_size = 256;    // transitions waiting to be sent; the oldest is dropped when full
};

// What a server's offset alert is judged against (alerts.offset_reference).
enum class OffsetReference : std::uint8_t {
  // The local clock, except while the truechimers agree that the local clock itself is off
  // (the local-clock alert): then each server's offset from their consensus.
  kConsensus,
  // Always the local clock: a host clock that is off fires every server's offset alert.
  kLocal,
};

struct AlertSettings {
  // Hysteresis: an alert fires after `hold` consecutive bad polls and clears after `hold` good.
  int hold = 3;
  std::optional<WebhookConfig> webhook;
  // The certificate alert fires while an NTS-KE server's certificate expires within this
  // many days; 0 turns it off.
  int certificate_expiry_days = 14;
  OffsetReference offset_reference = OffsetReference::kConsensus;
};

struct SelectionSettings {
  double interval_s = 1.0;  // the selection runs at most this often (and only after a change)
};

// The daemon's window of NTP requests in flight and its pools of source ports
// (engine/probe_hub.hpp: ProbeHubOptions, engine/source_ports.hpp).
struct RequestSettings {
  int max_in_flight = 4096;
  int source_ports = 4;                       // sockets sending per address family
  double source_port_lifetime_s = 30.0;       // each sends for at most this long...
  std::int64_t source_port_requests = 65536;  // ... or this many requests (0 = no limit)
};

struct DnsSettings {
  double refresh_s = 3600.0;  // re-resolve every host this often
  double timeout_s = 5.0;     // one lookup (A and AAAA, every server and retry) ends by then
};

// The measurement history (src/history). Without a path the daemon keeps only the latest
// samples of each server in memory (the live view and the history API still answer from them);
// with a path it also stores every sample and alert transition in that SQLite file, so charts
// over days survive a restart. Retention limits apply to the file.
struct HistorySettings {
  std::string path;                        // "" = memory only
  double max_age_days = 7.0;               // 0 = keep forever
  std::int64_t max_rows = 10'000'000;      // samples; 0 = no limit
  std::int64_t max_bytes = 1'000'000'000;  // database file; 0 = no limit
  // Latest samples kept in memory per server (live charts, /history without a database);
  // 0 = none: with very large fleets these rings are most of the memory.
  int live_samples = 600;
};

// A `probe:` module (docs/probe.md): how the targets that /probe?module=NAME registers are polled.
// The same authentication keys as a server entry; `poll` as the global poll section.
struct ProbeModule {
  std::string name;
  std::uint8_t version = 4;
  bool nts = false;
  std::uint16_t ntske_port = 4460;
  std::string ca_file;
  std::optional<std::uint32_t> key_id;
  std::optional<PollSettings> poll;  // absent: the global `poll`
  int line = 0;                      // where the module is written (0 for the built-in default)
};

// The built-in module `default`: NTPv4, no authentication, the global poll.
inline ProbeModule default_probe_module() {
  ProbeModule m;
  m.name = "default";
  return m;
}

// Targets registered through /probe (multi-target probing, docs/probe.md).
struct ProbeSettings {
  // Live targets at most; a new target beyond it is refused (0 turns /probe off).
  std::size_t max_targets = 1000;
  // A target that no scrape asked for within this time is dropped.
  double target_ttl_s = 600.0;
  // Always holds "default" (NTPv4, no authentication, the global poll) unless the file
  // redefines it; sorted by name.
  std::vector<ProbeModule> modules{default_probe_module()};

  [[nodiscard]] const ProbeModule* module(std::string_view name) const;
};

// How many series each server costs in /metrics (docs/metrics.md, "Series per server").
enum class PerServerMetrics : std::uint8_t {
  // The default: per-reason, per-kind and per-code series of a server appear once non-zero;
  // at most 20 series for a healthy server.
  kStandard,
  // Every per-server series, zero-valued ones included (dense, as before the modes existed).
  kFull,
  // up, offset, delay, stratum, reachability and info only (6 series), for very large fleets.
  kMinimal,
};
const char* to_string(PerServerMetrics mode);  // "standard", "full", "minimal"

// The `metrics:` section. Reloadable: a change applies at the next scrape.
struct MetricsSettings {
  PerServerMetrics per_server = PerServerMetrics::kStandard;
};

// Shard `index` of `count` (0 <= index < count): which share of the servers a replica monitors
// (config/shard.hpp). 0/1 is the whole fleet.
struct Shard {
  std::uint32_t index = 0;
  std::uint32_t count = 1;
  friend bool operator==(const Shard&, const Shard&) = default;
};
inline constexpr std::uint32_t kMaxShardCount = 1000;

// The `shard:` block as the file writes it. `index` may be left out when the command line gives
// it (--shard-from-hostname).
struct ShardSettings {
  std::optional<std::uint32_t> index;
  std::uint32_t count = 1;
};

// How many addresses of a `pool:` entry are monitored when max_addresses is not given.
inline constexpr int kDefaultPoolAddresses = 4;

struct Config {
  std::vector<ServerConfig> servers;
  AlertThresholds alert_thresholds;
  PollSettings poll;
  // The file set poll.min itself (the poll logic then lets it go below the good-citizen floor).
  bool poll_min_explicit = false;
  AlertSettings alerts;
  SelectionSettings selection;
  RequestSettings requests;
  DnsSettings dns;
  HistorySettings history;
  ProbeSettings probe;
  MetricsSettings metrics;
  // Symmetric keys for the servers' `key:` ids; "" = none. Relative paths are taken from the
  // directory of the configuration file. The engine reads it at start and on every reload.
  std::string key_file;
  KeyFormat key_format = KeyFormat::kAuto;
  std::string source;  // file name the config came from ("<string>" when parsed from text)
  // The `server_lists` files in the order listed, as opened (a relative path joined to the
  // configuration file's directory). Their servers follow the `servers:` entries in `servers`.
  std::vector<std::string> server_list_files;
  // `shard:` as the file writes it (absent: not given). config::apply_shard settles it with the
  // command line and drops the other shards' servers.
  std::optional<ShardSettings> shard;
  // Filled by apply_shard: the shard this process monitors and how many servers the file (and
  // its lists) named before the other shards' were dropped. Before it: 0/1 and 0.
  Shard shard_active;
  std::size_t fleet_servers = 0;
  // `vantage:` where this replica watches from (a site, a region): the label `vantage` of every
  // per-server series ("" = no label). Reloadable.
  std::string vantage;
};

// The file a server entry was written in: Config::source or one of the server list files.
std::string_view file_of(const Config& config, const ServerConfig& server);

// Bounds on what a configuration may cost to load. The defaults are the documented limits;
// tests lower them to exercise the limit paths without writing millions of lines.
struct ConfigLimits {
  // Servers in total: `servers:` entries plus every line of every server list. About twice
  // what one 2-core machine can poll; far above it, a typo (a log file named as a list) is
  // the likelier cause.
  std::size_t max_servers = 2'000'000;
  std::size_t max_server_list_bytes = std::size_t{256} << 20;  // per list file
  // Errors reported per list file before the rest of it is skipped: a wrong file (a binary, a
  // CSV) would otherwise produce one error per line.
  std::size_t max_list_errors = 100;
};

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a place in the file
  int column = 0;  // 1-based
  std::string message;
  // Non-zero only in the last entry of a list that was cut at kMaxReportedErrors: how many
  // errors were found but not reported (`message` says "and N more errors ...").
  std::size_t more = 0;
  // "file:line:col: message" (or "file: message" without a position).
  [[nodiscard]] std::string to_string() const;
};

// Errors reported for one file at most. A file with an error on every line (a log file named
// by mistake, a megabyte of garbage) would otherwise give a log line of megabytes and as many
// strings in memory; the first few tell the operator what is wrong, the count how much.
inline constexpr std::size_t kMaxReportedErrors = 20;

// "and N more errors (only the first 20 are reported)": the text of a ConfigError::more entry.
std::string more_errors_message(std::size_t more);
// How many errors a list stands for: its entries, plus what a "more" entry counts.
std::size_t error_count(const std::vector<ConfigError>& errors);
// Every entry's to_string(), `separator` between them: at most kMaxReportedErrors + 1 entries
// for a list a reader returned, so the line stays short.
std::string join_config_errors(const std::vector<ConfigError>& errors,
                               std::string_view separator = "; ");

using ConfigResult = Result<Config, std::vector<ConfigError>>;

// Parses YAML text; `file` is only used in error messages. Collects every error it can find
// rather than stopping at the first. Never throws.
// Server list files named in the text are read too (relative to the current directory when
// `file` is "<string>", otherwise to the directory of `file`).
ConfigResult parse_config(std::string_view yaml_text, std::string_view file = "<string>");
ConfigResult parse_config(std::string_view yaml_text, std::string_view file,
                          const ConfigLimits& limits);
// Reads and parses a file. A missing or unreadable file is one ConfigError. Never throws.
ConfigResult load_config_file(const std::string& path);
ConfigResult load_config_file(const std::string& path, const ConfigLimits& limits);

}  // namespace ntpmon::config
