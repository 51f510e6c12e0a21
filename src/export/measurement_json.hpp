// The measurement keys of one server address in JSON, shared by `ntp-monitor query --json` and
// the JSON API's server objects (docs/API.md: "the measurement keys are those of query --json").
//
// Responsible for: the names, order and JSON types of those keys (host, address, port, ok,
// error, offset, delay, jitter, stratum, refid, leap, version, root_delay, root_dispersion,
// root_distance), with null for what is not known, and for reading them off a daemon's
// ServerSnapshot. Not responsible for: the keys only one of the outputs has (query's samples and
// NTS details, the API's state, reach and alerts), nor for serialising the document.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string_view>

#include "monitor/snapshot.hpp"

namespace ntpmon::exporter {

// What one address measured, as both outputs show it; nullopt is written as null. The views
// point into the caller's result and must outlive the call that writes them.
struct MeasurementFields {
  std::string_view host;
  std::optional<std::string_view> address;
  std::uint16_t port = 123;
  bool ok = false;
  std::optional<std::string_view> error;
  std::optional<double> offset_s;
  std::optional<double> delay_s;
  std::optional<double> jitter_s;
  std::optional<int> stratum;
  std::optional<std::string_view> refid;
  std::optional<int> leap;
  std::optional<int> version;
  std::optional<double> root_delay_s;
  std::optional<double> root_dispersion_s;
  std::optional<double> root_distance_s;
};

// Sets the measurement keys of `out` (an object), in the order listed above; an ordered_json
// keeps that order, a json sorts its keys.
void write_measurement_keys(const MeasurementFields& fields, nlohmann::ordered_json& out);
void write_measurement_keys(const MeasurementFields& fields, nlohmann::json& out);

// The daemon's view: `up` is ok, and an empty address or refid (not resolved, no reply yet) is
// not known.
MeasurementFields measurement_fields(const monitor::ServerSnapshot& server);

}  // namespace ntpmon::exporter
