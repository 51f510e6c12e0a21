#include "app/web_routes.hpp"

#include <charconv>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "export/api.hpp"
#include "export/ascii.hpp"
#include "export/server_pages.hpp"
#include "history/history_store.hpp"
#include "ntpmon/web_assets.hpp"

namespace ntpmon::app {
namespace {

namespace api = exporter::api;

constexpr std::string_view kServersPrefix = "/api/v1/servers/";
// Pages of /api/v1/servers with more entries than this (about 60 KiB) are streamed.
constexpr std::size_t kWholePageEntries = 100;
constexpr std::string_view kHistorySuffix = "/history";
// The page has no inline script or style element and loads everything from its own origin.
constexpr std::string_view kCsp = "default-src 'self'; frame-ancestors 'none'";

void common_headers(exporter::HttpResponse& res) {
  // Browsers must revalidate (the ETag makes that a 304), so a new binary's page is never stale.
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
}

void json_answer(exporter::HttpResponse& res, int status, std::string body) {
  res.status = status;
  res.content_type = std::string(api::kJsonContentType);
  res.body = std::move(body);
  common_headers(res);
}

// If-None-Match: "*" or a list of entity tags, compared weakly (RFC 9110 §13.1.2).
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    const std::size_t comma = header.find(',');
    std::string_view tag = exporter::trim_ows(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

void serve_asset(const web::WebAsset& asset, const exporter::HttpRequest& req,
                 exporter::HttpResponse& res) {
  common_headers(res);
  res.headers.emplace_back("ETag", std::string(asset.etag));
  res.headers.emplace_back("Content-Security-Policy", std::string(kCsp));
  res.content_type = std::string(asset.content_type);
  if (const std::string inm = req.header("If-None-Match");
      !inm.empty() && etag_matches(inm, asset.etag)) {
    res.status = 304;
    return;
  }
  res.body.assign(reinterpret_cast<const char*>(asset.data.data()), asset.data.size());
}

std::int64_t system_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool configured(const monitor::Snapshot& snap, const std::string& name) {
  for (const auto& s : snap.servers) {
    if (s->name == name) return true;
  }
  return false;
}

// GET /api/v1/servers/{name}/history?since=&until=&step=
void history_route(const engine::Daemon& daemon, const WebRoutesOptions& options,
                   const exporter::HttpRequest& req, exporter::HttpResponse& res) {
  std::string_view rest = std::string_view(req.path).substr(kServersPrefix.size());
  if (!rest.ends_with(kHistorySuffix) || rest.size() == kHistorySuffix.size()) {
    return json_answer(res, 404, api::render_error("unknown path " + req.path));
  }
  const std::string name(rest.substr(0, rest.size() - kHistorySuffix.size()));
  const auto snap = daemon.snapshot();
  if (!snap) return json_answer(res, 503, api::render_error("starting: no snapshot yet"));
  const history::HistoryStore& store = daemon.history();
  const bool persistent = snap->engine.history && snap->engine.history->persistent;

  const std::int64_t now_ns = options.now_unix_ns ? options.now_unix_ns() : system_now_ns();
  const auto query =
      api::parse_history_query(req.param("since"), req.param("until"), req.param("step"), now_ns,
                               history::HistoryOptions{}.max_query_buckets);
  if (!query.ok()) return json_answer(res, 400, api::render_error(query.error()));

  bool known = configured(*snap->monitor, name);
  if (!known && persistent && store.enabled()) {
    // A server removed from the configuration still has its stored history.
    if (auto stored = store.servers(); stored.ok()) {
      for (const history::ServerInfo& s : *stored) known = known || s.name == name;
    }
  }
  if (!known) return json_answer(res, 404, api::render_error("unknown server '" + name + "'"));

  if (!persistent) {
    // No database configured: the latest samples the store keeps in memory.
    const auto points = api::bucket_samples(store.recent_samples(name), *query);
    return json_answer(res, 200, api::render_history(name, *query, points, "memory"));
  }
  auto points =
      store.query_samples(name, query->since_unix_ns, query->until_unix_ns, query->step_s);
  if (!points.ok()) {
    // Parameters were checked above: what is left is history off or a database error.
    const std::string& why = points.error();
    return json_answer(
        res, 503,
        api::render_error(why.starts_with("history is off") ? why : "history is off: " + why));
  }
  json_answer(res, 200, api::render_history(name, *query, *points, "database"));
}

}  // namespace

void add_web_routes(exporter::HttpServer& server, const engine::Daemon& daemon,
                    WebRoutesOptions options) {
  for (const web::WebAsset& asset : web::web_assets()) {
    exporter::RouteHandler handler = [&asset](const exporter::HttpRequest& req,
                                              exporter::HttpResponse& res) {
      serve_asset(asset, req, res);
    };
    if (asset.path == "/index.html") server.add_route("GET", "/", handler);
    server.add_route("GET", std::string(asset.path), std::move(handler));
  }

  // One rendering per published snapshot, shared by every page that polls in between.
  const auto cached = [&server, &daemon](std::string path, api::SnapshotJsonCache::Render render) {
    auto cache = std::make_shared<api::SnapshotJsonCache>(render);
    server.add_route("GET", std::move(path),
                     [&daemon, cache](const exporter::HttpRequest&, exporter::HttpResponse& res) {
                       const auto snap = daemon.snapshot();
                       if (!snap) {
                         return json_answer(res, 503,
                                            api::render_error("starting: no snapshot yet"));
                       }
                       json_answer(res, 200, *cache->get(snap));
                     });
  };
  cached("/api/v1/selection",
         [](const monitor::View& view) { return api::render_selection(*view.monitor); });
  cached("/api/v1/status", &api::render_status);
  cached("/api/v1/summary", &api::render_summary);

  // Pages of servers, rendered per request from the newest snapshot (never the whole fleet); the
  // sort orders they need are built once per layout of the fleet and shared (SortOrders).
  auto indexes = std::make_shared<api::ServerIndexCache>();
  server.add_route(
      "GET", "/api/v1/servers",
      [&daemon, indexes](const exporter::HttpRequest& req, exporter::HttpResponse& res) {
        const auto snap = daemon.snapshot();
        if (!snap) return json_answer(res, 503, api::render_error("starting: no snapshot yet"));
        auto query = api::parse_servers_query(req.query);
        if (!query.ok()) return json_answer(res, 400, api::render_error(query.error()));
        std::shared_ptr<api::ServerIndex> index = indexes->get(snap);
        auto page = api::select_page(*index, *query);
        if (!page.ok()) return json_answer(res, 400, api::render_error(page.error()));
        if (page->positions.size() <= kWholePageEntries) {
          return json_answer(res, 200, api::render_servers_page(index->snapshot(), *page));
        }
        // A large page is written in chunks as it is sent: no body of megabytes in memory.
        json_answer(res, 200, {});
        res.stream = [index, page = std::move(*page)](const exporter::ChunkSink& sink) {
          api::write_servers_page(index->snapshot(), page, sink);
        };
      });

  // Alerts: the default limit's body once per snapshot; another limit is rendered per request.
  auto alerts = std::make_shared<api::SnapshotJsonCache>(
      [](const monitor::View& view) { return api::render_alerts(view); });
  server.add_route(
      "GET", "/api/v1/alerts",
      [&daemon, alerts](const exporter::HttpRequest& req, exporter::HttpResponse& res) {
        const auto snap = daemon.snapshot();
        if (!snap) return json_answer(res, 503, api::render_error("starting: no snapshot yet"));
        const std::string limit = req.param("limit");
        if (limit.empty()) return json_answer(res, 200, *alerts->get(snap));
        std::size_t value = 0;
        const auto [end, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), value);
        if (ec != std::errc() || end != limit.data() + limit.size() || value < 1 ||
            value > api::kMaxPageLimit) {
          return json_answer(res, 400,
                             api::render_error("'limit' must be a whole number from 1 to " +
                                               std::to_string(api::kMaxPageLimit)));
        }
        json_answer(res, 200, api::render_alerts(*snap, value));
      });
  server.add_route(
      "GET", std::string(kServersPrefix) + "*",
      [&daemon, options](const exporter::HttpRequest& req, exporter::HttpResponse& res) {
        history_route(daemon, options, req, res);
      });
  // Any other API path: JSON 404, as docs/API.md promises.
  server.add_route("GET", "/api/*",
                   [](const exporter::HttpRequest& req, exporter::HttpResponse& res) {
                     json_answer(res, 404, api::render_error("unknown path " + req.path));
                   });
}

}  // namespace ntpmon::app
