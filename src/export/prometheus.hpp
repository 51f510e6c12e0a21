// Prometheus text exposition (format 0.0.4) of a monitor Snapshot.
//
// Responsible for: turning one immutable Snapshot (plus build information and the HTTP
// server's own counters) into the ntp_monitor_* metric families documented in
// docs/metrics.md, written through a sink in bounded chunks so that a scrape of a million
// servers never holds more than one chunk in memory. Pure: no I/O, no clock, no locks; the
// same input always gives the same bytes. Not responsible for: HTTP (http_server.hpp), deciding
// anything about the servers (src/monitor), or metric values that are not in the Snapshot.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "monitor/snapshot.hpp"
#include "monitor/view.hpp"

namespace ntpmon::exporter {

// Receives the text in chunks, in order. Returns false when the reader is gone (client
// disconnected, server stopping): the serializer then stops early instead of rendering the
// rest for nobody.
using ChunkSink = std::function<bool(std::string_view chunk)>;

// Labels of ntp_monitor_build_info. Filled in by the application at start-up.
struct BuildInfo {
  std::string version;   // project version, "0.1.0"
  std::string revision;  // source revision ("" when unknown)
  std::string compiler;  // compiler id and version, "GNU 12.2.0"
};

// Why the HTTP server answered a request with 4xx; every name is a value of the `reason`
// label of ntp_monitor_http_bad_requests_total.
enum class HttpBadRequest : std::uint8_t {
  kMalformed,         // 400: unparsable request line or headers, unknown method
  kNotFound,          // 404: no route for the path
  kMethodNotAllowed,  // 405: a route exists, but not for this method
  kTooLarge,          // 413 / 414 / 431: request line, headers or body above the limits
  kOther,             // any other 4xx
};
inline constexpr int kHttpBadRequestCount = 5;
std::string_view to_string(HttpBadRequest reason);  // "malformed", "not_found", ...

// Why the HTTP server closed a connection without answering a request on it; every name is a
// value of the `reason` label of ntp_monitor_http_connections_dropped_total.
enum class HttpDrop : std::uint8_t {
  kTotalLimit,      // accepted while max_connections were open: closed at once
  kPerClientLimit,  // accepted while that client address held max_connections_per_client
  kHeadTimeout,     // the request head did not arrive complete within head_timeout (slowloris)
  kTlsHandshake,    // the TLS handshake failed or did not finish within head_timeout
};
inline constexpr int kHttpDropCount = 4;
std::string_view to_string(HttpDrop reason);  // "total_limit", "per_client_limit", ...

// The HTTP server's own counters, rendered beside the monitor's families when given.
struct HttpCounters {
  std::uint64_t requests = 0;  // responses written, any status
  std::array<std::uint64_t, kHttpBadRequestCount> bad_requests{};
  std::uint64_t connections_accepted = 0;  // ntp_monitor_http_connections_accepted_total
  std::uint64_t connections_open = 0;      // gauge ntp_monitor_http_connections_open
  std::array<std::uint64_t, kHttpDropCount> dropped{};  // ..._http_connections_dropped_total
  // TLS certificate re-reads after the files changed on disk, by result ("ok" / "error"):
  // ntp_monitor_http_tls_reloads_total{result}. Both 0 without TLS.
  std::uint64_t tls_reloads_ok = 0;
  std::uint64_t tls_reloads_failed = 0;
};

// What a process exports as the client libraries' process collector does (process_* families).
// Read by read_process_stats (process_stats.hpp) on the scraping thread; rendered when given.
struct ProcessStats {
  double cpu_seconds_total = 0;      // user + system CPU time
  double start_time_seconds = 0;     // since the Unix epoch
  double resident_memory_bytes = 0;  // RSS
  double virtual_memory_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;  // soft RLIMIT_NOFILE
};

// The two text formats a scrape can ask for (Accept header negotiation).
enum class ExpositionFormat : std::uint8_t {
  kText004,      // text/plain; version=0.0.4 (the default)
  kOpenMetrics,  // application/openmetrics-text; version=1.0.0, ends with "# EOF"
};
// Picks the format from an Accept header as Prometheus sends it (media ranges with q values):
// OpenMetrics when application/openmetrics-text is acceptable with a higher or equal q than
// text/plain, otherwise 0.0.4. An empty or unparsable header gives 0.0.4.
ExpositionFormat negotiate_exposition(std::string_view accept);
// The Content-Type header value of a format.
std::string_view content_type(ExpositionFormat format);

// Everything besides the View that goes into one scrape.
struct ExpositionOptions {
  ExpositionFormat format = ExpositionFormat::kText004;
  const HttpCounters* http = nullptr;     // null: no HTTP families
  const ProcessStats* process = nullptr;  // null: no process_* families
  std::size_t chunk_bytes = 0;            // 0: kDefaultChunkBytes
};

// The serializer flushes its buffer to the sink whenever it holds at least this many bytes;
// a chunk is at most this plus one sample line.
inline constexpr std::size_t kDefaultChunkBytes = 32 * 1024;

// Writes the whole exposition of `view` to `sink`. `http` may be null (no HTTP families).
// Returns false if the sink asked to stop. Families appear in a fixed order with HELP and TYPE
// even when they have no samples; per-server samples appear in the snapshot's server order.
// Which per-server samples there are is view.engine.per_server_metrics (metrics.per_server:
// full, standard or minimal; docs/metrics.md); the fleet-wide families are there in every mode.
// The engine's families (probe window, history, webhook) appear when the view has them.
bool write_prometheus(const monitor::View& view, const BuildInfo& build, const HttpCounters* http,
                      const ChunkSink& sink, std::size_t chunk_bytes = kDefaultChunkBytes);
// The same in either format, with the process families when options.process is set.
bool write_exposition(const monitor::View& view, const BuildInfo& build,
                      const ExpositionOptions& options, const ChunkSink& sink);

// Convenience for tests and small outputs: the whole exposition as one string.
std::string render_prometheus(const monitor::View& view, const BuildInfo& build,
                              const HttpCounters* http = nullptr);
// A Monitor's snapshot without engine status.
std::string render_prometheus(const monitor::Snapshot& snapshot, const BuildInfo& build,
                              const HttpCounters* http = nullptr);

// Appends `value` escaped for a label value: backslash, double quote and line feed become
// \\, \" and \n; bytes that are not valid UTF-8 (names from config files and kiss codes from
// the network are untrusted) become U+FFFD so the exposition stays parsable.
void append_escaped_label_value(std::string& out, std::string_view value);

// Appends a sample value: shortest text that reads back as the same double, NaN, +Inf, -Inf.
void append_sample_value(std::string& out, double value);

}  // namespace ntpmon::exporter
