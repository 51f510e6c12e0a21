#include "export/server_pages.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "export/api.hpp"
#include "export/api_json.hpp"
#include "proto/base64.hpp"

namespace ntpmon::exporter::api {

void* kernel_allocate(std::size_t bytes) {
  if (bytes < kKernelAllocationBytes) return ::operator new(bytes);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void kernel_deallocate(void* p, std::size_t bytes) noexcept {
  if (bytes < kKernelAllocationBytes) {
    ::operator delete(p);
  } else {
    ::munmap(p, bytes);
  }
}

namespace {

using monitor::ServerSnapshot;
using nlohmann::json;

constexpr std::array<std::string_view, kSortKeyCount> kSortNames = {
    "", "name", "offset", "abs_offset", "delay", "jitter", "stratum", "state", "last_sample"};
constexpr int kServerStateCount = 8;

// A double as an integer of the same order (NaN has no place: nullopt), -0 as 0.
std::optional<std::int64_t> ordered(std::optional<double> value) {
  if (!value || std::isnan(*value)) return std::nullopt;
  const double d = *value == 0 ? 0.0 : *value;
  auto bits = std::bit_cast<std::int64_t>(d);
  if (bits < 0) bits ^= std::numeric_limits<std::int64_t>::max();
  return bits;
}

// The sort value of one entry as an ordered integer; nullopt = null (sorts last).
std::optional<std::int64_t> key_of(const ServerSnapshot& s, SortKey key) {
  switch (key) {
    case SortKey::kNone:
    case SortKey::kName:
      return 0;
    case SortKey::kOffset:
      return ordered(s.offset_s);
    case SortKey::kAbsOffset:
      return s.offset_s ? ordered(std::fabs(*s.offset_s)) : std::nullopt;
    case SortKey::kDelay:
      return ordered(s.delay_s);
    case SortKey::kJitter:
      return ordered(s.jitter_s);
    case SortKey::kStratum:
      if (!s.stratum) return std::nullopt;
      return *s.stratum;
    case SortKey::kState:
      return static_cast<std::int64_t>(s.state);
    case SortKey::kLastSample:
      if (s.last_sample_unix_ns == 0) return std::nullopt;
      return s.last_sample_unix_ns;
  }
  return std::nullopt;
}

// Where an entry stands in an order: its sort value, name, address and position.
struct Tuple {
  std::optional<std::int64_t> key;
  std::string_view name;
  std::string_view address;
  std::uint32_t pos = 0;
};

Tuple tuple_of(const ServerSnapshot& s, SortKey key, std::uint32_t pos) {
  return Tuple{key_of(s, key), s.name, s.address, pos};
}

int three_way(auto a, auto b) { return a < b ? -1 : (b < a ? 1 : 0); }

int compare_identity(const Tuple& a, const Tuple& b) {
  if (const int c = a.name.compare(b.name); c != 0) return c < 0 ? -1 : 1;
  if (const int c = a.address.compare(b.address); c != 0) return c < 0 ? -1 : 1;
  return three_way(a.pos, b.pos);
}

// <0 when a comes first in the order of (key, descending).
int compare(const Tuple& a, const Tuple& b, SortKey key, bool descending) {
  if (key == SortKey::kName) {
    const int c = compare_identity(a, b);
    return descending ? -c : c;
  }
  if (a.key.has_value() != b.key.has_value()) return a.key ? -1 : 1;  // nulls last
  if (a.key && *a.key != *b.key) {
    const int c = three_way(*a.key, *b.key);
    return descending ? -c : c;
  }
  return compare_identity(a, b);  // ties: name, address, position, always ascending
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool contains_folded(std::string_view text, std::string_view needle_lower) {
  if (needle_lower.size() > text.size()) return false;
  return std::search(text.begin(), text.end(), needle_lower.begin(), needle_lower.end(),
                     [](char a, char b) { return ascii_lower(a) == b; }) != text.end();
}

bool matches(const ServerSnapshot& s, const ServersQuery& q) {
  if (q.states != 0 && (q.states & (1U << static_cast<unsigned>(s.state))) == 0) return false;
  if (q.alert) {
    const bool firing =
        std::any_of(s.alerts.begin(), s.alerts.end(),
                    [&](const monitor::ActiveAlert& a) { return a.kind == *q.alert; });
    if (!firing) return false;
  }
  // The name and address are usually inside the entry (short strings); the host last.
  if (!q.q.empty() && !contains_folded(s.name, q.q) && !contains_folded(s.address, q.q) &&
      !contains_folded(s.host, q.q)) {
    return false;
  }
  return true;
}

// ---- Cursors: base64url (no padding) of a small binary record --------------------------------

constexpr std::uint8_t kCursorVersion = 1;

struct Cursor {
  SortKey sort = SortKey::kNone;
  bool descending = false;
  std::optional<std::int64_t> key;
  std::uint32_t pos = 0;
  std::string name;
  std::string address;
};

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint64_t get_le(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in[at + static_cast<std::size_t>(i)]))
         << (8 * i);
  }
  return v;
}

std::string encode_cursor(const Tuple& t, SortKey sort, bool descending) {
  const auto& key = t.key;
  const std::uint32_t pos = t.pos;
  std::string b;
  b.push_back(static_cast<char>(kCursorVersion));
  b.push_back(static_cast<char>(sort));
  b.push_back(static_cast<char>(descending ? 1 : 0));
  b.push_back(static_cast<char>(key ? 1 : 0));
  put_le(b, static_cast<std::uint64_t>(key.value_or(0)), 8);
  put_le(b, pos, 4);
  const std::size_t name_len = std::min<std::size_t>(t.name.size(), 0xFFFF);
  const std::size_t address_len = std::min<std::size_t>(t.address.size(), 0xFFFF);
  put_le(b, name_len, 2);
  b.append(t.name.substr(0, name_len));
  put_le(b, address_len, 2);
  b.append(t.address.substr(0, address_len));
  return proto::encode_base64url(b);
}

std::optional<Cursor> decode_cursor(std::string_view text) {
  const auto bytes = proto::decode_base64url(text);
  if (!bytes || bytes->size() < 18) return std::nullopt;
  const std::string& b = *bytes;
  if (static_cast<std::uint8_t>(b[0]) != kCursorVersion) return std::nullopt;
  Cursor c;
  const auto sort = static_cast<std::uint8_t>(b[1]);
  const auto desc = static_cast<std::uint8_t>(b[2]);
  const auto has_key = static_cast<std::uint8_t>(b[3]);
  if (sort >= kSortKeyCount || desc > 1 || has_key > 1) return std::nullopt;
  c.sort = static_cast<SortKey>(sort);
  c.descending = desc == 1;
  const auto key = static_cast<std::int64_t>(get_le(b, 4, 8));
  if (has_key == 1) c.key = key;
  c.pos = static_cast<std::uint32_t>(get_le(b, 12, 4));
  const std::size_t name_len = get_le(b, 16, 2);
  if (b.size() < 18 + name_len + 2) return std::nullopt;
  c.name = b.substr(18, name_len);
  const std::size_t address_len = get_le(b, 18 + name_len, 2);
  if (b.size() != 20 + name_len + address_len) return std::nullopt;
  c.address = b.substr(20 + name_len, address_len);
  return c;
}

// The first index of the configuration order after the cursor's entry: after it where it is
// now, or where it was if it is gone (the next entry has moved into its place).
std::size_t start_in_configuration_order(const monitor::Snapshot& snap, const Cursor& c) {
  const auto& servers = snap.servers;
  const auto same = [&](std::size_t i) {
    return servers[i]->name == c.name && servers[i]->address == c.address;
  };
  if (c.pos < servers.size() && same(c.pos)) return c.pos + 1;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (same(i)) return i + 1;
  }
  return std::min<std::size_t>(c.pos, servers.size());
}

