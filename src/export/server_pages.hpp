// GET /api/v1/servers in pages, and GET /api/v1/summary (docs/API.md): what a dashboard reads
// from a fleet of any size without the daemon building a document of the whole fleet.
//
// Responsible for: checking the page parameters (limit, cursor, state, q, alert, sort) into a
// ServersQuery or a 400 reason; the orders a page can be read in, each a compact index of
// positions into the snapshots of one layout of the fleet, built on first use and shared by the
// requests (SortOrders, holding no snapshot); keyset cursors (the sort, and the last entry's sort
// value, name and address, so a page boundary stays put when other servers change between
// snapshots); rendering one page from the request's snapshot; and the fleet summary (counts by
// state and alert, log-spaced distributions of offset, delay and jitter, the worst offsets, the
// latest state changes), rendered once per snapshot through SnapshotJsonCache. Pure except for
// the steady-clock timing of an order's build (thread-safe): no I/O. Not responsible for: HTTP
// (src/app).
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

// One order of a fleet's servers: positions into Snapshot::servers, and the sort values they
// were ordered by (positions past keys.size() have no value: nulls, last), kept so that a page
// boundary is found in the order as it was built even when the values have changed since.
struct SortOrder {
  Positions positions;
  std::vector<std::int64_t, KernelAllocator<std::int64_t>> keys;  // empty for the name order
  std::int64_t built_from_unix_ns = 0;  // Snapshot::generated_unix_ns of the values used
  std::int64_t build_ns = 0;            // what it took (steady clock)
};

// The sort orders of one layout of the fleet (Snapshot::layout_generation: the same servers at
// the same positions), each built when a request first needs it and then shared. They hold no
// snapshot: a superseded snapshot is freed as soon as its last request is done, whatever the
// orders built from it. An order is used for later snapshots of the same layout while they are
// less than kCostFactor times its build time younger than the values it was built from (the
// snapshot publisher's rule): building one costs O(n log n) (about 0.2 s for a million
// servers), and the daemon publishes as often as every 100 ms while it is read. Past that age
// it is built again from the newer snapshot. An order that cost nothing is never reused, so
// small fleets are always in the newest order. Thread-safe.
class SortOrders {
 public:
  static constexpr std::int64_t kCostFactor = 20;
  SortOrders(std::uint64_t layout_generation, std::size_t size)
      : layout_generation_(layout_generation), size_(size) {}

  // Whether `snapshot` has this layout.
  [[nodiscard]] bool fits(const monitor::Snapshot& snapshot) const {
    return snapshot.layout_generation == layout_generation_ && snapshot.servers.size() == size_;
  }
  [[nodiscard]] std::uint64_t layout_generation() const { return layout_generation_; }
  // The order of `key` (not kNone) for `snapshot` (which fits()): nulls last, ties by name then
  // address then position.
  std::shared_ptr<const SortOrder> order(const monitor::Snapshot& snapshot, SortKey key,
                                         bool descending);
  // Lets go of the orders too old for a snapshot of `now_unix_ns` (they would be built again).
  // Skips an order being built.
  void drop_stale(std::int64_t now_unix_ns);
  // How many orders were built, and the time that took in nanoseconds (tests, benchmarks).
  [[nodiscard]] std::size_t built() const;
  [[nodiscard]] std::int64_t build_ns() const;

 private:
  struct Slot {
    std::mutex mutex;  // held while the order is built: other requests for it wait
    std::shared_ptr<const SortOrder> order;
  };
  [[nodiscard]] static bool fresh(const SortOrder& order, std::int64_t unix_ns);
  SortOrder build(const monitor::Snapshot& snapshot, SortKey key, bool descending);

  const std::uint64_t layout_generation_;
  const std::size_t size_;
  std::array<Slot, 2 * kSortKeyCount> slots_;
  mutable std::mutex mutex_;
  std::size_t built_ = 0;
  std::int64_t build_ns_ = 0;
};

// What one request reads: its snapshot, and the orders of that snapshot's layout.
class ServerIndex {
 public:
  // With orders of its own (tests, benchmarks, a request on a superseded layout).
  explicit ServerIndex(std::shared_ptr<const monitor::Snapshot> snapshot);
  ServerIndex(std::shared_ptr<const monitor::Snapshot> snapshot,
              std::shared_ptr<SortOrders> orders);

  [[nodiscard]] const monitor::Snapshot& snapshot() const { return *snapshot_; }
  [[nodiscard]] const std::shared_ptr<SortOrders>& orders() const { return orders_; }
  // The order of `key` (not kNone), kept alive as long as this index.
  const SortOrder& order(SortKey key, bool descending);
  [[nodiscard]] std::size_t built() const { return orders_->built(); }
  [[nodiscard]] std::int64_t build_ns() const { return orders_->build_ns(); }

 private:
  std::shared_ptr<const monitor::Snapshot> snapshot_;
  std::shared_ptr<SortOrders> orders_;
  std::array<std::shared_ptr<const SortOrder>, 2 * kSortKeyCount> used_;
};

// The orders requests share: those of the newest layout seen. A request on a newer layout
// replaces them; a late request on an older layout gets orders of its own, not kept. Holds no
// snapshot.
class ServerIndexCache {
 public:
  std::shared_ptr<ServerIndex> get(const std::shared_ptr<const monitor::View>& view);

 private:
  std::mutex mutex_;
  std::shared_ptr<SortOrders> orders_;
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
