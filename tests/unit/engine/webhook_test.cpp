// Alertmanager webhook payload rendering: the exact body for a firing and a resolved alert,
// its fields as a receiver parses them, RFC 3339 times at full nanosecond precision, and valid
// JSON whatever the configured names contain. Only the pure renderer; nothing is sent.
#include "engine/webhook.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ntpmon::engine {
namespace {

// 2026-11-26T10:00:00Z.
constexpr std::int64_t kBaseS = 1'795'687'200;
constexpr std::int64_t kNs = 1'000'000'000;

WebhookAlert firing_alert() {
  WebhookAlert alert;
  alert.firing = true;
  alert.alertname = "NtpServerUnreachable";
  alert.server = "ntp1";
  alert.address = "192.0.2.10:123";
  alert.severity = "critical";
  alert.summary = "ntp1 has not answered for 5 polls";
  alert.starts_unix_ns = kBaseS * kNs + 123'456'789;
  return alert;
}

WebhookAlert resolved_alert() {
  WebhookAlert alert = firing_alert();
  alert.firing = false;
  alert.summary = "ntp1 answers again";
  alert.ends_unix_ns = (kBaseS + 300) * kNs + 1;
  return alert;
}

TEST(AlertmanagerPayload, FiringExactBody) {
  EXPECT_EQ(
      render_alertmanager_payload(firing_alert()),
      R"({"version":"4","groupKey":"{}:{alertname=\"NtpServerUnreachable\",server=\"ntp1\"}",)"
      R"("truncatedAlerts":0,"status":"firing","receiver":"ntp-monitor",)"
      R"("groupLabels":{"alertname":"NtpServerUnreachable"},)"
      R"("commonLabels":{"alertname":"NtpServerUnreachable","server":"ntp1",)"
      R"("address":"192.0.2.10:123","severity":"critical"},)"
      R"("commonAnnotations":{"summary":"ntp1 has not answered for 5 polls"},)"
      R"("externalURL":"","alerts":[{"status":"firing",)"
      R"("labels":{"alertname":"NtpServerUnreachable","server":"ntp1",)"
      R"("address":"192.0.2.10:123","severity":"critical"},)"
      R"("annotations":{"summary":"ntp1 has not answered for 5 polls"},)"
      R"("startsAt":"2026-11-26T10:00:00.123456789Z","endsAt":"0001-01-01T00:00:00Z",)"
      R"("generatorURL":"","fingerprint":""}]})");
}

TEST(AlertmanagerPayload, ResolvedExactBody) {
  EXPECT_EQ(
      render_alertmanager_payload(resolved_alert()),
      R"({"version":"4","groupKey":"{}:{alertname=\"NtpServerUnreachable\",server=\"ntp1\"}",)"
      R"("truncatedAlerts":0,"status":"resolved","receiver":"ntp-monitor",)"
      R"("groupLabels":{"alertname":"NtpServerUnreachable"},)"
      R"("commonLabels":{"alertname":"NtpServerUnreachable","server":"ntp1",)"
      R"("address":"192.0.2.10:123","severity":"critical"},)"
      R"("commonAnnotations":{"summary":"ntp1 answers again"},)"
      R"("externalURL":"","alerts":[{"status":"resolved",)"
      R"("labels":{"alertname":"NtpServerUnreachable","server":"ntp1",)"
      R"("address":"192.0.2.10:123","severity":"critical"},)"
      R"("annotations":{"summary":"ntp1 answers again"},)"
      R"("startsAt":"2026-11-26T10:00:00.123456789Z","endsAt":"2026-11-26T10:05:00.000000001Z",)"
      R"("generatorURL":"","fingerprint":""}]})");
}

TEST(AlertmanagerPayload, FiringParsesWithTheReceiverSchema) {
  const auto body = nlohmann::json::parse(render_alertmanager_payload(firing_alert()));
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body.at("version"), "4");
  EXPECT_TRUE(body.at("version").is_string());
  EXPECT_EQ(body.at("status"), "firing");
  EXPECT_EQ(body.at("receiver"), "ntp-monitor");
  EXPECT_EQ(body.at("truncatedAlerts"), 0);
  EXPECT_TRUE(body.at("truncatedAlerts").is_number_integer());
  EXPECT_EQ(body.at("externalURL"), "");
  EXPECT_EQ(body.at("groupLabels"), nlohmann::json({{"alertname", "NtpServerUnreachable"}}));

