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
#include <functional>
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

// Allocates buffers of 64 KiB and more straight from the kernel (mmap) and gives them back when
// freed (munmap): the orders and the temporaries of their builds (megabytes with a million
// servers) then leave nothing behind in the allocator's arenas of the HTTP worker threads, which
// would otherwise keep freed space resident. Smaller ones come from operator new.
inline constexpr std::size_t kKernelAllocationBytes = 64 * 1024;
void* kernel_allocate(std::size_t bytes);
void kernel_deallocate(void* p, std::size_t bytes) noexcept;
template <typename T>
struct KernelAllocator {
  using value_type = T;
  KernelAllocator() = default;
  template <typename U>
  KernelAllocator(const KernelAllocator<U>& /*other*/) noexcept {}  // NOLINT: rebinding
  T* allocate(std::size_t n) { return static_cast<T*>(kernel_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { kernel_deallocate(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const KernelAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};
using Positions = std::vector<std::uint32_t, KernelAllocator<std::uint32_t>>;

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
  const Positions& order(SortKey key, bool descending);
  // How many orders were built (for tests: one per key and direction however many requests).
  [[nodiscard]] std::size_t built() const;
  // The time spent building them (steady clock), in nanoseconds.
  [[nodiscard]] std::int64_t build_ns() const;

 private:
  struct Slot {
    std::once_flag once;
    Positions positions;
  };
  void build(SortKey key, bool descending, Positions& out);

  std::shared_ptr<const monitor::Snapshot> snapshot_;
  std::array<Slot, 2 * kSortKeyCount> slots_;
  mutable std::mutex mutex_;
  std::size_t built_ = 0;
  std::int64_t build_ns_ = 0;
};

// The ServerIndex requests share. Building an order costs O(n log n) (about 0.2 s for a
// million servers), and the daemon publishes a new snapshot as often as every 100 ms while it is
// read: so, as the snapshot publisher does for snapshots, an index is used for newer snapshots
// too while the newest is less than kCostFactor times its build time younger than the index's
// (a page then shows that snapshot: its generated_at says so). An index that cost nothing to
// build (configuration order, small fleets) is never reused for a newer snapshot. A newer
// snapshot past that age gets a new index (the old one is freed once its last request is done);
// a request on an older snapshot than the cached one gets an index of its own, not kept.
class ServerIndexCache {
 public:
  static constexpr std::int64_t kCostFactor = 20;
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

// The body: {"generated_at", "next_cursor", "servers": [...], "total"}, whole or in chunks of
// about 32 KiB to `sink` (false from the sink stops the writing; the function returns it).
std::string render_servers_page(const monitor::Snapshot& snapshot, const ServersPage& page);
bool write_servers_page(const monitor::Snapshot& snapshot, const ServersPage& page,
                        const std::function<bool(std::string_view)>& sink);

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
