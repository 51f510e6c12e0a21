// The C++ library API of ntp-monitor: ask configured (or ad-hoc) NTP servers for the time.
//
//   ntpmon::NtpClient client = ntpmon::NtpClient::from_config("config/servers.yaml");
//   for (const std::string& host : client.get_servers()) { ... }
//   ntpmon::TimeResult r = client.get_time("ntp.example");
//   if (r.ok) std::printf("%+.6f s, stratum %d\n", r.offset, r.stratum);
//
// Responsible for: mapping a host to its configured port and NTP version, running the engine's
// one-shot query (engine/query.hpp, the same code the `query` command uses) and flattening its
// result into plain fields. Not responsible for: any network or protocol logic of its own, or
// continuous monitoring (that is the daemon).
//
// Blocking: get_time() returns after the last request was answered or timed out (by default 4
// requests 1 s apart). Times are in seconds, as doubles.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proto/keys.hpp"

namespace ntpmon {

struct QueryOptions {
  int samples = 4;                                 // requests per server address
  std::chrono::duration<double> interval{1.0};     // spacing between requests to one address
  std::chrono::duration<double> timeout{2.0};      // per request
  std::uint16_t port = 123;                        // for hosts that are not in the configuration
  std::uint8_t version = 4;                        // NTP version for hosts not in the configuration
  std::chrono::duration<double> dns_timeout{5.0};  // one lookup of a name
  // Authentication: NTS (RFC 8915; NTS-KE on ntske_port, certificates checked against ca_file
  // or the system store), or a symmetric key on every request. At most one of the two.
  bool nts = false;
  std::uint16_t ntske_port = 4460;
  std::string ca_file;
  std::optional<proto::SymmetricKey> key;
};

// Why a TimeResult is not ok, in the categories a caller acts on differently.
enum class Failure : std::uint8_t {
  kNone,            // ok
  kBadHost,         // the host text is not a host ("a:b:c:d]")
  kDns,             // the name did not resolve
  kTimeout,         // no answer in time
  kKissOfDeath,     // the server sent a kiss code (TimeResult::kod)
  kRejected,        // answers came, none valid (TimeResult::rejected says why)
  kAuthentication,  // NTS-KE failed, or no reply passed the NTS / MAC check
  kNetwork,         // the request could not be sent (no route, ...)
};
// "none", "bad_host", "dns", "timeout", "kiss_of_death", "rejected", "authentication", "network".
std::string_view to_string(Failure failure);

// What one server address said. Figures are meaningful only when ok is true.
struct TimeResult {
  std::string host;
  std::string address;  // the address that was queried; empty when the host did not resolve
  std::uint16_t port = 123;
  bool ok = false;
  std::string error;  // why ok is false; empty when ok

  double offset = 0;  // seconds, server clock minus local clock (RFC 5905 clock filter)
  double delay = 0;   // seconds, round trip
  double jitter = 0;  // seconds
  int stratum = 0;
  std::string refid;           // decoded: clock name, IPv4 address, or kiss code
  int leap = 0;                // leap indicator 0..3
  int version = 0;             // NTP version of the reply
  double root_delay = 0;       // seconds
  double root_dispersion = 0;  // seconds
  double root_distance = 0;    // seconds (RFC 5905 §11.2.1)
  double precision = 0;        // seconds
  double poll = 0;             // seconds
  int samples = 0;             // valid samples behind the figures
  std::string kod;             // kiss code ("RATE", "DENY", ...) if one came; else empty

  Failure failure = Failure::kNone;  // why ok is false
  std::string rejected;  // the most frequent rejection reason ("unsynchronized", "bogus_origin")
  int requests = 0;      // requests sent
  int timeouts = 0;      // requests without an acceptable answer in time
  // Authentication: "none", "nts" or "key", and what NTS negotiated (empty without NTS).
  std::string authenticated = "none";
  int authenticated_samples = 0;
  std::string auth_error;
  std::optional<double> nts_ke_seconds;
  std::optional<int> cookies;
  std::string aead;
  std::string certificate_expiry;
};

// Thrown by NtpClient::from_config; what() lists every problem as file:line:col: message.
class ConfigLoadError : public std::runtime_error {
 public:
  explicit ConfigLoadError(std::vector<config::ConfigError> errors);
  [[nodiscard]] const std::vector<config::ConfigError>& errors() const { return errors_; }

 private:
  std::vector<config::ConfigError> errors_;
};

class NtpClient {
 public:
  // No configured servers: every host gets options.port and options.version.
  NtpClient() = default;
  explicit NtpClient(config::Config config, QueryOptions options = {});
  // Loads and validates a YAML configuration; throws ConfigLoadError if it is not valid.
  static NtpClient from_config(const std::string& path, QueryOptions options = {});

  // The configured hosts, in file order.
  [[nodiscard]] std::vector<std::string> get_servers() const;

  // Queries every address of `host` ("name", "name:port", "192.0.2.1", "[2001:db8::1]:123",
  // "2001:db8::1", or a configured server's name) and returns the best answer: the valid one
  // with the smallest root distance, else the first failure. Never throws for network trouble.
  [[nodiscard]] TimeResult get_time(const std::string& host) const;
  // One result per address of `host`.
  [[nodiscard]] std::vector<TimeResult> get_time_all(const std::string& host) const;
  // Every configured server, queried concurrently; one result per address.
  [[nodiscard]] std::vector<TimeResult> get_time_configured() const;

  [[nodiscard]] const QueryOptions& options() const { return options_; }
  void set_options(const QueryOptions& options) { options_ = options; }
  [[nodiscard]] const config::Config& config() const { return config_; }

 private:
  config::Config config_;
  QueryOptions options_;
};

}  // namespace ntpmon
