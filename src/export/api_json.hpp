// Internal to the JSON API (api.cpp, server_pages.cpp): the JSON building blocks both use, so
// that a server object is written the same way in /servers pages, the summary and the alerts.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "monitor/snapshot.hpp"

namespace ntpmon::exporter::api::detail {

// One monitored address as /api/v1/servers lists it (docs/API.md).
nlohmann::json server_json(const monitor::ServerSnapshot& s);
// RFC 3339 with milliseconds, or null for 0 (never).
nlohmann::json time_or_null(std::int64_t unix_ns);
// Unix seconds with the fraction, or null for 0.
nlohmann::json unix_s_or_null(std::int64_t unix_ns);
// The body text of a document: one line, bad UTF-8 replaced, a final newline.
std::string dump(const nlohmann::json& j);

}  // namespace ntpmon::exporter::api::detail