// Sorts positions by (name, address, position). A million strings compared through
// their entries would touch a cache line of a different entry at every step: the names and
// addresses are first copied into one buffer, each with the 8 bytes that follow the prefix all
// names share as an integer, so most comparisons are one integer comparison.
void sort_by_identity_of(const monitor::Snapshot& snap, Positions& out) {
  const auto& servers = snap.servers;
  const std::size_t n = out.size();
  std::size_t common = n == 0 ? 0 : servers[out[0]]->name.size();
  std::size_t bytes = 0;
  for (const std::uint32_t i : out) {
    const std::string& name = servers[i]->name;
    const std::string& first = servers[out[0]]->name;
    common = std::min(common, name.size());
    std::size_t k = 0;
    while (k < common && name[k] == first[k]) ++k;
    common = k;
    bytes += name.size() + servers[i]->address.size();
  }
  std::basic_string<char, std::char_traits<char>, KernelAllocator<char>> arena;
  arena.reserve(bytes);
  struct Record {
    std::uint64_t prefix;  // bytes common..common+8 of the name, big-endian, zero-padded
    std::uint32_t name_at;
    std::uint32_t name_len;
    std::uint32_t address_len;  // the address follows the name in the arena
    std::uint32_t pos;
  };
  std::vector<Record, KernelAllocator<Record>> records;
  records.reserve(n);
  const bool fits = bytes <= 0xFFFFFFFFU;
  for (std::size_t j = 0; j < n && fits; ++j) {
    const std::uint32_t i = out[j];
    const std::string& name = servers[i]->name;
    const std::string& address = servers[i]->address;
    std::uint64_t prefix = 0;
    for (std::size_t k = 0; k < 8; ++k) {
      const std::size_t at = common + k;
      prefix = (prefix << 8) | (at < name.size() ? static_cast<std::uint8_t>(name[at]) : 0U);
    }
    records.push_back(Record{prefix, static_cast<std::uint32_t>(arena.size()),
                             static_cast<std::uint32_t>(name.size()),
                             static_cast<std::uint32_t>(address.size()), i});
    arena += name;
    arena += address;
  }
  if (!fits) {  // over 4 GiB of names: compare through the entries
    std::sort(out.begin(), out.end(), [&](std::uint32_t a, std::uint32_t b) {
      return compare_identity(tuple_of(*servers[a], SortKey::kName, a),
                              tuple_of(*servers[b], SortKey::kName, b)) < 0;
    });
    return;
  }
  const std::string_view all(arena.data(), arena.size());
  std::sort(records.begin(), records.end(), [&](const Record& a, const Record& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    const std::string_view an = all.substr(a.name_at, a.name_len);
    const std::string_view bn = all.substr(b.name_at, b.name_len);
    if (const int c = an.compare(bn); c != 0) return c < 0;
    const std::string_view aa = all.substr(a.name_at + a.name_len, a.address_len);
    const std::string_view ba = all.substr(b.name_at + b.name_len, b.address_len);
    if (const int c = aa.compare(ba); c != 0) return c < 0;
    return a.pos < b.pos;
  });
  out.clear();
  for (const Record& r : records) out.push_back(r.pos);
}

}  // namespace

