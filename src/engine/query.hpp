// The one-shot query: probe every address of every host a few times and summarise each one.
//
// Responsible for: resolving hosts (all at once, each within its own deadline), running one
// UdpProbe per address concurrently on a single io_context thread, spacing requests (as
// monitor::PollState's single burst decides, on an injected monotonic clock), feeding accepted
// samples into the RFC 5905 clock filter, stopping an address on a DENY, RSTR or RATE kiss, and
// producing one AddressResult per address (or one per unresolvable host) with the figures of the
// filter's chosen sample and every rejection counted by reason. Not responsible for: formatting
// (the query command and the client library format the same AddressResult), or continuous polling
// (the daemon's poll logic drives UdpProbe itself).
//
// Authentication: with NTS each address first runs NTS-KE (the target's host name is what the
// certificate must name), then probes the negotiated server and port with the cookies; an NTSN
// kiss drops the cookies and redoes NTS-KE. With a symmetric key every request carries a MAC
// and only replies with a valid MAC count.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/clock.hpp"
#include "engine/random.hpp"
#include "proto/keys.hpp"
#include "proto/validate.hpp"

namespace ntpmon::engine {

struct QueryTarget {
  std::string host;  // name or address literal (IPv6 without brackets)
  std::uint16_t port = 123;
  std::uint8_t version = 4;  // NTP version of our requests: 3 or 4
};

struct QueryOptions {
  int samples = 4;  // requests per address
  // Minimum spacing between two requests to one address; a request is never sent before the
  // previous one got its answer or timed out, so there is at most one in flight per address.
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  std::chrono::nanoseconds timeout = std::chrono::seconds(2);
  bool kernel_timestamps = true;  // see ProbeOptions
  // One DNS lookup of a host name (A and AAAA): a name without an answer by then is an
  // error for that host only. All names are looked up at once.
  std::chrono::nanoseconds dns_timeout = std::chrono::seconds(5);
  // The poll exponent of the requests (query_poll_exponent(interval) when unset).
  std::optional<std::int8_t> poll;

  enum class Auth : std::uint8_t { kNone, kNts, kKey };
  Auth auth = Auth::kNone;
  // NTS: the NTS-KE port, a PEM CA bundle to trust instead of the system store, and the
  // time limit of one NTS-KE exchange.
  std::uint16_t ntske_port = 4460;
  std::string ca_file;
  std::chrono::nanoseconds ntske_timeout = std::chrono::seconds(5);
  // NTS: send NTP here instead of the negotiated server/port (a proxy in tests, debugging).
  std::optional<std::string> nts_ntp_host;
  std::optional<std::uint16_t> nts_ntp_port;
  // kKey: the key every request is authenticated with.
  std::optional<proto::SymmetricKey> key;
};

// The poll exponent a query's requests carry: the spacing rounded up to a power of two, at least
// RFC 5905's default poll 6 (64 s). The field says how often this client will ask; a burst of a
// few requests one second apart is not a polling rate, and a server that rate-limits by the
// client's poll (or echoes it, as chronyd does) should see an ordinary client, not poll 0.
std::int8_t query_poll_exponent(std::chrono::nanoseconds interval);

// "none", "nts" or "key": the JSON spelling.
std::string_view to_string(QueryOptions::Auth auth);

using RejectionCounts = std::array<std::uint64_t, proto::kRejectReasonCount>;

// The summary of one server address. Optional fields are empty when unknown (no valid reply).
struct AddressResult {
  std::string host;
  std::optional<std::string> address;  // empty when the host did not resolve
  std::uint16_t port = 123;
  bool ok = false;                   // at least one valid sample
  std::optional<std::string> error;  // why ok is false

  // Clock filter (RFC 5905 §10) over the valid samples.
  std::optional<double> offset_s;  // server clock minus local clock
  std::optional<double> delay_s;
  std::optional<double> jitter_s;
  std::optional<double> dispersion_s;
  // From the reply header of the sample the filter chose; without a valid sample, from the last
  // reply that answered a request but was refused for what its header says (leap 3, stratum 16,
  // ...; proto::reveals_header), without authentication only. poll_s is the server's poll field.
  std::optional<int> stratum;
  std::optional<std::string> refid;
  std::optional<int> leap;  // 0..3
  std::optional<int> version;
  std::optional<double> root_delay_s;
  std::optional<double> root_dispersion_s;
  std::optional<double> root_distance_s;  // RFC 5905 §11.2.1, at the end of the query
  std::optional<double> precision_s;
  std::optional<double> poll_s;

  int requests = 0;                // requests sent
  int samples = 0;                 // valid samples fed to the filter
  int timeouts = 0;                // requests without an acceptable answer in time
  int late_replies = 0;            // acceptable answers that came after their timeout
  std::optional<std::string> kod;  // last kiss code received ("RATE", "DENY", ...)
  RejectionCounts rejections{};

  // Authentication: "none", "nts" or "key"; the NTS fields are empty without NTS.
  std::string authenticated = "none";
  int authenticated_samples = 0;                  // valid samples that passed NTS / MAC checks
  std::optional<std::string> auth_error;          // last auth_failed detail ("crypto-NAK", ...)
  std::optional<double> nts_ke_s;                 // duration of the last successful NTS-KE
  int nts_ke_exchanges = 0;                       // successful NTS-KE exchanges (1 + one per NTSN)
  std::optional<int> cookies;                     // cookies held at the end
  std::optional<std::string> aead;                // "AEAD_AES_SIV_CMAC_256"
  std::optional<std::string> certificate_expiry;  // notAfter, RFC 3339 UTC
  std::optional<std::string> nts_ntp_server;      // where NTP went after NTS-KE ("addr:port")

  [[nodiscard]] std::uint64_t total_rejections() const;
};

// Resolves every target concurrently (c-ares on the query's loop, each lookup bounded by
// options.dns_timeout), probes each address as soon as its name has resolved and returns
// one result per address in target order, then resolver order. Never throws for network or
// DNS trouble: that is in each result's error.
std::vector<AddressResult> run_query(const std::vector<QueryTarget>& targets,
                                     const QueryOptions& options, Clock& clock, Rng& rng);
// Same, with `mono` measuring the spacing of the requests (the other overloads use the steady
// clock): tests drive the schedule with it.
std::vector<AddressResult> run_query(const std::vector<QueryTarget>& targets,
                                     const QueryOptions& options, Clock& clock, MonoClock& mono,
                                     Rng& rng);
// Same with the real clock and the kernel CSPRNG.
std::vector<AddressResult> run_query(const std::vector<QueryTarget>& targets,
                                     const QueryOptions& options);

}  // namespace ntpmon::engine
