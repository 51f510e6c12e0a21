// GET /api/v1/servers pages (sort, filters, keyset cursors) and GET /api/v1/summary, on
// hand-built snapshots (export/server_pages.hpp).
#include "export/server_pages.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "export/api.hpp"
#include "monitor/view.hpp"

namespace ntpmon::exporter::api {
namespace {

using monitor::ServerSnapshot;
using monitor::ServerState;
using nlohmann::json;
using Params = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t kS = 1'000'000'000;

ServerSnapshot server(std::string name, std::string address, std::optional<double> offset,
                      ServerState state = ServerState::kCandidate) {
  ServerSnapshot s;
  s.name = std::move(name);
  s.host = s.name + ".example.test";
  s.address = std::move(address);
  s.state = state;
  s.offset_s = offset;
  if (offset) {
    s.delay_s = std::fabs(*offset) * 2 + 0.001;
    s.jitter_s = std::fabs(*offset) / 10;
    s.stratum = 2;
    s.last_sample_unix_ns = 1'700'000'000 * kS;
  }
  return s;
}

std::shared_ptr<const monitor::Snapshot> snapshot_of(const std::vector<ServerSnapshot>& servers) {
  auto snap = std::make_shared<monitor::Snapshot>();
  snap->generated_unix_ns = 1'700'000'100 * kS;
  for (const auto& s : servers) snap->servers.push_back(std::make_shared<ServerSnapshot>(s));
  return snap;
}

// A fleet with every kind of value: negative, positive and equal offsets, nulls, a pool name
// with two addresses, several states and strata, names out of configuration order.
std::vector<ServerSnapshot> mixed_fleet() {
  std::vector<ServerSnapshot> v;
  v.push_back(server("delta", "192.0.2.4", 0.004));
  v.push_back(server("alpha", "192.0.2.1", -0.010, ServerState::kSelected));
  v.push_back(server("pool", "192.0.2.21", 0.002));
  v.push_back(server("pool", "192.0.2.20", 0.002));  // same name and offset: address decides
  v.push_back(server("echo", "", std::nullopt, ServerState::kPending));
  v.push_back(server("bravo", "192.0.2.2", 0.002));  // ties with the pool by offset
  v.push_back(server("charlie", "192.0.2.3", std::nullopt, ServerState::kUnreachable));
  v.push_back(server("foxtrot", "2001:db8::6", -0.0005, ServerState::kFalseticker));
  v.push_back(server("golf", "192.0.2.7", 0.250, ServerState::kUnsynchronized));
  v.push_back(server("hotel", "192.0.2.8", 0.0));
  v[8].stratum = 16;
  v[9].stratum = 1;
  v[1].stratum = 1;
  v[9].last_sample_unix_ns = 1'700'000'050 * kS;
  v[7].jitter_s.reset();
  v[0].alerts.push_back({monitor::AlertKind::kOffset, 1'700'000'000 * kS, "offset high"});
  v[8].alerts.push_back({monitor::AlertKind::kOffset, 1'700'000'000 * kS, "offset high"});
  v[8].alerts.push_back({monitor::AlertKind::kUnsynchronized, 1'700'000'000 * kS, "leap 3"});
  v[6].alerts.push_back({monitor::AlertKind::kUnreachable, 1'700'000'000 * kS, "no reply"});
  return v;
}

json page(ServerIndex& index, const Params& params) {
  auto body = serve_servers(index, params);
  EXPECT_TRUE(body.ok()) << (body.ok() ? "" : body.error());
  return body.ok() ? json::parse(*body) : json();
}

std::string id_of(const json& entry) {
  return entry["name"].get<std::string>() + "/" +
         (entry["address"].is_null() ? "" : entry["address"].get<std::string>());
}

// Every entry, walking pages of `limit` with the cursors; checks each page's total.
std::vector<std::string> walk(ServerIndex& index, Params params, std::size_t limit,
                              std::size_t* pages = nullptr) {
  std::vector<std::string> out;
  std::string cursor;
  std::size_t n = 0;
  std::optional<std::size_t> total;
  while (true) {
    Params p = params;
    p.emplace_back("limit", std::to_string(limit));
    if (!cursor.empty()) p.emplace_back("cursor", cursor);
    const json body = page(index, p);
    ++n;
    EXPECT_LE(body["servers"].size(), limit);
    if (!total) total = body["total"].get<std::size_t>();
    EXPECT_EQ(body["total"], *total);
    for (const auto& e : body["servers"]) out.push_back(id_of(e));
    if (body["next_cursor"].is_null()) break;
    EXPECT_EQ(body["servers"].size(), limit);  // only the last page is short
    cursor = body["next_cursor"];
    if (n > 100) break;
  }
  if (total) {
    EXPECT_EQ(out.size(), *total);
  }
  if (pages != nullptr) *pages = n;
  return out;
}

// The documented order, computed apart from the index: the sort value (nulls last in both
// directions), then name, then address, ascending; -name reverses name and address.
std::vector<std::string> expected_order(const std::vector<ServerSnapshot>& fleet,
                                        const std::string& key, bool descending) {
  using Value = std::optional<double>;
  const auto value = [&](const ServerSnapshot& s) -> Value {
    if (key == "offset") return s.offset_s;
    if (key == "abs_offset") return s.offset_s ? Value(std::fabs(*s.offset_s)) : std::nullopt;
    if (key == "delay") return s.delay_s;
    if (key == "jitter") return s.jitter_s;
    if (key == "stratum") return s.stratum ? Value(*s.stratum) : std::nullopt;
    if (key == "state") return static_cast<double>(s.state);
    if (key == "last_sample") {
      return s.last_sample_unix_ns ? Value(static_cast<double>(s.last_sample_unix_ns))
                                   : std::nullopt;
    }
    return 0.0;  // name
  };
  std::vector<ServerSnapshot> v = fleet;
  std::stable_sort(v.begin(), v.end(), [&](const ServerSnapshot& a, const ServerSnapshot& b) {
    if (key == "name") {
      const auto x = std::tie(a.name, a.address);
      const auto y = std::tie(b.name, b.address);
      return descending ? y < x : x < y;
    }
    const Value x = value(a);
    const Value y = value(b);
    if (x.has_value() != y.has_value()) return x.has_value();
    if (x && *x != *y) return descending ? *x > *y : *x < *y;
    return std::tie(a.name, a.address) < std::tie(b.name, b.address);
  });
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.name + "/" + s.address);
  return out;
}

TEST(ServerPages, EverySortKeyBothDirectionsNullsLastTiesByNameThenAddress) {
  const auto fleet = mixed_fleet();
  ServerIndex index(snapshot_of(fleet));
  for (const std::string key :
       {"name", "offset", "abs_offset", "delay", "jitter", "stratum", "state", "last_sample"}) {
    for (const bool descending : {false, true}) {
      const std::string sort = (descending ? "-" : "") + key;
      for (const std::size_t limit : {1, 3, 4, 100}) {
        EXPECT_EQ(walk(index, {{"sort", sort}}, limit), expected_order(fleet, key, descending))
            << sort << " limit " << limit;
      }
    }
  }
}

// A larger fleet: names sharing a long prefix (the name order compares what follows it), many
// never measured (their order comes from the name order), duplicate names with addresses.
TEST(ServerPages, LargerFleetWithSharedPrefixesAndManyNulls) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 300; ++i) {
    const int n = (i * 7919) % 300;
    const std::optional<double> offset =
        i % 3 == 0 ? std::nullopt : std::optional<double>((n % 17) * 1e-4 - 8e-4);
    fleet.push_back(server("ntp.pool.example-" + std::to_string(n % 150),
                           "10.0.0." + std::to_string(n % 7), offset,
                           i % 5 == 0 ? ServerState::kUnreachable : ServerState::kCandidate));
  }
  ServerIndex index(snapshot_of(fleet));
  for (const std::string key : {"name", "offset", "abs_offset", "stratum", "state"}) {
    for (const bool descending : {false, true}) {
      const std::string sort = (descending ? "-" : "") + key;
      EXPECT_EQ(walk(index, {{"sort", sort}}, 37), expected_order(fleet, key, descending)) << sort;
    }
  }
}

TEST(ServerPages, ConcreteOrdersForOffset) {
  ServerIndex index(snapshot_of(mixed_fleet()));
  // Ascending: the pool's two addresses and bravo tie at +2 ms: bravo, then pool by address.
  EXPECT_EQ(walk(index, {{"sort", "offset"}}, 4),
            (std::vector<std::string>{"alpha/192.0.2.1", "foxtrot/2001:db8::6", "hotel/192.0.2.8",
                                      "bravo/192.0.2.2", "pool/192.0.2.20", "pool/192.0.2.21",
                                      "delta/192.0.2.4", "golf/192.0.2.7", "charlie/192.0.2.3",
                                      "echo/"}));
  // Descending: the ties keep name order, nulls stay last.
  EXPECT_EQ(walk(index, {{"sort", "-offset"}}, 4),
            (std::vector<std::string>{"golf/192.0.2.7", "delta/192.0.2.4", "bravo/192.0.2.2",
                                      "pool/192.0.2.20", "pool/192.0.2.21", "hotel/192.0.2.8",
                                      "foxtrot/2001:db8::6", "alpha/192.0.2.1", "charlie/192.0.2.3",
                                      "echo/"}));
}

TEST(ServerPages, ConfigurationOrderWithoutSort) {
  const auto fleet = mixed_fleet();
  ServerIndex index(snapshot_of(fleet));
  std::vector<std::string> expected;
  for (const auto& s : fleet) expected.push_back(s.name + "/" + s.address);
  std::size_t pages = 0;
  EXPECT_EQ(walk(index, {}, 3, &pages), expected);
  EXPECT_EQ(pages, 4u);
  EXPECT_EQ(index.built(), 0u);  // configuration order needs no index
}

TEST(ServerPages, DefaultLimitIsAThousandWithANextCursor) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 2500; ++i)
    fleet.push_back(server("s" + std::to_string(i), "10.0.0.1", 0.001));
  ServerIndex index(snapshot_of(fleet));
  const json first = page(index, {});
  EXPECT_EQ(first["servers"].size(), 1000u);
  EXPECT_EQ(first["total"], 2500);
  ASSERT_TRUE(first["next_cursor"].is_string());
  const json second = page(index, {{"cursor", first["next_cursor"]}});
  EXPECT_EQ(second["servers"][0]["name"], "s1000");
  const json third = page(index, {{"cursor", second["next_cursor"]}});
  EXPECT_EQ(third["servers"].size(), 500u);
  EXPECT_TRUE(third["next_cursor"].is_null());
  // Exactly one full page: no cursor to an empty page.
  const json exact = page(index, {{"limit", "2500"}});
  EXPECT_EQ(exact["servers"].size(), 2500u);
  EXPECT_TRUE(exact["next_cursor"].is_null());
}

// Orders of 64 KiB and more (here 30,000 positions) come from mmap: they sort the same.
TEST(ServerPages, LargeOrdersFromTheKernelAllocator) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 30000; ++i) {
    fleet.push_back(server("n" + std::to_string((i * 7919) % 30000), "10.0.0.1",
                           i % 10 == 0 ? std::nullopt : std::optional<double>((i % 1000) * 1e-6)));
  }
  ServerIndex index(snapshot_of(fleet));
  const Positions& by_name = index.order(SortKey::kName, false).positions;
  ASSERT_EQ(by_name.size(), 30000u);
  const auto& servers = index.snapshot().servers;
  for (std::size_t i = 1; i < by_name.size(); ++i) {
    ASSERT_LT(servers[by_name[i - 1]]->name, servers[by_name[i]]->name);
  }
  const Positions& by_offset = index.order(SortKey::kOffset, true).positions;
  for (std::size_t i = 1; i < 27000; ++i) {
    ASSERT_GE(*servers[by_offset[i - 1]]->offset_s, *servers[by_offset[i]]->offset_s);
  }
  for (std::size_t i = 27000; i < 30000; ++i) ASSERT_FALSE(servers[by_offset[i]]->offset_s);
  Positions big(100000, 7);
  big.push_back(8);
  EXPECT_EQ(big.back(), 8u);
}

TEST(ServerPages, IndexBuiltOncePerSortAndDirectionAndShared) {
  ServerIndex index(snapshot_of(mixed_fleet()));
  for (int i = 0; i < 5; ++i) page(index, {{"sort", "abs_offset"}, {"limit", "2"}});
  EXPECT_EQ(index.built(), 1u);
  page(index, {{"sort", "-abs_offset"}});
  EXPECT_EQ(index.built(), 2u);
  page(index, {{"sort", "stratum"}});  // built from the name order: two more
  EXPECT_EQ(index.built(), 4u);

  // The cache hands the same orders to requests on snapshots of one layout (the same servers at
  // the same positions), each request reading its own snapshot; new orders for a new layout.
  ServerIndexCache cache;
  const auto view_at = [](std::uint64_t layout, std::int64_t unix_ns) {
    auto snap = std::make_shared<monitor::Snapshot>(*snapshot_of(mixed_fleet()));
    snap->layout_generation = layout;
    snap->generated_unix_ns = unix_ns;
    return std::make_shared<monitor::View>(monitor::View{snap, {}});
  };
  const auto view = view_at(7, 1'700'000'100 * kS);
  const auto a = cache.get(view);
  EXPECT_EQ(a->orders(), cache.get(view)->orders());
  const auto next = view_at(7, 1'700'000'101 * kS);
  const auto b = cache.get(next);
  EXPECT_EQ(b->orders(), a->orders());
  EXPECT_EQ(&b->snapshot(), next->monitor.get());
  const auto relaid = view_at(8, 1'700'000'102 * kS);
  const auto c = cache.get(relaid);
  EXPECT_NE(c->orders(), a->orders());
  // A late request on the older layout: orders of its own; the newer ones stay cached.
  const auto late = cache.get(view);
  EXPECT_EQ(&late->snapshot(), view->monitor.get());
  EXPECT_NE(late->orders(), c->orders());
  EXPECT_NE(late->orders(), a->orders());
  EXPECT_EQ(cache.get(relaid)->orders(), c->orders());
}

// An order serves later snapshots of its layout for kCostFactor times its build time, each page
// showing the request's own snapshot; past that it is built again, and the cache lets go of it.
TEST(ServerPages, AnOrderServesLaterSnapshotsForTwentyTimesItsBuildTime) {
  ServerIndexCache cache;
  const auto at = [](std::int64_t unix_ns) {
    auto snap = std::make_shared<monitor::Snapshot>(*snapshot_of(mixed_fleet()));
    snap->generated_unix_ns = unix_ns;
    return std::make_shared<monitor::View>(monitor::View{snap, {}});
  };
  const auto first = at(1'700'000'000 * kS);
  auto index = cache.get(first);
  page(*index, {{"sort", "-abs_offset"}});
  ASSERT_EQ(index->built(), 1u);
  ASSERT_GT(index->build_ns(), 0);
  const std::weak_ptr<const SortOrder> built =
      index->orders()->order(*first->monitor, SortKey::kAbsOffset, true);
  const std::int64_t reuse_ns = SortOrders::kCostFactor * index->build_ns();
  // Within that time the order answers; the page is the newer snapshot's.
  const auto second = at(first->monitor->generated_unix_ns + reuse_ns - 1);
  auto index2 = cache.get(second);
  const json body = page(*index2, {{"sort", "-abs_offset"}});
  EXPECT_EQ(index2->built(), 1u);
  EXPECT_EQ(&index2->snapshot(), second->monitor.get());
  EXPECT_EQ(body["servers"].size(), mixed_fleet().size());
  EXPECT_EQ(index2->orders()->order(*second->monitor, SortKey::kAbsOffset, true), built.lock());
  // Past it: the cache lets go of the old order (once no request reads it), and a page builds
  // it again.
  index.reset();
  index2.reset();
  const auto third = at(first->monitor->generated_unix_ns + reuse_ns);
  const auto index3 = cache.get(third);
  EXPECT_TRUE(built.expired());
  page(*index3, {{"sort", "-abs_offset"}});
  EXPECT_EQ(index3->built(), 2u);
  // The name order depends on the layout alone: never built again.
  page(*index3, {{"sort", "name"}});
  page(*cache.get(at(third->monitor->generated_unix_ns + 1000 * kS)), {{"sort", "name"}});
  EXPECT_EQ(index3->built(), 3u);
}

// Pages read through an order built from older values (the same layout): the boundaries are
// found in the order's own values, so a walk sees every entry once even though every value
// changed under it.
TEST(ServerPages, AWalkOverAReusedOrderSeesEveryEntryOnce) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 40; ++i) {
    fleet.push_back(server("s" + std::string(i < 10 ? "0" : "") + std::to_string(i),
                           "10.0.0." + std::to_string(i), 0.001 * (i + 1)));
  }
  ServerIndexCache cache;
  const auto first = std::make_shared<monitor::View>(monitor::View{snapshot_of(fleet), {}});
  for (auto& s : fleet) s.offset_s = -*s.offset_s;  // every value moves: the order reverses
  auto later = std::make_shared<monitor::Snapshot>(*snapshot_of(fleet));
  later->generated_unix_ns += 1;
  const auto second = std::make_shared<monitor::View>(monitor::View{later, {}});
  for (const std::string sort : {"offset", "-offset", "abs_offset", "stratum", "-state"}) {
    SCOPED_TRACE(sort);
    json body = page(*cache.get(first), {{"sort", sort}, {"limit", "9"}});
    std::vector<std::string> seen;
    for (const auto& e : body["servers"]) seen.push_back(id_of(e));
    while (body["next_cursor"].is_string()) {
      const auto index = cache.get(second);
      body = page(*index, {{"sort", sort}, {"limit", "9"}, {"cursor", body["next_cursor"]}});
      ASSERT_EQ(index->snapshot().generated_unix_ns, later->generated_unix_ns);
      for (const auto& e : body["servers"]) seen.push_back(id_of(e));
    }
    EXPECT_EQ(seen.size(), fleet.size());
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), fleet.size());
  }
}

// A page boundary stays put when other servers change between two snapshots: entries that did
// not change are neither repeated nor skipped.
TEST(ServerPages, CursorStableWhenOtherServersChange) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 40; ++i) {
    fleet.push_back(server("s" + std::string(i < 10 ? "0" : "") + std::to_string(i),
                           "10.0.0." + std::to_string(i), 0.001 * (i + 1)));
  }
  for (const std::string sort : {"offset", "-offset", "name", "-name", "state", "last_sample"}) {
    for (const bool with_sort : {true, false}) {
      const Params params = with_sort ? Params{{"sort", sort}} : Params{};
      ServerIndex before(snapshot_of(fleet));
      const json first = page(before, [&] {
        Params p = params;
        p.emplace_back("limit", "10");
        return p;
      }());
      ASSERT_TRUE(first["next_cursor"].is_string());
      std::set<std::string> seen;
      for (const auto& e : first["servers"]) seen.insert(id_of(e));

      // The next snapshot: five servers of the first page and five after it change their
      // offset and state (some move across the boundary), one new server appears at the end
      // of the configuration.
      std::vector<ServerSnapshot> changed = fleet;
      std::set<std::string> moved;
      for (const int i : {0, 3, 5, 7, 9, 12, 20, 25, 33, 39}) {
        changed[static_cast<std::size_t>(i)].offset_s = 0.0405 - 0.001 * i;
        changed[static_cast<std::size_t>(i)].state = ServerState::kFalseticker;
        changed[static_cast<std::size_t>(i)].last_sample_unix_ns += i * kS;
        moved.insert(id_of(json{{"name", changed[static_cast<std::size_t>(i)].name},
                                {"address", changed[static_cast<std::size_t>(i)].address}}));
      }
      changed.push_back(server("s99", "10.0.0.99", 0.5));
      moved.insert("s99/10.0.0.99");
      ServerIndex after(snapshot_of(changed));
      std::vector<std::string> rest;
      std::string cursor = first["next_cursor"];
      while (!cursor.empty()) {
        Params p = params;
        p.emplace_back("limit", "7");
        p.emplace_back("cursor", cursor);
        const json body = page(after, p);
        for (const auto& e : body["servers"]) rest.push_back(id_of(e));
        cursor = body["next_cursor"].is_null() ? "" : body["next_cursor"].get<std::string>();
      }
      // No entry twice in the rest, no unchanged entry of the first page again, and every
      // unchanged entry that was after the boundary is there.
      const std::set<std::string> rest_set(rest.begin(), rest.end());
      EXPECT_EQ(rest_set.size(), rest.size()) << sort << with_sort;
      for (const auto& id : rest) {
        if (!moved.contains(id)) {
          EXPECT_FALSE(seen.contains(id)) << id << " " << sort;
        }
      }
      for (const auto& s : fleet) {
        const std::string id = s.name + "/" + s.address;
        if (!moved.contains(id) && !seen.contains(id)) {
          EXPECT_TRUE(rest_set.contains(id)) << id << " skipped, " << sort << with_sort;
        }
      }
    }
  }
}

TEST(ServerPages, FiltersCombineAndTotalCountsEveryPage) {
  ServerIndex index(snapshot_of(mixed_fleet()));
  // Repeated state: either.
  json body = page(index, {{"state", "selected"}, {"state", "falseticker"}});
  EXPECT_EQ(body["total"], 2);
  EXPECT_EQ(body["servers"][0]["name"], "alpha");
  EXPECT_EQ(body["servers"][1]["name"], "foxtrot");
  // q: case-insensitive, in name, host or address.
  EXPECT_EQ(page(index, {{"q", "POOL"}})["total"], 2);
  EXPECT_EQ(page(index, {{"q", "db8::"}})["servers"][0]["name"], "foxtrot");
  EXPECT_EQ(page(index, {{"q", "Golf.Example"}})["total"], 1);
  EXPECT_EQ(page(index, {{"q", "nothing-like-it"}})["total"], 0);
  // alert: servers with that kind firing.
  body = page(index, {{"alert", "offset"}, {"sort", "-offset"}});
  EXPECT_EQ(body["total"], 2);
  EXPECT_EQ(body["servers"][0]["name"], "golf");
  EXPECT_EQ(body["servers"][1]["name"], "delta");
  // All together, with paging: the total is of every page.
  body = page(index, {{"state", "candidate"},
                      {"state", "unsynchronized"},
                      {"q", ".2"},
                      {"alert", "offset"},
                      {"limit", "1"}});
  EXPECT_EQ(body["total"], 2);
  EXPECT_EQ(body["servers"].size(), 1u);
  EXPECT_EQ(body["servers"][0]["name"], "delta");
  ASSERT_TRUE(body["next_cursor"].is_string());
  EXPECT_EQ(
      walk(index,
           {{"state", "candidate"}, {"state", "unsynchronized"}, {"q", ".2"}, {"alert", "offset"}},
           1),
      (std::vector<std::string>{"delta/192.0.2.4", "golf/192.0.2.7"}));
  // A filtered walk in a sort.
  EXPECT_EQ(walk(index, {{"state", "candidate"}, {"sort", "-delay"}}, 2),
            (std::vector<std::string>{"delta/192.0.2.4", "bravo/192.0.2.2", "pool/192.0.2.20",
                                      "pool/192.0.2.21", "hotel/192.0.2.8"}));
}

TEST(ServerPages, BadParametersAreRefused) {
  ServerIndex index(snapshot_of(mixed_fleet()));
  const auto refused = [&](const Params& p) {
    const auto r = serve_servers(index, p);
    return !r.ok() && !r.error().empty();
  };
  for (const char* limit : {"0", "10001", "-1", "x", "", "1.5", "99999999999999999999"}) {
    EXPECT_TRUE(refused({{"limit", limit}})) << limit;
  }
  EXPECT_FALSE(refused({{"limit", "10000"}}));
  EXPECT_FALSE(refused({{"limit", "1"}}));
  EXPECT_TRUE(refused({{"state", "up"}}));
  EXPECT_TRUE(refused({{"state", "selected"}, {"state", "Selected"}}));
  EXPECT_TRUE(refused({{"alert", "local_clock"}}));  // the host's, not a server's
  EXPECT_TRUE(refused({{"alert", "history"}}));
  EXPECT_TRUE(refused({{"sort", "-"}}));
  EXPECT_TRUE(refused({{"sort", "--offset"}}));
  EXPECT_TRUE(refused({{"sort", "reach"}}));
  EXPECT_TRUE(refused({{"sort", "name"}, {"sort", "offset"}}));
  for (const char* cursor : {"!", "AAAA", "AQEB", "not a cursor", "AQ=="}) {
    EXPECT_TRUE(refused({{"cursor", cursor}})) << cursor;
  }
  EXPECT_TRUE(refused({{"cursor", std::string(5000, 'A')}}));
  // A cursor of another sort.
  const json first = page(index, {{"sort", "offset"}, {"limit", "2"}});
  EXPECT_TRUE(refused({{"sort", "-offset"}, {"cursor", first["next_cursor"]}}));
  EXPECT_TRUE(refused({{"cursor", first["next_cursor"]}}));
  EXPECT_FALSE(refused({{"sort", "offset"}, {"cursor", first["next_cursor"]}}));
  // Every known value of each is taken.
  for (const char* state : {"selected", "candidate", "falseticker", "unreachable", "unsynchronized",
                            "kod", "pending", "auth_failed"}) {
    EXPECT_FALSE(refused({{"state", state}})) << state;
  }
  for (const char* alert : {"offset", "delay", "stratum", "unreachable", "falseticker", "kod",
                            "leap", "unsynchronized", "authentication", "certificate"}) {
    EXPECT_FALSE(refused({{"alert", alert}})) << alert;
  }
}

TEST(ServerPages, EntriesAreTheServerObjectsOfRenderServers) {
  const auto snap = snapshot_of(mixed_fleet());
  ServerIndex index(snap);
  const json whole = json::parse(render_servers(*snap));
  const json paged = page(index, {{"limit", "100"}});
  EXPECT_EQ(paged["servers"], whole["servers"]);
  // Written entry by entry, the text is what dumping the document gives (keys sorted).
  for (const Params& p : {Params{{"limit", "100"}}, Params{{"limit", "3"}}, Params{{"q", "zz"}}}) {
    const std::string body = *serve_servers(index, p);
    EXPECT_EQ(body, json::parse(body).dump() + "\n");
  }
  EXPECT_EQ(paged["generated_at"], whole["generated_at"]);
  EXPECT_EQ(paged["total"], 10);
  EXPECT_TRUE(paged["next_cursor"].is_null());
}

// ---- Summary --------------------------------------------------------------------------------

TEST(ServerSummary, BucketsIncludeTheirUpperBound) {
  EXPECT_EQ(summary_bucket(0.0), 0u);
  EXPECT_EQ(summary_bucket(1e-6), 0u);
  EXPECT_EQ(summary_bucket(1.0000001e-6), 1u);
  EXPECT_EQ(summary_bucket(2e-6), 1u);
  EXPECT_EQ(summary_bucket(0.05), 14u);
  EXPECT_EQ(summary_bucket(1.0), 18u);
  EXPECT_EQ(summary_bucket(10.0), 21u);
  EXPECT_EQ(summary_bucket(10.5), 22u);
  for (std::size_t i = 0; i < kSummaryBounds.size(); ++i) {
    EXPECT_EQ(summary_bucket(kSummaryBounds[i]), i);
    if (i > 0) {
      EXPECT_EQ(summary_bucket(std::nextafter(kSummaryBounds[i - 1], 1e9)), i);
    }
  }
}

TEST(ServerSummary, CountsDistributionsWorstAndRecentChanges) {
  auto fleet = mixed_fleet();
  // State changes, one without a previous state (never changed): not listed.
  fleet[0].previous_state = ServerState::kPending;
  fleet[0].state_changed_unix_ns = 1'700'000'010 * kS;
  fleet[6].previous_state = ServerState::kCandidate;
  fleet[6].state_changed_unix_ns = 1'700'000'030 * kS;
  fleet[8].previous_state = ServerState::kCandidate;
  fleet[8].state_changed_unix_ns = 1'700'000'030 * kS;  // same time as charlie: by name
  fleet[1].state_changed_unix_ns = 0;
  auto snap = std::make_shared<monitor::Snapshot>(*snapshot_of(fleet));
  snap->selected = "alpha";
  snap->selected_address = "192.0.2.1";
  snap->system_offset_s = -0.010;
  snap->truechimers = 6;
  snap->majority = true;
  snap->sources = 9;
  const monitor::View view{snap, {}};
  const json s = json::parse(render_summary(view));

  EXPECT_EQ(s["entries"], 10);
  EXPECT_EQ(s["sources"], 9);
  EXPECT_EQ(s["states"], json::parse(R"({"selected": 1, "candidate": 5, "falseticker": 1,
      "unreachable": 1, "unsynchronized": 1, "kod": 0, "pending": 1, "auth_failed": 0})"));
  EXPECT_EQ(s["alerts"], json::parse(R"({"offset": 2, "delay": 0, "stratum": 0,
      "unreachable": 1, "falseticker": 0, "kod": 0, "leap": 0, "unsynchronized": 1,
      "authentication": 0, "certificate": 0})"));
  EXPECT_EQ(s["selected"], "alpha");
  EXPECT_EQ(s["selected_address"], "192.0.2.1");
  EXPECT_EQ(s["system_offset"], -0.010);
  EXPECT_TRUE(s["system_jitter"].is_null());
  EXPECT_EQ(s["truechimer_count"], 6);
  EXPECT_EQ(s["majority"], true);

  const json& d = s["distributions"];
  EXPECT_EQ(d["bounds"].size(), 22u);
  EXPECT_EQ(d["bounds"][0], 1e-6);
  EXPECT_EQ(d["bounds"][21], 10.0);
  // Offsets: -10 ms (bucket of 1e-2, exactly on the bound), -0.5 ms (5e-4, on the bound);
  // 0 (first bucket, positive), +2 ms x3 (2e-3, on the bound), +4 ms (5e-3), +250 ms (5e-1).
  std::vector<std::uint64_t> negative(23, 0);
  std::vector<std::uint64_t> positive(23, 0);
  negative[12] = 1;
  negative[8] = 1;
  positive[0] = 1;
  positive[10] = 3;
  positive[11] = 1;
  positive[17] = 1;
  EXPECT_EQ(d["offset"]["negative"], json(negative));
  EXPECT_EQ(d["offset"]["positive"], json(positive));
  EXPECT_EQ(d["offset"]["missing"], 2);
  // Delays: 2|offset| + 1 ms: 21 ms, 2 ms, 5 ms x3, 9 ms, 501 ms, 1 ms.
  std::vector<std::uint64_t> delay(23, 0);
  delay[14] = 1;  // 21 ms: above 20 ms, up to 50 ms
  delay[10] = 1;  // 2 ms: on the bound
  delay[11] = 3;  // 5 ms: on the bound
  delay[12] = 1;  // 9 ms
  delay[18] = 1;  // 501 ms
  delay[9] = 1;   // 1 ms: on the bound
  EXPECT_EQ(d["delay"]["counts"], json(delay));
  EXPECT_EQ(d["delay"]["missing"], 2);
  EXPECT_EQ(d["jitter"]["missing"], 3);  // echo, charlie and foxtrot

  std::vector<std::string> worst;
  for (const auto& e : s["worst_offset"]) worst.push_back(id_of(e));
  EXPECT_EQ(worst,
            (std::vector<std::string>{"golf/192.0.2.7", "alpha/192.0.2.1", "delta/192.0.2.4",
                                      "bravo/192.0.2.2", "pool/192.0.2.20", "pool/192.0.2.21",
                                      "foxtrot/2001:db8::6", "hotel/192.0.2.8"}));
  EXPECT_EQ(s["worst_offset"][0], json::parse(render_servers(*snap))["servers"][8]);

  ASSERT_EQ(s["recent_state_changes"].size(), 3u);
  EXPECT_EQ(s["recent_state_changes"][0],
            json::parse(R"({"name": "charlie", "address": "192.0.2.3", "from": "candidate",
                            "to": "unreachable", "at": "2023-11-14T22:13:50.000Z",
                            "at_unix": 1700000030.0})"));
  EXPECT_EQ(s["recent_state_changes"][1]["name"], "golf");
  EXPECT_EQ(s["recent_state_changes"][1]["to"], "unsynchronized");
  EXPECT_EQ(s["recent_state_changes"][2]["name"], "delta");
  EXPECT_EQ(s["recent_state_changes"][2]["from"], "pending");
}

TEST(ServerSummary, AtMostTwentyOfEachNewestAndWorstFirst) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 100; ++i) {
    auto s = server("s" + std::to_string(1000 + i), "10.0.0.1", (i % 2 ? -1 : 1) * 0.001 * i);
    s.previous_state = ServerState::kPending;
    s.state_changed_unix_ns = (1'700'000'000 + (i * 37) % 100) * kS;
    fleet.push_back(s);
  }
  const json s = json::parse(render_summary(monitor::View{snapshot_of(fleet), {}}));
  ASSERT_EQ(s["worst_offset"].size(), 20u);
  ASSERT_EQ(s["recent_state_changes"].size(), 20u);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(s["worst_offset"][i]["name"], "s" + std::to_string(1099 - i));
    EXPECT_EQ(s["recent_state_changes"][i]["at_unix"], 1'700'000'099.0 - static_cast<double>(i));
  }
  EXPECT_EQ(s["states"]["candidate"], 100);
}