// ---- Parameters -----------------------------------------------------------------------------

Result<ServersQuery, std::string> parse_servers_query(
    const std::vector<std::pair<std::string, std::string>>& params) {
  ServersQuery q;
  bool seen_limit = false;
  bool seen_sort = false;
  for (const auto& [name, value] : params) {
    if (name == "limit") {
      if (seen_limit) return Err{std::string("'limit' given twice")};
      seen_limit = true;
      std::size_t v = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < 1 ||
          v > kMaxPageLimit) {
        return Err{"'limit' must be a whole number from 1 to " + std::to_string(kMaxPageLimit)};
      }
      q.limit = v;
    } else if (name == "cursor") {
      if (value.size() > kMaxCursorLength) return Err{std::string("'cursor' is not a cursor")};
      q.cursor = value;
    } else if (name == "state") {
      int found = -1;
      for (int i = 0; i < kServerStateCount; ++i) {
        if (value == monitor::to_string(static_cast<monitor::ServerState>(i))) found = i;
      }
      if (found < 0) {
        return Err{
            std::string("'state' must be one of selected, candidate, falseticker, unreachable, "
                        "unsynchronized, kod, pending, auth_failed")};
      }
      q.states |= 1U << static_cast<unsigned>(found);
    } else if (name == "q") {
      q.q.clear();
      for (const char c : value) q.q.push_back(ascii_lower(c));
    } else if (name == "alert") {
      std::optional<monitor::AlertKind> found;
      for (int i = 0; i < monitor::kAlertKindCount; ++i) {
        const auto kind = static_cast<monitor::AlertKind>(i);
        if (monitor::is_server_alert(kind) && value == monitor::to_string(kind)) found = kind;
      }
      if (!found) {
        return Err{std::string(
            "'alert' must be one of offset, delay, stratum, unreachable, falseticker, kod, leap, "
            "unsynchronized, authentication, certificate")};
      }
      q.alert = found;
    } else if (name == "sort") {
      if (seen_sort) return Err{std::string("'sort' given twice")};
      seen_sort = true;
      std::string_view v = value;
      q.descending = v.starts_with('-');
      if (q.descending) v.remove_prefix(1);
      const auto* it = std::find(kSortNames.begin() + 1, kSortNames.end(), v);
      if (v.empty() || it == kSortNames.end()) {
        return Err{std::string(
            "'sort' must be one of name, offset, abs_offset, delay, jitter, stratum, state, "
            "last_sample, with a leading '-' for descending")};
      }
      q.sort = static_cast<SortKey>(it - kSortNames.begin());
    }
  }
  return q;
}