  const nlohmann::json labels = {{"alertname", "NtpServerUnreachable"},
                                 {"server", "ntp1"},
                                 {"address", "192.0.2.10:123"},
                                 {"severity", "critical"}};
  const nlohmann::json annotations = {{"summary", "ntp1 has not answered for 5 polls"}};
  EXPECT_EQ(body.at("commonLabels"), labels);
  EXPECT_EQ(body.at("commonAnnotations"), annotations);

  const auto& alerts = body.at("alerts");
  ASSERT_TRUE(alerts.is_array());
  ASSERT_EQ(alerts.size(), 1u);  // one transition per payload; the receiver groups
  const auto& one = alerts.at(0);
  EXPECT_EQ(one.at("status"), "firing");
  EXPECT_EQ(one.at("labels"), labels);
  EXPECT_EQ(one.at("labels").size(), 4u);
  EXPECT_EQ(one.at("annotations"), annotations);
  EXPECT_EQ(one.at("startsAt"), "2026-11-26T10:00:00.123456789Z");
  // Go's zero time.Time: Alertmanager's "has not ended".
  EXPECT_EQ(one.at("endsAt"), "0001-01-01T00:00:00Z");
  EXPECT_EQ(one.at("generatorURL"), "");
  EXPECT_EQ(one.at("fingerprint"), "");
}

TEST(AlertmanagerPayload, ResolvedParsesWithEndsAtAndStatus) {
  const auto body = nlohmann::json::parse(render_alertmanager_payload(resolved_alert()));
  EXPECT_EQ(body.at("status"), "resolved");
  ASSERT_EQ(body.at("alerts").size(), 1u);
  const auto& one = body.at("alerts").at(0);
  EXPECT_EQ(one.at("status"), "resolved");
  EXPECT_EQ(one.at("startsAt"), "2026-11-26T10:00:00.123456789Z");
  EXPECT_EQ(one.at("endsAt"), "2026-11-26T10:05:00.000000001Z");
  EXPECT_EQ(one.at("annotations").at("summary"), "ntp1 answers again");
}

TEST(AlertmanagerPayload, FiringIgnoresAnEndTime) {
  // Only the status decides endsAt: a stale ends_unix_ns on a firing alert must not make the
  // receiver think it already ended.
  WebhookAlert alert = firing_alert();
  alert.ends_unix_ns = (kBaseS + 60) * kNs;
  const auto one = nlohmann::json::parse(render_alertmanager_payload(alert)).at("alerts").at(0);
  EXPECT_EQ(one.at("endsAt"), "0001-01-01T00:00:00Z");
  EXPECT_EQ(one.at("status"), "firing");
}

TEST(AlertmanagerPayload, TimesUseAllNineFractionDigits) {
  WebhookAlert alert = resolved_alert();
  alert.starts_unix_ns = kBaseS * kNs;
  alert.ends_unix_ns = kBaseS * kNs + 999'999'999;
  auto one = nlohmann::json::parse(render_alertmanager_payload(alert)).at("alerts").at(0);
  EXPECT_EQ(one.at("startsAt"), "2026-11-26T10:00:00.000000000Z");
  EXPECT_EQ(one.at("endsAt"), "2026-11-26T10:00:00.999999999Z");

  alert.starts_unix_ns = 1;
  alert.ends_unix_ns = 1'767'225'600 * kNs;  // 2026-01-01T00:00:00Z
  one = nlohmann::json::parse(render_alertmanager_payload(alert)).at("alerts").at(0);
  EXPECT_EQ(one.at("startsAt"), "1970-01-01T00:00:00.000000001Z");
  EXPECT_EQ(one.at("endsAt"), "2026-01-01T00:00:00.000000000Z");
}

TEST(AlertmanagerPayload, UnresolvedAddressIsAnEmptyLabel) {
  WebhookAlert alert = firing_alert();
  alert.address = "";
  const auto body = nlohmann::json::parse(render_alertmanager_payload(alert));
  EXPECT_EQ(body.at("alerts").at(0).at("labels").at("address"), "");
  EXPECT_EQ(body.at("commonLabels").at("address"), "");
}

