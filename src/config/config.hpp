// The monitoring configuration: YAML (config/servers.yaml) -> a validated, immutable Config.
//
// Responsible for: reading the file, checking every key and type against the schema in
// docs/configuration.md, and reporting every problem with file:line:col. Not responsible for:
// resolving host names or opening sockets (the engine does), or defaults that depend on the
// network (the good-citizen minimum poll is applied by the poll logic, which knows whether an
// address is loopback).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::config {

struct AlertThresholds {
  double offset_ms = 50.0;   // alert when |offset| exceeds this
  double delay_ms = 200.0;   // alert when the round-trip delay exceeds this
};

struct ServerConfig {
  std::string name;                       // label in metrics and output; defaults to host
  std::string host;                       // host name or address literal (IPv6 unbracketed)
  // A `pool:` entry (like chrony's `pool`): `host` names a pool whose DNS answer is several
  // servers; up to `max_addresses` of them are monitored, each as a source of this entry.
  bool pool = false;
  // How many of the resolved addresses to monitor; 0 = all of them (a `host:` entry).
  int max_addresses = 0;
  std::uint16_t port = 123;
  std::uint8_t version = 4;               // NTP version of our requests: 3 or 4
  std::optional<int> expected_stratum;    // alert when the observed stratum is higher
  std::optional<double> poll_s;           // fixed poll interval for this server, seconds
  // Per-server override of the global thresholds, already complete: a key the entry leaves out
  // holds the global value, so callers use `alert_thresholds.value_or(config.alert_thresholds)`.
  std::optional<AlertThresholds> alert_thresholds;
  int line = 0;                           // where the entry starts in the file (1-based)
};

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

struct AlertSettings {
  // Hysteresis: an alert fires after `hold` consecutive bad polls and clears after `hold` good.
  int hold = 3;
  std::optional<WebhookConfig> webhook;
};

struct SelectionSettings {
  double interval_s = 1.0;  // the selection runs at most this often (and only after a change)
};

struct DnsSettings {
  double refresh_s = 3600.0;  // re-resolve every host this often
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
  DnsSettings dns;
  std::string source;  // file name the config came from ("<string>" when parsed from text)
};

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a place in the file
  int column = 0;  // 1-based
  std::string message;
  // "file:line:col: message" (or "file: message" without a position).
  [[nodiscard]] std::string to_string() const;
};

using ConfigResult = Result<Config, std::vector<ConfigError>>;

// Parses YAML text; `file` is only used in error messages. Collects every error it can find
// rather than stopping at the first. Never throws.
ConfigResult parse_config(std::string_view yaml_text, std::string_view file = "<string>");
// Reads and parses a file. A missing or unreadable file is one ConfigError. Never throws.
ConfigResult load_config_file(const std::string& path);

}  // namespace ntpmon::config