// ---- The orders -----------------------------------------------------------------------------

bool SortOrders::fresh(const SortOrder& order, std::int64_t unix_ns) {
  const std::int64_t age = unix_ns > order.built_from_unix_ns ? unix_ns - order.built_from_unix_ns
                                                              : order.built_from_unix_ns - unix_ns;
  return age == 0 || age < kCostFactor * order.build_ns;
}

std::shared_ptr<const SortOrder> SortOrders::order(const monitor::Snapshot& snapshot, SortKey key,
                                                   bool descending) {
  Slot& slot = slots_[static_cast<std::size_t>(key) * 2 + (descending ? 1 : 0)];
  std::lock_guard slot_lock(slot.mutex);
  // The name order depends on nothing but the layout: it never gets old.
  if (slot.order && (key == SortKey::kName || fresh(*slot.order, snapshot.generated_unix_ns))) {
    return slot.order;
  }
  const auto start = std::chrono::steady_clock::now();
  auto built = std::make_shared<SortOrder>(build(snapshot, key, descending));
  built->built_from_unix_ns = snapshot.generated_unix_ns;
  built->build_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  {
    std::lock_guard lock(mutex_);
    ++built_;
    build_ns_ += built->build_ns;
  }
  slot.order = std::move(built);
  return slot.order;
}

void SortOrders::drop_stale(std::int64_t now_unix_ns) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (i / 2 == static_cast<std::size_t>(SortKey::kName)) continue;
    Slot& slot = slots_[i];
    std::unique_lock slot_lock(slot.mutex, std::try_to_lock);
    if (slot_lock.owns_lock() && slot.order && !fresh(*slot.order, now_unix_ns)) {
      slot.order.reset();  // the requests still reading it keep it alive
    }
  }
}

std::size_t SortOrders::built() const {
  std::lock_guard lock(mutex_);
  return built_;
}

std::int64_t SortOrders::build_ns() const {
  std::lock_guard lock(mutex_);
  return build_ns_;
}