TEST(AlertmanagerPayload, EverySeverityAndAlertnameIsCarriedThrough) {
  for (const char* severity : {"critical", "warning", "info"}) {
    WebhookAlert alert = firing_alert();
    alert.severity = severity;
    alert.alertname = "NtpServerOffsetHigh";
    const auto body = nlohmann::json::parse(render_alertmanager_payload(alert));
    EXPECT_EQ(body.at("alerts").at(0).at("labels").at("severity"), severity);
    EXPECT_EQ(body.at("alerts").at(0).at("labels").at("alertname"), "NtpServerOffsetHigh");
    EXPECT_EQ(body.at("groupLabels").at("alertname"), "NtpServerOffsetHigh");
  }
}

TEST(AlertmanagerPayload, HostileNamesStayValidJsonAndParseBackExactly) {
  std::string controls;
  for (int b = 1; b < 0x20; ++b) controls += static_cast<char>(b);
  WebhookAlert alert = firing_alert();
  alert.server = "lab \"a\" \\ {x}";
  alert.alertname = "Ntp\nServer";
  alert.address = "[2001:db8::1]:123";
  alert.summary = "Z\xc3\xbcrich \xe6\x99\x82 " + controls + std::string("\0end", 4);
  const std::string text = render_alertmanager_payload(alert);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  ASSERT_TRUE(nlohmann::json::accept(text)) << text;
  const auto body = nlohmann::json::parse(text);
  const auto& labels = body.at("alerts").at(0).at("labels");
  EXPECT_EQ(labels.at("server"), alert.server);
  EXPECT_EQ(labels.at("alertname"), alert.alertname);
  EXPECT_EQ(labels.at("address"), alert.address);
  EXPECT_EQ(body.at("alerts").at(0).at("annotations").at("summary"), alert.summary);
  EXPECT_EQ(body.at("commonAnnotations").at("summary"), alert.summary);
}

TEST(AlertmanagerPayload, UnicodeIsSentAsUtf8NotEscaped) {
  WebhookAlert alert = firing_alert();
  alert.server = "Z\xc3\xbcrich";
  const std::string text = render_alertmanager_payload(alert);
  EXPECT_NE(text.find(R"("server":"Z)"
                      "\xc3\xbc"
                      R"(rich")"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\\u00fc"), std::string::npos);
}

TEST(AlertmanagerPayload, InvalidUtf8IsReplacedNotThrown) {
  WebhookAlert alert = firing_alert();
  alert.server = "ntp\xff";
  alert.summary = "\xc3";
  std::string text;
  ASSERT_NO_THROW(text = render_alertmanager_payload(alert));
  const auto body = nlohmann::json::parse(text);
  EXPECT_EQ(body.at("alerts").at(0).at("labels").at("server"), "ntp\xef\xbf\xbd");
  EXPECT_EQ(body.at("alerts").at(0).at("annotations").at("summary"), "\xef\xbf\xbd");
}

TEST(AlertmanagerPayload, GroupKeyNamesAlertAndServer) {
  const auto body = nlohmann::json::parse(render_alertmanager_payload(firing_alert()));
  EXPECT_EQ(body.at("groupKey"), "{}:{alertname=\"NtpServerUnreachable\",server=\"ntp1\"}");
  WebhookAlert other = firing_alert();
  other.server = "ntp2";
  EXPECT_NE(nlohmann::json::parse(render_alertmanager_payload(other)).at("groupKey"),
            body.at("groupKey"));
}

TEST(AlertmanagerPayload, GroupKeyQuotesLabelValues) {
  // Alertmanager's label set string quotes values Go-style (%q). Unescaped, a server named
  // `a",server="b` (or any name with '"' or '\') gives an ambiguous key, so two servers could
  // share a group key at a receiver that de-duplicates on it.
  WebhookAlert alert = firing_alert();
  alert.server = "lab \"a\" \\";
  const auto body = nlohmann::json::parse(render_alertmanager_payload(alert));
  EXPECT_EQ(body.at("groupKey"),
            "{}:{alertname=\"NtpServerUnreachable\",server=\"lab \\\"a\\\" \\\\\"}");
}

// The group key's server value for `server`, between the quotes.
std::string quoted_server(const std::string& server) {
  WebhookAlert alert = firing_alert();
  alert.server = server;
  const std::string key =
      nlohmann::json::parse(render_alertmanager_payload(alert)).at("groupKey").get<std::string>();
  const std::string prefix = "{}:{alertname=\"NtpServerUnreachable\",server=\"";
  EXPECT_EQ(key.substr(0, prefix.size()), prefix);
  EXPECT_EQ(key.substr(key.size() - 2), "\"}");
  return key.substr(prefix.size(), key.size() - prefix.size() - 2);
}

