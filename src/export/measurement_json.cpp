#include "export/measurement_json.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace ntpmon::exporter {
namespace {

template <typename Json, typename T>
Json or_null(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

template <typename Json>
Json text_or_null(const std::optional<std::string_view>& text) {
  return text ? Json(std::string(*text)) : Json(nullptr);
}

template <typename Json>
void write_keys(const MeasurementFields& m, Json& o) {
  o["host"] = std::string(m.host);
  o["address"] = text_or_null<Json>(m.address);
  o["port"] = m.port;
  o["ok"] = m.ok;
  o["error"] = text_or_null<Json>(m.error);
  o["offset"] = or_null<Json>(m.offset_s);
  o["delay"] = or_null<Json>(m.delay_s);
  o["jitter"] = or_null<Json>(m.jitter_s);
  o["stratum"] = or_null<Json>(m.stratum);
  o["refid"] = text_or_null<Json>(m.refid);
  o["leap"] = or_null<Json>(m.leap);
  o["version"] = or_null<Json>(m.version);
  o["root_delay"] = or_null<Json>(m.root_delay_s);
  o["root_dispersion"] = or_null<Json>(m.root_dispersion_s);
  o["root_distance"] = or_null<Json>(m.root_distance_s);
}

std::optional<std::string_view> unless_empty(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return text;
}

}  // namespace

void write_measurement_keys(const MeasurementFields& fields, nlohmann::ordered_json& out) {
  write_keys(fields, out);
}

void write_measurement_keys(const MeasurementFields& fields, nlohmann::json& out) {
  write_keys(fields, out);
}

MeasurementFields measurement_fields(const monitor::ServerSnapshot& s) {
  MeasurementFields m;
  m.host = s.host;
  m.address = unless_empty(s.address);
  m.port = s.port;
  m.ok = s.up;
  if (s.error) m.error = *s.error;
  m.offset_s = s.offset_s;
  m.delay_s = s.delay_s;
  m.jitter_s = s.jitter_s;
  m.stratum = s.stratum;
  m.refid = unless_empty(s.refid);
  m.leap = s.leap;
  m.version = s.version;
  m.root_delay_s = s.root_delay_s;
  m.root_dispersion_s = s.root_dispersion_s;
  m.root_distance_s = s.root_distance_s;
  return m;
}

}  // namespace ntpmon::exporter