SortOrder SortOrders::build(const monitor::Snapshot& snapshot, SortKey key, bool descending) {
  SortOrder result;
  Positions& out = result.positions;
  const auto& servers = snapshot.servers;
  const auto n = static_cast<std::uint32_t>(servers.size());
  out.reserve(n);
  if (key == SortKey::kName) {
    if (descending) {
      const auto ascending = order(snapshot, SortKey::kName, false);
      out.assign(ascending->positions.rbegin(), ascending->positions.rend());
      return result;
    }
    for (std::uint32_t i = 0; i < n; ++i) out.push_back(i);
    sort_by_identity_of(snapshot, out);
    return result;
  }
  if (key == SortKey::kStratum || key == SortKey::kState) {
    // Few distinct values: a stable counting sort of the name order keeps ties by name.
    const auto by_name = order(snapshot, SortKey::kName, false);
    constexpr std::size_t kValues = 257;  // 0..255, then null
    std::vector<std::uint32_t> count(kValues + 1, 0);
    const auto bucket = [&](std::uint32_t pos) -> std::size_t {
      const auto v = key_of(*servers[pos], key);
      if (!v) return kValues - 1;
      const auto clamped = static_cast<std::size_t>(std::clamp<std::int64_t>(*v, 0, 255));
      return descending ? 255 - clamped : clamped;
    };
    for (const std::uint32_t pos : by_name->positions) ++count[bucket(pos) + 1];
    for (std::size_t i = 1; i <= kValues; ++i) count[i] += count[i - 1];
    out.resize(n);
    result.keys.resize(count[kValues - 1]);  // the values; the nulls' bucket starts there
    for (const std::uint32_t pos : by_name->positions) {
      const std::size_t b = bucket(pos);
      const std::size_t at = count[b]++;
      out[at] = pos;
      if (b != kValues - 1) result.keys[at] = static_cast<std::int64_t>(descending ? 255 - b : b);
    }
    return result;
  }
  struct Keyed {
    std::int64_t key;
    std::uint32_t pos;
  };
  std::vector<Keyed, KernelAllocator<Keyed>> keyed;
  Positions nulls;
  keyed.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (const auto v = key_of(*servers[i], key)) {
      keyed.push_back({*v, i});
    } else {
      nulls.push_back(i);
    }
  }
  const auto identity_less = [&](std::uint32_t a, std::uint32_t b) {
    return compare_identity(tuple_of(*servers[a], SortKey::kName, a),
                            tuple_of(*servers[b], SortKey::kName, b)) < 0;
  };
  std::sort(keyed.begin(), keyed.end(), [&](const Keyed& a, const Keyed& b) {
    if (a.key != b.key) return descending ? a.key > b.key : a.key < b.key;
    return identity_less(a.pos, b.pos);
  });
  sort_by_identity_of(snapshot, nulls);
  result.keys.reserve(keyed.size());
  for (const Keyed& k : keyed) {
    out.push_back(k.pos);
    result.keys.push_back(k.key);
  }
  out.insert(out.end(), nulls.begin(), nulls.end());
  return result;
}

ServerIndex::ServerIndex(std::shared_ptr<const monitor::Snapshot> snapshot)
    : ServerIndex(snapshot, std::make_shared<SortOrders>(snapshot->layout_generation,
                                                         snapshot->servers.size())) {}

ServerIndex::ServerIndex(std::shared_ptr<const monitor::Snapshot> snapshot,
                         std::shared_ptr<SortOrders> orders)
    : snapshot_(std::move(snapshot)), orders_(std::move(orders)) {}

const SortOrder& ServerIndex::order(SortKey key, bool descending) {
  auto& used = used_[static_cast<std::size_t>(key) * 2 + (descending ? 1 : 0)];
  if (!used) used = orders_->order(*snapshot_, key, descending);
  return *used;
}

std::shared_ptr<ServerIndex> ServerIndexCache::get(
    const std::shared_ptr<const monitor::View>& view) {
  const auto& snapshot = view->monitor;
  std::lock_guard lock(mutex_);
  if (!orders_ ||
      (!orders_->fits(*snapshot) && snapshot->layout_generation >= orders_->layout_generation())) {
    orders_ = std::make_shared<SortOrders>(snapshot->layout_generation, snapshot->servers.size());
  }
  if (!orders_->fits(*snapshot)) {
    // A late request on an older layout: orders of its own, so that requests on the two
    // layouts do not take the cache from each other.
    return std::make_shared<ServerIndex>(snapshot);
  }
  orders_->drop_stale(snapshot->generated_unix_ns);
  return std::make_shared<ServerIndex>(snapshot, orders_);
}

