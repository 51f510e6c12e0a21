// GET /api/v1/servers in pages, and GET /api/v1/summary (docs/API.md): what a dashboard reads
// from a fleet of any size without the daemon building a document of the whole fleet.
//
// Responsible for: checking the page parameters (limit, cursor, state, q, alert, sort) into a
// ServersQuery or a 400 reason; the orders a page can be read in, each a compact index of
// positions into one Snapshot, built on first use and shared by every request on that snapshot
// (ServerIndex, freed with it); keyset cursors (the sort, and the last entry's sort value, name
// and address, so a page boundary stays put when other servers change between snapshots);
// rendering one page from the snapshot; and the fleet summary (counts by state and alert,
// log-spaced distributions of offset, delay and jitter, the worst offsets, the latest state
// changes), rendered once per snapshot through SnapshotJsonCache. Pure except for the index's
// once-per-key build (thread-safe): no clock, no I/O. Not responsible for: HTTP (src/app).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "monitor/snapshot.hpp"
#include "monitor/view.hpp"
#include "proto/result.hpp"

namespace ntpmon::exporter::api {

enum class SortKey : std::uint8_t {
  kNone,  // configuration order
  kName,
  kOffset,
  kAbsOffset,
  kDelay,
  kJitter,
  kStratum,
  kState,
  kLastSample,
};
inline constexpr std::size_t kSortKeyCount = 9;

inline constexpr std::size_t kDefaultPageLimit = 1000;
inline constexpr std::size_t kMaxPageLimit = 10000;
// A cursor is a few dozen bytes plus a name and an address; anything longer is not ours.
inline constexpr std::size_t kMaxCursorLength = 2048;

struct ServersQuery {
  std::size_t limit = kDefaultPageLimit;
  std::string cursor;        // as given ("" = the first page)
  std::uint32_t states = 0;  // one bit per monitor::ServerState; 0 = every state
  std::string q;             // lower case; "" = no search
  std::optional<monitor::AlertKind> alert;
  SortKey sort = SortKey::kNone;
  bool descending = false;

  [[nodiscard]] bool filtered() const { return states != 0 || !q.empty() || alert.has_value(); }
};

// The query string's parameters (decoded, in order; others are ignored). Errors are one line for
// a 400: a limit outside 1..kMaxPageLimit, an unknown state, alert kind or sort key, a cursor
// longer than kMaxCursorLength.
Result<ServersQuery, std::string> parse_servers_query(
    const std::vector<std::pair<std::string, std::string>>& params);

// The orders of one snapshot's servers, each built once, when a request first needs it, and then
// shared: a vector of 4-byte positions per (sort key, direction). Thread-safe.
class ServerIndex {
 public:
  explicit ServerIndex(std::shared_ptr<const monitor::Snapshot> snapshot);

  [[nodiscard]] const monitor::Snapshot& snapshot() const { return *snapshot_; }
  // Positions in snapshot().servers in the order of `key` (not kNone), nulls last, ties by name
  // then address then position.
  const std::vector<std::uint32_t>& order(SortKey key, bool descending);
  // How many orders were built (for tests: one per key and direction however many requests).
  [[nodiscard]] std::size_t built() const;

 private:
  struct Slot {
    std::once_flag once;
    std::vector<std::uint32_t> positions;
  };
  void build(SortKey key, bool descending, std::vector<std::uint32_t>& out);

  std::shared_ptr<const monitor::Snapshot> snapshot_;
  std::array<Slot, 2 * kSortKeyCount> slots_;
  mutable std::mutex mutex_;
  std::size_t built_ = 0;
};

// The ServerIndex of the latest snapshot asked for: requests on the same snapshot share it; a
// new snapshot gets a new one (the old one is freed once its last request is done).
class ServerIndexCache {
 public:
  std::shared_ptr<ServerIndex> get(const std::shared_ptr<const monitor::View>& view);

 private:
  std::mutex mutex_;
  std::shared_ptr<const monitor::Snapshot> snapshot_;
  std::shared_ptr<ServerIndex> index_;
};

struct ServersPage {
  std::vector<std::uint32_t> positions;  // into snapshot().servers, in page order
  std::size_t total = 0;                 // entries matching the filters, every page
  std::optional<std::string> next_cursor;
};

// One page. Errors (400): a cursor that does not parse or was made for another sort.
Result<ServersPage, std::string> select_page(ServerIndex& index, const ServersQuery& query);

// The body: {"generated_at", "servers": [...], "total", "next_cursor"}.
std::string render_servers_page(const monitor::Snapshot& snapshot, const ServersPage& page);

// parse_servers_query + select_page + render_servers_page; the error is for a 400.
Result<std::string, std::string> serve_servers(
    ServerIndex& index, const std::vector<std::pair<std::string, std::string>>& params);

// The summary's distribution bounds in seconds (1-2-5 steps from 1 us to 10 s). Count i of a
// distribution is for bounds[i-1] < |v| <= bounds[i] (bounds[-1] = 0, so 0 is in count 0), the
// last count for |v| > 10 s.
inline constexpr std::array<double, 22> kSummaryBounds = {
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3,
    5e-3, 1e-2, 2e-2, 5e-2, 1e-1, 2e-1, 5e-1, 1.0,  2.0,  5.0,  10.0};
// The count a value falls in (0..kSummaryBounds.size()).
std::size_t summary_bucket(double abs_value);
inline constexpr std::size_t kSummaryTop = 20;

// GET /api/v1/summary.
std::string render_summary(const monitor::View& view);

}  // namespace ntpmon::exporter::api
