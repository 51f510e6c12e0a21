// Cost of the JSON API's fleet-scale endpoints on a 1,000,000-server snapshot: a page of 100 of
// /api/v1/servers (configuration order, sorted by |offset| on a new snapshot, which builds the
// order, and on one whose order is built, deep in the list through a cursor, with a q= search)
// and the /api/v1/summary rendering. Target: a page under 20 ms. Each reports the body's size in
// the counter `bytes`.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "export/server_pages.hpp"
#include "monitor/snapshot.hpp"
#include "monitor/view.hpp"

namespace {

using namespace ntpmon;
using Params = std::vector<std::pair<std::string, std::string>>;

constexpr int kServers = 1'000'000;

// Healthy servers with random offsets, delays and jitters (fixed seed), a few states, some
// servers never measured, some alerts and state changes: what the sort, filters and the summary
// read.
std::shared_ptr<const monitor::View> fleet() {
  static const std::shared_ptr<const monitor::View> view = [] {
    std::mt19937_64 random(19);
    std::normal_distribution<double> offset(0, 2e-3);
    std::lognormal_distribution<double> delay(-4, 1);
    auto snap = std::make_shared<monitor::Snapshot>();
    snap->servers.reserve(kServers);
    for (int i = 0; i < kServers; ++i) {
      auto s = std::make_shared<monitor::ServerSnapshot>();
      s->name = "server-" + std::to_string(i);
      s->host = s->name + ".example.test";
      s->address = "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) +
                   "." + std::to_string(i & 255);
      s->up = true;
      s->reach = 0xFF;
      s->poll_interval_s = 64;
      if (i % 100 != 7) {
        s->state = i == 0 ? monitor::ServerState::kSelected : monitor::ServerState::kCandidate;
        s->offset_s = offset(random);
        s->delay_s = delay(random);
        s->jitter_s = delay(random) / 50;
        s->root_delay_s = 1.2e-3;
        s->root_dispersion_s = 4.5e-4;
        s->root_distance_s = 1.05e-2;
        s->consensus_offset_s = *s->offset_s - 1e-4;
        s->stratum = 1 + i % 3;
        s->leap = 0;
        s->version = 4;
        s->refid = "192.0.2.10";
        s->last_sample_unix_ns = 1'700'000'000'000'000'000 + (i % 64) * 1'000'000'000LL;
      } else {
        s->state = monitor::ServerState::kUnreachable;
        s->alerts.push_back({monitor::AlertKind::kUnreachable, 1'700'000'000'000'000'000,
                             "no reply to 3 requests"});
        s->previous_state = monitor::ServerState::kCandidate;
        s->state_changed_unix_ns = 1'700'000'000'000'000'000 + i;
      }
      s->requests = 1000 + static_cast<std::uint64_t>(i);
      s->responses = 990;
      snap->servers.push_back(std::move(s));
    }
    snap->system_offset_s = 1.25e-3;
    snap->system_jitter_s = 1e-4;
    snap->selected = "server-0";
    snap->selected_address = "10.0.0.0";
    snap->truechimers = kServers;
    snap->majority = true;
    snap->sources = kServers;
    return std::make_shared<const monitor::View>(monitor::View{std::move(snap), {}});
  }();
  return view;
}

void serve(benchmark::State& state, exporter::api::ServerIndex& index, const Params& params) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto body = exporter::api::serve_servers(index, params);
    if (!body.ok()) {
      state.SkipWithError(body.error().c_str());
      return;
    }
    bytes = body->size();
    benchmark::DoNotOptimize(body->data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

void BM_ApiPageUnsorted(benchmark::State& state) {
  exporter::api::ServerIndex index(fleet()->monitor);
  serve(state, index, {{"limit", "100"}});
}
BENCHMARK(BM_ApiPageUnsorted)->Unit(benchmark::kMillisecond);

// The first request on a new snapshot: builds the |offset| order (each iteration a new index).
void BM_ApiPageSortedFirstRequest(benchmark::State& state) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    exporter::api::ServerIndex index(fleet()->monitor);
    auto body = exporter::api::serve_servers(index, {{"limit", "100"}, {"sort", "abs_offset"}});
    bytes = body->size();
    benchmark::DoNotOptimize(body->data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ApiPageSortedFirstRequest)->Unit(benchmark::kMillisecond)->Iterations(3);

// The same on a snapshot whose order is built (every later request).
void BM_ApiPageSorted(benchmark::State& state) {
  exporter::api::ServerIndex index(fleet()->monitor);
  (void)index.order(exporter::api::SortKey::kAbsOffset, false);
  serve(state, index, {{"limit", "100"}, {"sort", "abs_offset"}});
}
BENCHMARK(BM_ApiPageSorted)->Unit(benchmark::kMillisecond);

// By name: the first request sorts a million strings.
void BM_ApiPageByNameFirstRequest(benchmark::State& state) {
  for (auto _ : state) {
    exporter::api::ServerIndex index(fleet()->monitor);
    auto body = exporter::api::serve_servers(index, {{"limit", "100"}, {"sort", "-name"}});
    benchmark::DoNotOptimize(body->data());
  }
}
BENCHMARK(BM_ApiPageByNameFirstRequest)->Unit(benchmark::kMillisecond)->Iterations(2);

// Page 9,001 of 10,000 (sorted by -delay): the cursor is found by binary search.
void BM_ApiPageDeepCursor(benchmark::State& state) {
  exporter::api::ServerIndex index(fleet()->monitor);
  exporter::api::ServersQuery query;
  query.sort = exporter::api::SortKey::kDelay;
  query.descending = true;
  query.limit = exporter::api::kMaxPageLimit;
  for (int i = 0; i < 90; ++i)
    query.cursor = *exporter::api::select_page(index, query)->next_cursor;
  serve(state, index, {{"limit", "100"}, {"sort", "-delay"}, {"cursor", query.cursor}});
}
BENCHMARK(BM_ApiPageDeepCursor)->Unit(benchmark::kMillisecond);

// Deep in configuration order (no sort): the cursor's position is checked, no search.
void BM_ApiPageDeepCursorUnsorted(benchmark::State& state) {
  exporter::api::ServerIndex index(fleet()->monitor);
  exporter::api::ServersQuery query;
  query.limit = exporter::api::kMaxPageLimit;
  for (int i = 0; i < 90; ++i)
    query.cursor = *exporter::api::select_page(index, query)->next_cursor;
  serve(state, index, {{"limit", "100"}, {"cursor", query.cursor}});
}
BENCHMARK(BM_ApiPageDeepCursorUnsorted)->Unit(benchmark::kMillisecond);

// A search: every server is looked at (the total counts every match).
void BM_ApiPageSearch(benchmark::State& state) {
  exporter::api::ServerIndex index(fleet()->monitor);
  serve(state, index, {{"limit", "100"}, {"q", "SERVER-99999"}});
}
BENCHMARK(BM_ApiPageSearch)->Unit(benchmark::kMillisecond);

// A state filter in a sort: the page is found early, the total still scans.
void BM_ApiPageStateFilterSorted(benchmark::State& state) {
  exporter::api::ServerIndex index(fleet()->monitor);
  (void)index.order(exporter::api::SortKey::kOffset, true);
  serve(state, index, {{"limit", "100"}, {"sort", "-offset"}, {"state", "unreachable"}});
}
BENCHMARK(BM_ApiPageStateFilterSorted)->Unit(benchmark::kMillisecond);

// GET /api/v1/summary: rendered once per snapshot.
void BM_ApiSummary(benchmark::State& state) {
  const auto view = fleet();
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string body = exporter::api::render_summary(*view);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ApiSummary)->Unit(benchmark::kMillisecond);

}  // namespace