// ---- Pages ----------------------------------------------------------------------------------

Result<ServersPage, std::string> select_page(ServerIndex& index, const ServersQuery& query) {
  const monitor::Snapshot& snap = index.snapshot();
  const auto& servers = snap.servers;
  const std::size_t n = servers.size();
  const SortOrder* order =
      query.sort == SortKey::kNone ? nullptr : &index.order(query.sort, query.descending);
  const auto at = [&](std::size_t i) -> std::uint32_t {
    return order != nullptr ? order->positions[i] : static_cast<std::uint32_t>(i);
  };
  // Where entry i of the order stands: the value it was ordered by (which may have changed in
  // this snapshot since), its name and address (the same in every snapshot of the layout).
  const auto tuple_at = [&](std::size_t i) {
    const std::uint32_t pos = at(i);
    Tuple t = tuple_of(*servers[pos], query.sort, pos);
    if (query.sort != SortKey::kName && order != nullptr) {
      t.key = i < order->keys.size() ? std::optional<std::int64_t>(order->keys[i]) : std::nullopt;
    }
    return t;
  };

  std::size_t start = 0;
  if (!query.cursor.empty()) {
    const auto cursor = decode_cursor(query.cursor);
    if (!cursor) return Err{std::string("'cursor' is not a cursor of this API")};
    if (cursor->sort != query.sort || cursor->descending != query.descending) {
      return Err{std::string("'cursor' was made for another sort: give the same 'sort' again")};
    }
    if (order == nullptr) {
      start = start_in_configuration_order(snap, *cursor);
    } else {
      // The first entry after the mark: a binary search over the order's own values.
      const Tuple mark{cursor->key, cursor->name, cursor->address, cursor->pos};
      std::size_t low = 0;
      std::size_t high = n;
      while (low < high) {
        const std::size_t mid = low + (high - low) / 2;
        if (compare(mark, tuple_at(mid), query.sort, query.descending) < 0) {
          high = mid;
        } else {
          low = mid + 1;
        }
      }
      start = low;
    }
  }

  ServersPage page;
  const bool filtered = query.filtered();
  page.positions.reserve(std::min(query.limit, n - std::min(start, n)));
  std::size_t i = start;
  std::size_t last = 0;  // where the page's last entry is in the order
  for (; i < n && page.positions.size() < query.limit; ++i) {
    const std::uint32_t pos = at(i);
    if (!filtered || matches(*servers[pos], query)) {
      page.positions.push_back(pos);
      last = i;
    }
  }
  // One pass over the whole list at most: the matches after the page up to the next one (is
  // there a next page?), then, for the total, those before the page and after that.
  bool more = false;
  std::size_t matched = page.positions.size();
  for (; i < n && !more; ++i) {
    more = !filtered || matches(*servers[at(i)], query);
    if (more) ++matched;
  }
  if (more && !page.positions.empty()) {
    page.next_cursor = encode_cursor(tuple_at(last), query.sort, query.descending);
  }
  if (!filtered) {
    page.total = n;
  } else {
    // Order does not matter for a count: positions outside [start, i) of the order are the
    // entries outside the scanned range, counted in configuration order where there is one.
    for (std::size_t k = 0; k < std::min(start, n); ++k) matched += matches(*servers[at(k)], query);
    for (std::size_t k = i; k < n; ++k) matched += matches(*servers[at(k)], query);
    page.total = matched;
  }
  return page;
}

