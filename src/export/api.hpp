// The read-only JSON API of the daemon (docs/API.md): /api/v1/servers, /selection, /alerts and
// /servers/{name}/history.
//
// Responsible for: rendering a published Snapshot into the documented JSON bodies (field names
// exactly as in docs/API.md), parsing and checking the history endpoint's parameters (RFC 3339
// or Unix seconds, a step in seconds) into a query or a 400 reason, rendering history buckets,
// downsampling the in-memory samples the same way the SQLite store does (for a daemon without a
// database), and caching each rendered body per Snapshot so that many polling dashboards cost
// one rendering per published snapshot. Everything except the cache is pure: no clock (callers
// pass `now`), no I/O, no locks. Not responsible for: HTTP (routes live in src/app, the server
// in http_server.hpp), running history queries (history_store.hpp), or deciding any state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "history/history_store.hpp"
#include "monitor/snapshot.hpp"
#include "monitor/view.hpp"
#include "proto/result.hpp"

namespace ntpmon::exporter::api {

inline constexpr std::string_view kJsonContentType = "application/json; charset=utf-8";

// Bodies of the polled endpoints (each ends with a newline). render_servers is every server in
// one document: for tests and tools with few servers; the daemon serves /api/v1/servers in
// pages (server_pages.hpp).
std::string render_servers(const monitor::Snapshot& snapshot);
std::string render_selection(const monitor::Snapshot& snapshot);
// GET /api/v1/status: the daemon's totals, constant size whatever the number of servers.
std::string render_status(const monitor::View& view);
// GET /api/v1/alerts: at most `limit` active alerts (the servers' in configuration order, then
// the daemon's own, which always fit) and `active_total`, the number of all of them.
inline constexpr std::size_t kDefaultAlertLimit = 1000;
std::string render_alerts(const monitor::View& view, std::size_t limit = kDefaultAlertLimit);
// {"error": message} for 4xx/5xx answers.
std::string render_error(std::string_view message);

// "2026-11-26T10:00:00.123Z": UTC, milliseconds truncated toward the past.
std::string format_rfc3339_ms(std::int64_t unix_ns);
// RFC 3339 ("2026-11-26T10:00:00Z", fraction and numeric offset allowed; 'T'/'t' or ' ') or
// Unix seconds ("1795514400", "1795514400.25"); nullopt for anything else or outside the years
// 1970-9999. Never throws: the text comes from a query string.
std::optional<std::int64_t> parse_time_unix_ns(std::string_view text);

// The checked parameters of GET /api/v1/servers/{name}/history.
struct HistoryQuery {
  std::int64_t since_unix_ns = 0;
  std::int64_t until_unix_ns = 0;
  std::int64_t step_s = 1;
};

// Defaults: until = now, since = until - 1 h, step = the smallest whole number of seconds that
// gives at most kDefaultHistoryPoints buckets. Errors (one line, for a 400): a time or step that
// does not parse, since >= until, step < 1, or more than max_buckets buckets.
inline constexpr std::int64_t kDefaultHistoryPoints = 1000;
inline constexpr std::int64_t kDefaultHistorySpanS = 3600;
Result<HistoryQuery, std::string> parse_history_query(std::string_view since,
                                                      std::string_view until, std::string_view step,
                                                      std::int64_t now_unix_ns,
                                                      std::int64_t max_buckets);

// Groups in-memory samples (oldest first, as HistoryStore::recent_samples returns them) into
// the buckets HistoryStore::query_samples computes in SQL: aligned to multiples of step since
// the epoch, since <= time < until, averages, min/max offset, jitter averaged over the samples
// that have one, the stratum of the latest sample, empty buckets absent.
std::vector<history::SampleBucket> bucket_samples(const std::vector<history::SampleRecord>& samples,
                                                  const HistoryQuery& query);

// The history body. `source` says where the points came from: "database" or "memory" (the
// latest samples kept in memory when no database is configured).
std::string render_history(std::string_view server, const HistoryQuery& query,
                           const std::vector<history::SampleBucket>& points,
                           std::string_view source);

// One rendered body per published View: while the published view is the same object, every
// request gets the same string; the first request after a publish renders it once (others
// wait for that rendering rather than repeating it). Thread-safe.
class SnapshotJsonCache {
 public:
  using Render = std::string (*)(const monitor::View&);
  explicit SnapshotJsonCache(Render render) : render_(render) {}

  [[nodiscard]] std::shared_ptr<const std::string> get(
      const std::shared_ptr<const monitor::View>& view);
  // How many times a body was rendered (for tests: 1 per snapshot however many requests).
  [[nodiscard]] std::uint64_t renders() const;

 private:
  Render render_;
  mutable std::mutex mutex_;
  // Weakly: a superseded snapshot is freed when its last request is done, not kept until the
  // next request (with a fleet polled every few seconds, most of its entries are superseded
  // too). Compared by owner, so a new snapshot at the address of a freed one is still new.
  std::weak_ptr<const monitor::View> snapshot_;
  std::shared_ptr<const std::string> body_;
  std::uint64_t renders_ = 0;
};

}  // namespace ntpmon::exporter::api