TEST(AlertmanagerPayload, GroupKeyNoLongerAmbiguous) {
  WebhookAlert tricky = firing_alert();
  tricky.server = "a\",server=\"b";
  WebhookAlert plain = firing_alert();
  plain.server = "a";
  const auto key = [](const WebhookAlert& a) {
    return nlohmann::json::parse(render_alertmanager_payload(a)).at("groupKey");
  };
  EXPECT_EQ(key(tricky), "{}:{alertname=\"NtpServerUnreachable\",server=\"a\\\",server=\\\"b\"}");
  EXPECT_NE(key(tricky), key(plain));
}

TEST(AlertmanagerPayload, GroupKeyAlertnameIsQuotedToo) {
  WebhookAlert alert = firing_alert();
  alert.alertname = "A\"B";
  EXPECT_EQ(nlohmann::json::parse(render_alertmanager_payload(alert)).at("groupKey"),
            "{}:{alertname=\"A\\\"B\",server=\"ntp1\"}");
}

TEST(AlertmanagerPayload, GroupKeyControlBytesAsGoQuoteWritesThem) {
  // Go's strconv.Quote: the seven short escapes, \xNN for the other ASCII controls and DEL.
  EXPECT_EQ(quoted_server("\a\b\f\n\r\t\v"), R"(\a\b\f\n\r\t\v)");
  EXPECT_EQ(quoted_server(std::string("a\0b", 3)), R"(a\x00b)");
  EXPECT_EQ(quoted_server("\x1b[0m\x1f\x7f"), R"(\x1b[0m\x1f\x7f)");
  EXPECT_EQ(quoted_server("plain ascii ~!#$%&'()*+,-./:;<=>?@[]^_`{|}"),
            "plain ascii ~!#$%&'()*+,-./:;<=>?@[]^_`{|}");
}

TEST(AlertmanagerPayload, GroupKeyUnicodeAsGoQuoteWritesIt) {
  // Printable runes stay UTF-8.
  EXPECT_EQ(quoted_server("Z\xc3\xbcrich \xe6\x99\x82 \xf0\x9f\x95\x90 \xef\xbf\xbd"),
            "Z\xc3\xbcrich \xe6\x99\x82 \xf0\x9f\x95\x90 \xef\xbf\xbd");
  // Not printable: C1 control U+0085, no-break space U+00A0, soft hyphen U+00AD, zero-width
  // space U+200B, line separator U+2028, BOM U+FEFF, private use U+E000, noncharacter U+FFFF.
  EXPECT_EQ(quoted_server("\xc2\x85\xc2\xa0\xc2\xad\xe2\x80\x8b\xe2\x80\xa8\xef\xbb\xbf"
                          "\xee\x80\x80\xef\xbf\xbf"),
            R"(\u0085\u00a0\u00ad\u200b\u2028\ufeff\ue000\uffff)");
  // Above the BMP: \U with eight digits (plane 15 private use, language tag U+E0041).
  EXPECT_EQ(quoted_server("\xf3\xb0\x80\x80\xf3\xa0\x81\x81"), R"(\U000f0000\U000e0041)");
}

TEST(AlertmanagerPayload, GroupKeyInvalidUtf8ByteByByte) {
  // Go writes each byte that does not start a valid sequence as \xNN and goes on with the
  // next byte: a lone continuation byte, a truncated sequence, an overlong '/', an encoded
  // surrogate, a code point above U+10FFFF.
  EXPECT_EQ(quoted_server("\x80"), R"(\x80)");
  EXPECT_EQ(quoted_server("a\xc3"), R"(a\xc3)");
  EXPECT_EQ(quoted_server("\xe2\x82z"), R"(\xe2\x82z)");
  EXPECT_EQ(quoted_server("\xc0\xaf"), R"(\xc0\xaf)");
  EXPECT_EQ(quoted_server("\xe0\x80\xaf"), R"(\xe0\x80\xaf)");
  EXPECT_EQ(quoted_server("\xed\xa0\x80"), R"(\xed\xa0\x80)");
  EXPECT_EQ(quoted_server("\xf4\x90\x80\x80"), R"(\xf4\x90\x80\x80)");
  EXPECT_EQ(quoted_server("\xff\xc3\xbc"), "\\xff\xc3\xbc");
}

}  // namespace
}  // namespace ntpmon::engine