// ---- Alerts ---------------------------------------------------------------------------------

TEST(ApiAlertsLimit, AtMostLimitWithTheTotalAndTheDaemonsOwnAlwaysIn) {
  std::vector<ServerSnapshot> fleet;
  for (int i = 0; i < 1500; ++i) {
    auto s = server("s" + std::to_string(i), "10.0.0.1", 0.1);
    s.alerts.push_back({monitor::AlertKind::kOffset, 1'700'000'000 * kS, "offset high"});
    fleet.push_back(s);
  }
  auto snap = std::make_shared<monitor::Snapshot>(*snapshot_of(fleet));
  snap->local_clock_alerts.push_back(
      {monitor::AlertKind::kLocalClock, 1'700'000'000 * kS, "host clock off"});
  const monitor::View view{snap, {}};
  json body = json::parse(render_alerts(view));
  EXPECT_EQ(body["active"].size(), 1000u);
  EXPECT_EQ(body["active_total"], 1501);
  EXPECT_EQ(body["active"][0]["server"], "s0");
  EXPECT_EQ(body["active"].back()["alert"], "local_clock");
  body = json::parse(render_alerts(view, 10));
  EXPECT_EQ(body["active"].size(), 10u);
  EXPECT_EQ(body["active"][8]["server"], "s8");
  EXPECT_EQ(body["active"][9]["alert"], "local_clock");
  EXPECT_EQ(body["active_total"], 1501);
  body = json::parse(render_alerts(view, 5000));
  EXPECT_EQ(body["active"].size(), 1501u);
}

}  // namespace
}  // namespace ntpmon::exporter::api