bool write_servers_page(const monitor::Snapshot& snap, const ServersPage& page,
                        const std::function<bool(std::string_view)>& sink) {
  // Written entry by entry (each one's JSON tree freed before the next) in chunks of about
  // kChunkBytes: a page of 10,000 entries costs neither a tree of the whole page nor its whole
  // text at once. Keys in the order a dumped object has them (sorted), so the body is what
  // dumping one document would give.
  constexpr std::size_t kChunkBytes = 32 * 1024;
  std::string out;
  out.reserve(kChunkBytes + 4096);
  out += "{\"generated_at\":";
  out += detail::time_or_null(snap.generated_unix_ns).dump();
  out += ",\"next_cursor\":";
  out += page.next_cursor ? json(*page.next_cursor).dump() : "null";
  out += ",\"servers\":[";
  for (std::size_t i = 0; i < page.positions.size(); ++i) {
    if (i > 0) out += ',';
    out += detail::server_json(*snap.servers[page.positions[i]])
               .dump(-1, ' ', false, json::error_handler_t::replace);
    if (out.size() >= kChunkBytes) {
      if (!sink(out)) return false;
      out.clear();
    }
  }
  out += "],\"total\":";
  out += std::to_string(page.total);
  out += "}\n";
  return sink(out);
}

std::string render_servers_page(const monitor::Snapshot& snap, const ServersPage& page) {
  std::string body;
  body.reserve(96 + page.positions.size() * 640);
  write_servers_page(snap, page, [&body](std::string_view chunk) {
    body += chunk;
    return true;
  });
  return body;
}

Result<std::string, std::string> serve_servers(
    ServerIndex& index, const std::vector<std::pair<std::string, std::string>>& params) {
  auto query = parse_servers_query(params);
  if (!query.ok()) return Err{query.error()};
  auto page = select_page(index, *query);
  if (!page.ok()) return Err{page.error()};
  return render_servers_page(index.snapshot(), *page);
}

// ---- Summary --------------------------------------------------------------------------------

std::size_t summary_bucket(double abs_value) {
  return static_cast<std::size_t>(
      std::lower_bound(kSummaryBounds.begin(), kSummaryBounds.end(), abs_value) -
      kSummaryBounds.begin());
}

namespace {

// Keeps the best `k` of what it is offered, by `better` (a strict order); sorted() gives them
// best first. O(n log k) for n offers, k entries of memory.
template <typename Better>
class TopK {
 public:
  TopK(std::size_t k, Better better) : k_(k), better_(better) {}
  void offer(std::uint32_t pos) {
    if (heap_.size() < k_) {
      heap_.push_back(pos);
      std::push_heap(heap_.begin(), heap_.end(), better_);
    } else if (k_ > 0 && better_(pos, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better_);
      heap_.back() = pos;
      std::push_heap(heap_.begin(), heap_.end(), better_);
    }
  }
  std::vector<std::uint32_t> sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), better_);
    return std::move(heap_);
  }

 private:
  std::size_t k_;
  Better better_;
  std::vector<std::uint32_t> heap_;
};

json counts_json(const std::vector<std::uint64_t>& counts) { return json(counts); }

}  // namespace

