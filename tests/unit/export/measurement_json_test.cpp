// The measurement keys shared by `query --json` and the JSON API (export/measurement_json.hpp):
// their order and types, null for what is unknown, and the daemon's view of a server.
#include "export/measurement_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "sample_snapshots.hpp"

namespace ntpmon::exporter {
namespace {

MeasurementFields answered() {
  return {.host = "ntp.example.test",
          .address = "192.0.2.1",
          .port = 123,
          .ok = true,
          .error = std::nullopt,
          .offset_s = 0.00125,
          .delay_s = 0.0185,
          .jitter_s = 0.0002,
          .stratum = 2,
          .refid = "GPS",
          .leap = 0,
          .version = 4,
          .root_delay_s = 0.001,
          .root_dispersion_s = 0.0005,
          .root_distance_s = 0.0105};
}

TEST(MeasurementJson, KeysInQueryOrder) {
  nlohmann::ordered_json o;
  write_measurement_keys(answered(), o);
  EXPECT_EQ(o.dump(),
            R"({"host":"ntp.example.test","address":"192.0.2.1","port":123,"ok":true,)"
            R"("error":null,"offset":0.00125,"delay":0.0185,"jitter":0.0002,"stratum":2,)"
            R"("refid":"GPS","leap":0,"version":4,"root_delay":0.001,"root_dispersion":0.0005,)"
            R"("root_distance":0.0105})");
}

TEST(MeasurementJson, UnknownIsNull) {
  MeasurementFields unresolved;
  unresolved.host = "nowhere.invalid";
  unresolved.port = 4123;
  unresolved.error = "cannot resolve host: Name or service not known";
  nlohmann::ordered_json o;
  write_measurement_keys(unresolved, o);
  EXPECT_EQ(o.dump(),
            R"({"host":"nowhere.invalid","address":null,"port":4123,"ok":false,)"
            R"("error":"cannot resolve host: Name or service not known","offset":null,)"
            R"("delay":null,"jitter":null,"stratum":null,"refid":null,"leap":null,)"
            R"("version":null,"root_delay":null,"root_dispersion":null,"root_distance":null})");
}

TEST(MeasurementJson, SameValuesInBothJsonKinds) {
  nlohmann::ordered_json ordered;
  nlohmann::json sorted;
  write_measurement_keys(answered(), ordered);
  write_measurement_keys(answered(), sorted);
  EXPECT_EQ(sorted, nlohmann::json::parse(ordered.dump()));
  // Keys the caller set already stay.
  nlohmann::json with_name{{"name", "a"}};
  write_measurement_keys(answered(), with_name);
  EXPECT_EQ(with_name.size(), 16U);
  EXPECT_EQ(with_name["name"], "a");
}

TEST(MeasurementJson, DaemonView) {
  auto s = testing::selected_server();
  auto m = measurement_fields(s);
  EXPECT_EQ(m.host, "ntp-a.example.test");
  EXPECT_EQ(m.address, "192.0.2.1");
  EXPECT_TRUE(m.ok);
  EXPECT_EQ(m.error, std::nullopt);
  EXPECT_EQ(m.refid, "192.0.2.10");
  EXPECT_EQ(m.stratum, 2);
  EXPECT_EQ(m.root_distance_s, 0.0105);

  // Not resolved yet, no reply: an empty address and refid are unknown, not "".
  s.address.clear();
  s.refid.clear();
  s.up = false;
  s.error = "cannot resolve host";
  m = measurement_fields(s);
  EXPECT_EQ(m.address, std::nullopt);
  EXPECT_EQ(m.refid, std::nullopt);
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(m.error, "cannot resolve host");
}

}  // namespace
}  // namespace ntpmon::exporter
