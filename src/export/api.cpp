#include "export/api.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "export/api_json.hpp"
#include "export/measurement_json.hpp"

namespace ntpmon::exporter::api {

namespace {

using detail::dump;
using detail::server_json;
using detail::time_or_null;
using detail::unix_s_or_null;
using nlohmann::json;

constexpr std::int64_t kNsPerS = 1'000'000'000;

template <typename T>
json or_null(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json text_or_null(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

// Seconds and fraction converted apart: one division of the whole nanosecond count would
// round 1700000000.25 to 1700000000.2499998.
double unix_s(std::int64_t unix_ns) {
  return static_cast<double>(unix_ns / kNsPerS) + static_cast<double>(unix_ns % kNsPerS) / 1e9;
}

json alert_json(const monitor::ActiveAlert& a) {
  return {{"alert", monitor::to_string(a.kind)},
          {"since", time_or_null(a.since_unix_ns)},
          {"since_unix", unix_s_or_null(a.since_unix_ns)},
          {"message", a.message}};
}

json change_json(const monitor::SelectionEvent& e) {
  return {{"at", time_or_null(e.at_unix_ns)},
          {"at_unix", unix_s_or_null(e.at_unix_ns)},
          {"from", e.from},
          {"to", e.to},
          {"from_address", e.from_address},
          {"to_address", e.to_address},
          {"reason", e.reason}};
}

// Unique names in configuration order (a pool's addresses share one name).
json names_in_states(const monitor::Snapshot& snap,
                     std::initializer_list<monitor::ServerState> states) {
  json out = json::array();
  std::set<std::string> seen;
  for (const auto& s : snap.servers) {
    if (std::find(states.begin(), states.end(), s->state) == states.end()) continue;
    if (seen.insert(s->name).second) out.push_back(s->name);
  }
  return out;
}

// Parses exactly `width` decimal digits at text[pos].
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[13] != ':' || t[16] != ':') {
    return std::nullopt;
  }
  if (t[10] != 'T' && t[10] != 't' && t[10] != ' ') return std::nullopt;
  const auto year = digits(t, 0, 4);
  const auto month = digits(t, 5, 2);
  const auto day = digits(t, 8, 2);
  const auto hour = digits(t, 11, 2);
  const auto minute = digits(t, 14, 2);
  const auto second = digits(t, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  if (*year < 1970 || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(*year),
                                        std::chrono::month(static_cast<unsigned>(*month)),
                                        std::chrono::day(static_cast<unsigned>(*day))};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 19;
  std::int64_t frac_ns = 0;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    std::int64_t scale = kNsPerS / 10;
    const std::size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      frac_ns += (t[pos] - '0') * scale;  // digits beyond nanoseconds are ignored (scale 0)
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  if (pos >= t.size()) return std::nullopt;
  std::int64_t offset_s = 0;
  if (t[pos] == 'Z' || t[pos] == 'z') {
    ++pos;
  } else if (t[pos] == '+' || t[pos] == '-') {
    const auto oh = digits(t, pos + 1, 2);
    const auto om = digits(t, pos + 4, 2);
    if (!oh || !om || pos + 3 >= t.size() || t[pos + 3] != ':' || *oh > 23 || *om > 59) {
      return std::nullopt;
    }
    offset_s = (*oh * 3600 + *om * 60) * (t[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  // A leap second (:60) reads as the first second of the next minute, as POSIX time has it.
  const std::int64_t seconds = days * 86400 + *hour * 3600 + *minute * 60 + *second - offset_s;
  if (seconds < 0) return std::nullopt;
  return seconds * kNsPerS + frac_ns;
}

std::optional<std::int64_t> parse_unix_seconds(std::string_view t) {
  // Digits with an optional fraction; no sign, exponent, hex or spaces.
  const std::size_t dot = t.find('.');
  const std::string_view whole = t.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? "" : t.substr(dot + 1);
  if (whole.empty() || whole.size() > 12) return std::nullopt;  // year 9999 is 12 digits
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;
  std::int64_t seconds = 0;
  for (const char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  std::int64_t frac_ns = 0;
  std::int64_t scale = kNsPerS / 10;
  for (const char c : frac) {
    if (c < '0' || c > '9') return std::nullopt;
    frac_ns += (c - '0') * scale;
    scale /= 10;
  }
  return seconds * kNsPerS + frac_ns;
}

// The largest Unix time accepted: the end of year 9999, far inside int64 nanoseconds.
constexpr std::int64_t kMaxUnixS = 253402300799;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

namespace detail {

json time_or_null(std::int64_t unix_ns) {
  return unix_ns == 0 ? json(nullptr) : json(format_rfc3339_ms(unix_ns));
}

json unix_s_or_null(std::int64_t unix_ns) {
  return unix_ns == 0 ? json(nullptr) : json(unix_s(unix_ns));
}

std::string dump(const json& j) {
  // Names come from the configuration and refids, kiss codes and messages partly from the
  // network: bad UTF-8 becomes U+FFFD instead of an exception.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

// One monitored address: the measurement keys of `query --json` plus the daemon's view.
json server_json(const monitor::ServerSnapshot& s) {
  json o;
  o["name"] = s.name;
  write_measurement_keys(measurement_fields(s), o);
  // Our own poll interval; the server's poll field is server_poll.
  o["poll"] = s.poll_interval_s;
  o["server_poll"] = or_null(s.server_poll_s);
  o["reach"] = s.reach;
  o["state"] = monitor::to_string(s.state);
  o["selected"] = s.state == monitor::ServerState::kSelected;
  o["consensus_offset"] = or_null(s.consensus_offset_s);
  o["authenticated"] = s.authenticated;
  o["last_sample_at"] = time_or_null(s.last_sample_unix_ns);
  o["last_sample_unix"] = unix_s_or_null(s.last_sample_unix_ns);
  o["requests"] = s.requests;
  o["responses"] = s.responses;
  json kod = json::object();
  for (const auto& [code, count] : s.kod) kod[code] = count;
  o["kod"] = std::move(kod);
  json alerts = json::array();
  for (const monitor::ActiveAlert& a : s.alerts) alerts.push_back(alert_json(a));
  o["alerts"] = std::move(alerts);
  return o;
}

}  // namespace detail

std::string format_rfc3339_ms(std::int64_t unix_ns) {
  using namespace std::chrono;
  const std::int64_t ms = floor_div(unix_ns, 1'000'000);
  const std::int64_t secs = floor_div(ms, 1000);
  const std::int64_t days = floor_div(secs, 86400);
  const std::int64_t in_day = secs - days * 86400;
  const year_month_day ymd{sys_days(std::chrono::days(days))};
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(in_day / 3600),
                static_cast<int>(in_day / 60 % 60), static_cast<int>(in_day % 60),
                static_cast<int>(ms - secs * 1000));
  return buf.data();
}

std::optional<std::int64_t> parse_time_unix_ns(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const bool numeric = std::all_of(text.begin(), text.end(),
                                   [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  const auto ns = numeric ? parse_unix_seconds(text) : parse_rfc3339(text);
  if (!ns || *ns / kNsPerS > kMaxUnixS) return std::nullopt;
  return ns;
}

std::string render_error(std::string_view message) {
  return dump(json{{"error", std::string(message)}});
}

std::string render_servers(const monitor::Snapshot& snap) {
  json servers = json::array();
  for (const auto& s : snap.servers) servers.push_back(server_json(*s));
  return dump(json{{"generated_at", time_or_null(snap.generated_unix_ns)},
                   {"servers", std::move(servers)}});
}

std::string render_selection(const monitor::Snapshot& snap) {
  // The snapshot keeps changes newest last; the API lists them newest first.
  json changes = json::array();
  json last_failover = nullptr;
  for (auto it = snap.recent_selection_changes.rbegin(); it != snap.recent_selection_changes.rend();
       ++it) {
    changes.push_back(change_json(*it));
    // A failover moves away from a source that was selected; the first selection is not one.
    if (last_failover.is_null() && !it->from.empty()) last_failover = change_json(*it);
  }
  using S = monitor::ServerState;
  return dump(json{{"generated_at", time_or_null(snap.generated_unix_ns)},
                   {"selected", or_null(snap.selected)},
                   {"selected_address", or_null(snap.selected_address)},
                   {"system_offset", or_null(snap.system_offset_s)},
                   {"system_jitter", or_null(snap.system_jitter_s)},
                   {"local_clock_offset", or_null(snap.local_clock_offset_s)},
                   {"local_clock_steps", snap.local_clock_steps},
                   {"truechimers", names_in_states(snap, {S::kSelected, S::kCandidate})},
                   {"truechimer_count", snap.truechimers},
                   {"falsetickers", names_in_states(snap, {S::kFalseticker})},
                   {"majority", snap.majority},
                   {"selection_changes", snap.selection_changes},
                   {"last_failover", std::move(last_failover)},
                   {"recent_changes", std::move(changes)},
                   {"config_reloads", snap.config_reloads},
                   {"config_reload_failures", snap.config_reload_failures}});
}

std::string render_status(const monitor::View& view) {
  const monitor::Snapshot& snap = *view.monitor;
  const monitor::EngineStatus& engine = view.engine;
  json history = nullptr;
  if (engine.history) {
    history = json{{"persistent", engine.history->persistent},
                   {"enabled", engine.history->enabled},
                   {"writable", engine.history->writable},
                   {"error", text_or_null(engine.history->error)},
                   {"reason", text_or_null(engine.history->reason)},
                   {"samples_written", engine.history->samples_written},
                   {"write_errors", engine.history->write_errors},
                   {"buffered", engine.history->buffered},
                   {"dropped", engine.history->dropped}};
  }
  json window = nullptr;
  if (engine.probe_window) {
    window = json{{"unsent", engine.probe_window->unsent},
                  {"in_flight", engine.probe_window->in_flight},
                  {"waiting", engine.probe_window->waiting}};
  }
  return dump(json{{"generated_at", time_or_null(snap.generated_unix_ns)},
                   {"started_at", time_or_null(snap.started_unix_ns)},
                   {"entries", snap.servers.size()},
                   {"sources", snap.sources},
                   {"requests", snap.requests_total},
                   {"responses", snap.responses_total},
                   {"datagrams_sent", engine.datagrams_sent},
                   {"datagrams_received", engine.datagrams_received},
                   {"unmatched_datagrams", engine.unmatched_datagrams},
                   {"requests_window", std::move(window)},
                   {"selected", or_null(snap.selected)},
                   {"system_offset", or_null(snap.system_offset_s)},
                   {"truechimer_count", snap.truechimers},
                   {"config_reloads", snap.config_reloads},
                   {"history", std::move(history)},
                   {"vantage", engine.vantage},
                   {"shard", json{{"index", engine.shard.index},
                                  {"count", engine.shard.count},
                                  {"servers", engine.shard_servers},
                                  {"fleet_servers", engine.fleet_servers},
                                  {"empty", engine.shard_servers == 0}}}});
}

std::string render_alerts(const monitor::View& view, std::size_t limit) {
  const monitor::Snapshot& snap = *view.monitor;
  const monitor::EngineStatus& engine = view.engine;
  // A configured database that is off or cannot be written (an outage, retried) is the daemon's
  // own alert: no server, no start time known to the snapshot, the store's error as the message,
  // the outage's reason ("full", "readonly", "io", "busy", "missing", "other"; null when off) and
  // the records kept in memory meanwhile.
  const bool history_alert =
      engine.history && engine.history->persistent && !engine.history->writable;
  // The daemon's own alerts (the host's clock, the history) come last but always fit: many
  // alerting servers cannot push them out of the list.
  const std::size_t own = snap.local_clock_alerts.size() + (history_alert ? 1 : 0);
  const std::size_t server_room = limit > own ? limit - own : 0;
  json active = json::array();
  std::uint64_t active_total = own;
  for (const auto& s : snap.servers) {
    active_total += s->alerts.size();
    for (const monitor::ActiveAlert& a : s->alerts) {
      if (active.size() >= server_room) break;
      json o = alert_json(a);
      o["server"] = s->name;
      o["address"] = text_or_null(s->address);
      active.push_back(std::move(o));
    }
  }
  // The host's own clock: no server.
  for (const monitor::ActiveAlert& a : snap.local_clock_alerts) {
    if (active.size() >= limit) break;
    json o = alert_json(a);
    o["server"] = nullptr;
    o["address"] = nullptr;
    active.push_back(std::move(o));
  }
  if (history_alert && active.size() < limit) {
    active.push_back({{"server", nullptr},
                      {"address", nullptr},
                      {"alert", "history"},
                      {"since", nullptr},
                      {"since_unix", nullptr},
                      {"message", engine.history->error.empty() ? "history database is off"
                                                                : engine.history->error},
                      {"reason", text_or_null(engine.history->reason)},
                      {"buffered", engine.history->buffered}});
  }
  json recent = json::array();
  if (engine.recent_alerts) {
    for (auto it = engine.recent_alerts->rbegin(); it != engine.recent_alerts->rend(); ++it) {
      recent.push_back({{"at", time_or_null(it->at_unix_ns)},
                        {"at_unix", unix_s_or_null(it->at_unix_ns)},
                        {"server", it->server},
                        {"address", text_or_null(it->address)},
                        {"alert", monitor::to_string(it->kind)},
                        {"status", it->firing ? "firing" : "resolved"},
                        {"message", it->message}});
    }
  }
  return dump(json{{"generated_at", time_or_null(snap.generated_unix_ns)},
                   {"active", std::move(active)},
                   {"active_total", active_total},
                   {"recent", std::move(recent)}});
}

Result<HistoryQuery, std::string> parse_history_query(std::string_view since,
                                                      std::string_view until, std::string_view step,
                                                      std::int64_t now_unix_ns,
                                                      std::int64_t max_buckets) {
  HistoryQuery q;
  if (until.empty()) {
    q.until_unix_ns = now_unix_ns;
  } else if (auto t = parse_time_unix_ns(until)) {
    q.until_unix_ns = *t;
  } else {
    return Err{std::string("'until' must be an RFC 3339 time or Unix seconds")};
  }
  if (since.empty()) {
    q.since_unix_ns = std::max<std::int64_t>(0, q.until_unix_ns - kDefaultHistorySpanS * kNsPerS);
  } else if (auto t = parse_time_unix_ns(since)) {
    q.since_unix_ns = *t;
  } else {
    return Err{std::string("'since' must be an RFC 3339 time or Unix seconds")};
  }
  if (q.since_unix_ns >= q.until_unix_ns) {
    return Err{std::string("'since' must be before 'until'")};
  }
  const std::int64_t span_ns = q.until_unix_ns - q.since_unix_ns;
  if (step.empty()) {
    // Whole seconds, rounded up, so the series stays within the default number of points.
    const std::int64_t per_point_ns = kDefaultHistoryPoints * kNsPerS;
    q.step_s = std::max<std::int64_t>(1, (span_ns + per_point_ns - 1) / per_point_ns);
  } else {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(step.data(), step.data() + step.size(), value);
    if (ec != std::errc() || end != step.data() + step.size() || value < 1 || value > kMaxUnixS) {
      return Err{std::string("'step' must be a whole number of seconds, at least 1")};
    }
    q.step_s = value;
  }
  // Buckets the range touches, aligned to multiples of step since the epoch.
  const std::int64_t step_ns = q.step_s * kNsPerS;
  const std::int64_t buckets =
      floor_div(q.until_unix_ns - 1, step_ns) - floor_div(q.since_unix_ns, step_ns) + 1;
  if (buckets > max_buckets) {
    return Err{"the range holds " + std::to_string(buckets) + " steps of " +
               std::to_string(q.step_s) + " s, more than " + std::to_string(max_buckets) +
               "; use a larger step"};
  }
  return q;
}

std::vector<history::SampleBucket> bucket_samples(const std::vector<history::SampleRecord>& samples,
                                                  const HistoryQuery& query) {
  struct Acc {
    history::SampleBucket b;
    double offset_sum = 0;
    double delay_sum = 0;
    double jitter_sum = 0;
    std::int64_t jitter_count = 0;
  };
  std::map<std::int64_t, Acc> buckets;
  const std::int64_t step_ns = query.step_s * kNsPerS;
  for (const history::SampleRecord& s : samples) {
    if (s.time_unix_ns < query.since_unix_ns || s.time_unix_ns >= query.until_unix_ns) continue;
    const std::int64_t start_s = floor_div(s.time_unix_ns, step_ns) * query.step_s;
    auto [it, fresh] = buckets.try_emplace(start_s);
    Acc& a = it->second;
    if (fresh) {
      a.b.bucket_start_unix_s = start_s;
      a.b.offset_min_s = s.offset_s;
      a.b.offset_max_s = s.offset_s;
      a.b.first_unix_ns = s.time_unix_ns;
      a.b.last_unix_ns = s.time_unix_ns;
      a.b.stratum_last = s.stratum;
    }
    a.b.offset_min_s = std::min(a.b.offset_min_s, s.offset_s);
    a.b.offset_max_s = std::max(a.b.offset_max_s, s.offset_s);
    a.b.first_unix_ns = std::min(a.b.first_unix_ns, s.time_unix_ns);
    if (s.time_unix_ns >= a.b.last_unix_ns) {
      a.b.last_unix_ns = s.time_unix_ns;
      a.b.stratum_last = s.stratum;
    }
    a.offset_sum += s.offset_s;
    a.delay_sum += s.delay_s;
    if (s.jitter_s) {
      a.jitter_sum += *s.jitter_s;
      ++a.jitter_count;
    }
    ++a.b.count;
  }
  std::vector<history::SampleBucket> out;
  out.reserve(buckets.size());
  for (auto& [start, a] : buckets) {
    const auto n = static_cast<double>(a.b.count);
    a.b.offset_avg_s = a.offset_sum / n;
    a.b.delay_avg_s = a.delay_sum / n;
    if (a.jitter_count > 0) a.b.jitter_avg_s = a.jitter_sum / static_cast<double>(a.jitter_count);
    out.push_back(a.b);
  }
  return out;
}

std::string render_history(std::string_view server, const HistoryQuery& query,
                           const std::vector<history::SampleBucket>& points,
                           std::string_view source) {
  json list = json::array();
  for (const history::SampleBucket& b : points) {
    list.push_back({{"t", b.bucket_start_unix_s},
                    {"offset", b.offset_avg_s},
                    {"offset_min", b.offset_min_s},
                    {"offset_max", b.offset_max_s},
                    {"delay", b.delay_avg_s},
                    {"jitter", or_null(b.jitter_avg_s)},
                    {"stratum", b.stratum_last},
                    {"count", b.count}});
  }
  return dump(json{{"server", std::string(server)},
                   {"since", format_rfc3339_ms(query.since_unix_ns)},
                   {"until", format_rfc3339_ms(query.until_unix_ns)},
                   {"since_unix", unix_s(query.since_unix_ns)},
                   {"until_unix", unix_s(query.until_unix_ns)},
                   {"step", query.step_s},
                   {"source", std::string(source)},
                   {"points", std::move(list)}});
}

std::shared_ptr<const std::string> SnapshotJsonCache::get(
    const std::shared_ptr<const monitor::View>& snapshot) {
  std::lock_guard lock(mutex_);
  const bool same = !snapshot_.expired() && !snapshot_.owner_before(snapshot) &&
                    !snapshot.owner_before(snapshot_);
  if (!same || !body_) {
    body_ = std::make_shared<const std::string>(render_(*snapshot));
    snapshot_ = snapshot;
    ++renders_;
  }
  return body_;
}

std::uint64_t SnapshotJsonCache::renders() const {
  std::lock_guard lock(mutex_);
  return renders_;
}

}  // namespace ntpmon::exporter::api