std::string render_summary(const monitor::View& view) {
  const monitor::Snapshot& snap = *view.monitor;
  const auto& servers = snap.servers;
  constexpr std::size_t kBuckets = kSummaryBounds.size() + 1;
  std::array<std::uint64_t, kServerStateCount> states{};
  std::array<std::uint64_t, monitor::kAlertKindCount> alerts{};
  std::vector<std::uint64_t> negative(kBuckets, 0);
  std::vector<std::uint64_t> positive(kBuckets, 0);
  std::vector<std::uint64_t> delay(kBuckets, 0);
  std::vector<std::uint64_t> jitter(kBuckets, 0);
  std::uint64_t offset_missing = 0;
  std::uint64_t delay_missing = 0;
  std::uint64_t jitter_missing = 0;

  const auto identity_less = [&](std::uint32_t a, std::uint32_t b) {
    return compare_identity(tuple_of(*servers[a], SortKey::kName, a),
                            tuple_of(*servers[b], SortKey::kName, b)) < 0;
  };
  TopK worst(kSummaryTop, [&](std::uint32_t a, std::uint32_t b) {
    const double x = std::fabs(*servers[a]->offset_s);
    const double y = std::fabs(*servers[b]->offset_s);
    if (x != y) return x > y;
    return identity_less(a, b);
  });
  TopK changed(kSummaryTop, [&](std::uint32_t a, std::uint32_t b) {
    const std::int64_t x = servers[a]->state_changed_unix_ns;
    const std::int64_t y = servers[b]->state_changed_unix_ns;
    if (x != y) return x > y;
    return identity_less(a, b);
  });

  for (std::size_t i = 0; i < servers.size(); ++i) {
    const ServerSnapshot& s = *servers[i];
    const auto pos = static_cast<std::uint32_t>(i);
    const auto state = static_cast<std::size_t>(s.state);
    if (state < states.size()) ++states[state];
    std::uint32_t kinds = 0;
    for (const monitor::ActiveAlert& a : s.alerts) kinds |= 1U << static_cast<unsigned>(a.kind);
    for (std::size_t k = 0; k < alerts.size(); ++k) {
      if ((kinds & (1U << k)) != 0) ++alerts[k];
    }
    if (s.offset_s && !std::isnan(*s.offset_s)) {
      (*s.offset_s < 0 ? negative : positive)[summary_bucket(std::fabs(*s.offset_s))]++;
      worst.offer(pos);
    } else {
      ++offset_missing;
    }
    if (s.delay_s && !std::isnan(*s.delay_s)) {
      ++delay[summary_bucket(std::fabs(*s.delay_s))];
    } else {
      ++delay_missing;
    }
    if (s.jitter_s && !std::isnan(*s.jitter_s)) {
      ++jitter[summary_bucket(std::fabs(*s.jitter_s))];
    } else {
      ++jitter_missing;
    }
    if (s.state_changed_unix_ns != 0 && s.previous_state) changed.offer(pos);
  }

  json state_counts = json::object();
  for (int i = 0; i < kServerStateCount; ++i) {
    state_counts[monitor::to_string(static_cast<monitor::ServerState>(i))] =
        states[static_cast<std::size_t>(i)];
  }
  json alert_counts = json::object();
  for (int i = 0; i < monitor::kAlertKindCount; ++i) {
    const auto kind = static_cast<monitor::AlertKind>(i);
    if (monitor::is_server_alert(kind)) {
      alert_counts[monitor::to_string(kind)] = alerts[static_cast<std::size_t>(i)];
    }
  }
  json worst_list = json::array();
  for (const std::uint32_t pos : worst.sorted()) {
    worst_list.push_back(detail::server_json(*servers[pos]));
  }
  json changes = json::array();
  for (const std::uint32_t pos : changed.sorted()) {
    const ServerSnapshot& s = *servers[pos];
    changes.push_back({{"name", s.name},
                       {"address", s.address.empty() ? json(nullptr) : json(s.address)},
                       {"from", monitor::to_string(*s.previous_state)},
                       {"to", monitor::to_string(s.state)},
                       {"at", detail::time_or_null(s.state_changed_unix_ns)},
                       {"at_unix", detail::unix_s_or_null(s.state_changed_unix_ns)}});
  }
  const auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  return detail::dump(
      json{{"generated_at", detail::time_or_null(snap.generated_unix_ns)},
           {"entries", servers.size()},
           {"sources", snap.sources},
           {"states", std::move(state_counts)},
           {"alerts", std::move(alert_counts)},
           {"selected", opt(snap.selected)},
           {"selected_address", opt(snap.selected_address)},
           {"system_offset", opt(snap.system_offset_s)},
           {"system_jitter", opt(snap.system_jitter_s)},
           {"truechimer_count", snap.truechimers},
           {"majority", snap.majority},
           {"distributions",
            {{"bounds", json(std::vector<double>(kSummaryBounds.begin(), kSummaryBounds.end()))},
             {"offset",
              {{"negative", counts_json(negative)},
               {"positive", counts_json(positive)},
               {"missing", offset_missing}}},
             {"delay", {{"counts", counts_json(delay)}, {"missing", delay_missing}}},
             {"jitter", {{"counts", counts_json(jitter)}, {"missing", jitter_missing}}}}},
           {"worst_offset", std::move(worst_list)},
           {"recent_state_changes", std::move(changes)}});
}

}  // namespace ntpmon::exporter::api
