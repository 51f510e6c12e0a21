// Log line rendering: the RFC 3339 timestamps, level/format parsing, the exact logfmt quoting
// and JSON escaping, and that every rendered line parses back to the fields it was given.
// Everything here goes through the pure functions with fixed timestamps; no clock, no stderr.
#include "engine/logging.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ntpmon::engine {
namespace {

// 2026-11-26T10:00:00Z, the example in the header.
constexpr std::int64_t kBaseS = 1'795'687'200;
constexpr std::int64_t kNs = 1'000'000'000;
constexpr std::int64_t kTs = kBaseS * kNs + 123'456'789;

std::string logfmt(std::string_view event, const LogFields& fields = {},
                   LogLevel level = LogLevel::kInfo) {
  return render_log_line(LogFormat::kLogfmt, kTs, level, event, fields);
}

std::string json(std::string_view event, const LogFields& fields = {},
                 LogLevel level = LogLevel::kInfo) {
  return render_log_line(LogFormat::kJson, kTs, level, event, fields);
}

// The logfmt value of a single field named v, as rendered after the fixed prefix.
std::string logfmt_value(std::string_view value) {
  const std::string prefix = "ts=2026-11-26T10:00:00.123Z level=info event=e v=";
  const std::string line = logfmt("e", {{"v", std::string(value)}});
  EXPECT_EQ(line.substr(0, prefix.size()), prefix);
  return line.substr(prefix.size());
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// A strict logfmt decoder with the rules of the common Go decoder (and the log shippers built
// on it): keys are bytes above space except '=' and '"'; a bare value ends at a space and may
// not contain '=' or '"'; a quoted value takes the JSON escapes (\" \\ \/ \' \b \f \n \r \t
// \uXXXX) and nothing else, and no raw byte below space. nullopt on anything else, so a test
// fails when a rendered line is not parsable by such a consumer.
std::optional<LogFields> parse_logfmt(std::string_view line) {
  LogFields out;
  std::size_t i = 0;
  const auto is_key_byte = [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && c != '=' && c != '"';
  };
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    std::string key;
    while (i < line.size() && is_key_byte(line[i])) key += line[i++];
    if (key.empty()) return std::nullopt;
    std::string value;
    if (i < line.size() && line[i] == '=') {
      ++i;
      if (i < line.size() && line[i] == '"') {
        ++i;
        bool closed = false;
        while (i < line.size()) {
          const char c = line[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
          if (c != '\\') {
            value += c;
            continue;
          }
          if (i >= line.size()) return std::nullopt;
          const char e = line[i++];
          switch (e) {
            case '"':
            case '\\':
            case '/':
            case '\'':
              value += e;
              break;
            case 'b':
              value += '\b';
              break;
            case 'f':
              value += '\f';
              break;
            case 'n':
              value += '\n';
              break;
            case 'r':
              value += '\r';
              break;
            case 't':
              value += '\t';
              break;
            case 'u': {
              if (i + 4 > line.size()) return std::nullopt;
              std::uint32_t cp = 0;
              for (int k = 0; k < 4; ++k) {
                const char h = line[i++];
                cp <<= 4;
                if (h >= '0' && h <= '9') {
                  cp |= static_cast<std::uint32_t>(h - '0');
                } else if (h >= 'a' && h <= 'f') {
                  cp |= static_cast<std::uint32_t>(h - 'a' + 10);
                } else if (h >= 'A' && h <= 'F') {
                  cp |= static_cast<std::uint32_t>(h - 'A' + 10);
                } else {
                  return std::nullopt;
                }
              }
              append_utf8(value, cp);
              break;
            }
            default:
              return std::nullopt;
          }
        }
        if (!closed) return std::nullopt;
        if (i < line.size() && line[i] != ' ') return std::nullopt;
      } else {
        while (i < line.size() && line[i] != ' ') {
          const char c = line[i++];
          if (c == '=' || c == '"' || static_cast<unsigned char>(c) < 0x20) return std::nullopt;
          value += c;
        }
      }
    } else if (i < line.size() && line[i] != ' ') {
      return std::nullopt;  // a '"' right after a key
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

LogFields with_prefix(std::string_view event, const LogFields& fields,
                      std::string_view level = "info") {
  LogFields all{{"ts", "2026-11-26T10:00:00.123Z"},
                {"level", std::string(level)},
                {"event", std::string(event)}};
  all.insert(all.end(), fields.begin(), fields.end());
  return all;
}

// --- levels and formats ----------------------------------------------------------------------

TEST(LogLevelParse, AcceptsTheDocumentedNames) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
}

TEST(LogLevelParse, RejectsAnythingElse) {
  EXPECT_EQ(parse_log_level(""), std::nullopt);
  EXPECT_EQ(parse_log_level("INFO"), std::nullopt);
  EXPECT_EQ(parse_log_level("Info"), std::nullopt);
  EXPECT_EQ(parse_log_level(" info"), std::nullopt);
  EXPECT_EQ(parse_log_level("info "), std::nullopt);
  EXPECT_EQ(parse_log_level("err"), std::nullopt);
  EXPECT_EQ(parse_log_level("fatal"), std::nullopt);
  EXPECT_EQ(parse_log_level("trace"), std::nullopt);
  EXPECT_EQ(parse_log_level(std::string_view("info\0", 5)), std::nullopt);
}

TEST(LogLevelParse, ToStringIsTheCanonicalNameAndRoundTrips) {
  EXPECT_STREQ(to_string(LogLevel::kDebug), "debug");
  EXPECT_STREQ(to_string(LogLevel::kInfo), "info");
  EXPECT_STREQ(to_string(LogLevel::kWarning), "warning");
  EXPECT_STREQ(to_string(LogLevel::kError), "error");
  for (const auto level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    EXPECT_EQ(parse_log_level(to_string(level)), level);
  }
}

TEST(LogFormatParse, AcceptsLogfmtAndJsonOnly) {
  EXPECT_EQ(parse_log_format("logfmt"), LogFormat::kLogfmt);
  EXPECT_EQ(parse_log_format("json"), LogFormat::kJson);
  EXPECT_EQ(parse_log_format(""), std::nullopt);
  EXPECT_EQ(parse_log_format("JSON"), std::nullopt);
  EXPECT_EQ(parse_log_format("text"), std::nullopt);
  EXPECT_EQ(parse_log_format("logfmt "), std::nullopt);
}

TEST(LoggerEnabled, FiltersBelowTheMinimumLevel) {
  const Logger warn_logger(LogFormat::kLogfmt, LogLevel::kWarning, stderr);
  EXPECT_FALSE(warn_logger.enabled(LogLevel::kDebug));
  EXPECT_FALSE(warn_logger.enabled(LogLevel::kInfo));
  EXPECT_TRUE(warn_logger.enabled(LogLevel::kWarning));
  EXPECT_TRUE(warn_logger.enabled(LogLevel::kError));
  const Logger debug_logger(LogFormat::kJson, LogLevel::kDebug, stderr);
  EXPECT_TRUE(debug_logger.enabled(LogLevel::kDebug));
}

// --- timestamps ------------------------------------------------------------------------------

TEST(Rfc3339, MillisecondsAreTruncatedNotRounded) {
  EXPECT_EQ(format_rfc3339_ms(kTs), "2026-11-26T10:00:00.123Z");
  EXPECT_EQ(format_rfc3339_ms(kBaseS * kNs), "2026-11-26T10:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(kBaseS * kNs + 999'999'999), "2026-11-26T10:00:00.999Z");
  EXPECT_EQ(format_rfc3339_ms(kBaseS * kNs + 999'999), "2026-11-26T10:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(kBaseS * kNs + 1'000'000), "2026-11-26T10:00:00.001Z");
}

TEST(Rfc3339, NanosecondsKeepAllNineDigits) {
  EXPECT_EQ(format_rfc3339_ns(kTs), "2026-11-26T10:00:00.123456789Z");
  EXPECT_EQ(format_rfc3339_ns(kBaseS * kNs), "2026-11-26T10:00:00.000000000Z");
  EXPECT_EQ(format_rfc3339_ns(kBaseS * kNs + 1), "2026-11-26T10:00:00.000000001Z");
  EXPECT_EQ(format_rfc3339_ns(kBaseS * kNs + 999'999'999), "2026-11-26T10:00:00.999999999Z");
}

TEST(Rfc3339, EpochLeapDayAndYearBoundaries) {
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
  // 2024-02-29T23:59:59Z and the second after it.
  EXPECT_EQ(format_rfc3339_ms(1'709'251'199 * kNs + 500'000'000), "2024-02-29T23:59:59.500Z");
  EXPECT_EQ(format_rfc3339_ms(1'709'251'200 * kNs), "2024-03-01T00:00:00.000Z");
  // 2025-12-31T23:59:59.999999999Z -> 2026-01-01T00:00:00Z.
  EXPECT_EQ(format_rfc3339_ns(1'767'225'599 * kNs + 999'999'999), "2025-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_rfc3339_ns(1'767'225'600 * kNs), "2026-01-01T00:00:00.000000000Z");
}

TEST(Rfc3339, BeforeTheEpochFloorsTheSecond) {
  // -1 ns is the last nanosecond of 1969, not "1970-01-01T00:00:00.-00000001".
  EXPECT_EQ(format_rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(-kNs), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(format_rfc3339_ns(-kNs - 250'000'000), "1969-12-31T23:59:58.750000000Z");
}

TEST(Rfc3339, TheWholeInt64RangeFormats) {
  EXPECT_EQ(format_rfc3339_ns(std::numeric_limits<std::int64_t>::max()),
            "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(format_rfc3339_ns(std::numeric_limits<std::int64_t>::min()),
            "1677-09-21T00:12:43.145224192Z");
}

// --- logfmt ----------------------------------------------------------------------------------

TEST(LogfmtLine, ExactLayoutWithFieldsInOrder) {
  EXPECT_EQ(logfmt("probe_ok", {{"server", "ntp1"}, {"offset_s", "-0.000123"}, {"stratum", "2"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=probe_ok server=ntp1 "
            "offset_s=-0.000123 stratum=2");
}

TEST(LogfmtLine, NoFields) {
  EXPECT_EQ(logfmt("daemon_started"),
            "ts=2026-11-26T10:00:00.123Z level=info event=daemon_started");
}

TEST(LogfmtLine, EveryLevelName) {
  EXPECT_EQ(logfmt("e", {}, LogLevel::kDebug), "ts=2026-11-26T10:00:00.123Z level=debug event=e");
  EXPECT_EQ(logfmt("e", {}, LogLevel::kWarning),
            "ts=2026-11-26T10:00:00.123Z level=warning event=e");
  EXPECT_EQ(logfmt("e", {}, LogLevel::kError), "ts=2026-11-26T10:00:00.123Z level=error event=e");
}

TEST(LogfmtLine, TimestampIsMillisecondsUtc) {
  EXPECT_EQ(render_log_line(LogFormat::kLogfmt, 0, LogLevel::kInfo, "e", {}),
            "ts=1970-01-01T00:00:00.000Z level=info event=e");
  EXPECT_EQ(
      render_log_line(LogFormat::kLogfmt, kBaseS * kNs + 999'999'999, LogLevel::kInfo, "e", {}),
      "ts=2026-11-26T10:00:00.999Z level=info event=e");
}

TEST(LogfmtQuoting, BareValuesStayBare) {
  EXPECT_EQ(logfmt_value("plain"), "plain");
  EXPECT_EQ(logfmt_value("192.0.2.1:123"), "192.0.2.1:123");
  EXPECT_EQ(logfmt_value("[2001:db8::1]:123"), "[2001:db8::1]:123");
  EXPECT_EQ(logfmt_value("1.5e-3"), "1.5e-3");
  EXPECT_EQ(logfmt_value("RATE"), "RATE");
  EXPECT_EQ(logfmt_value("a/b,c;d'e"), "a/b,c;d'e");
}

TEST(LogfmtQuoting, EmptyValueIsAnEmptyQuotedString) { EXPECT_EQ(logfmt_value(""), "\"\""); }

TEST(LogfmtQuoting, SpacesForceQuotes) {
  EXPECT_EQ(logfmt_value("a b"), "\"a b\"");
  EXPECT_EQ(logfmt_value(" "), "\" \"");
  EXPECT_EQ(logfmt_value("trailing "), "\"trailing \"");
}

TEST(LogfmtQuoting, QuotesAreEscaped) {
  EXPECT_EQ(logfmt_value("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(logfmt_value("\""), R"("\"")");
}

TEST(LogfmtQuoting, BackslashesForceQuotesAndAreDoubled) {
  EXPECT_EQ(logfmt_value("C:\\ntp"), R"("C:\\ntp")");
  EXPECT_EQ(logfmt_value("\\"), R"("\\")");
  // A value ending in a backslash must not escape the closing quote.
  EXPECT_EQ(logfmt_value("end\\"), R"("end\\")");
}

TEST(LogfmtQuoting, EqualsSignForcesQuotes) {
  EXPECT_EQ(logfmt_value("a=b"), "\"a=b\"");
  EXPECT_EQ(logfmt_value("="), "\"=\"");
}

TEST(LogfmtQuoting, NewlineCarriageReturnAndTabUseShortEscapes) {
  EXPECT_EQ(logfmt_value("a\nb"), R"("a\nb")");
  EXPECT_EQ(logfmt_value("a\r\nb"), R"("a\r\nb")");
  EXPECT_EQ(logfmt_value("a\tb"), R"("a\tb")");
}

TEST(LogfmtQuoting, OtherControlBytesAndDelAreQuotedAsUnicodeEscapes) {
  // \u00NN, the JSON escape that logfmt decoders accept (\xNN makes them reject the line).
  EXPECT_EQ(logfmt_value(std::string("a\0b", 3)), R"("a\u0000b")");
  EXPECT_EQ(logfmt_value("\x01"), R"("\u0001")");
  EXPECT_EQ(logfmt_value("\b\f\v"), R"("\u0008\u000c\u000b")");
  EXPECT_EQ(logfmt_value("\x1b[31m"), R"("\u001b[31m")");
  EXPECT_EQ(logfmt_value("\x1f"), R"("\u001f")");
  EXPECT_EQ(logfmt_value("\x7f"), R"("\u007f")");
  EXPECT_EQ(logfmt_value("a\x7f\n"), R"("a\u007f\n")");
}

TEST(LogfmtQuoting, NonAsciiPassesThroughUnescaped) {
  EXPECT_EQ(logfmt_value("Z\xc3\xbcrich"), "Z\xc3\xbcrich");
  EXPECT_EQ(logfmt_value("\xe6\x99\x82\xe9\x96\x93"), "\xe6\x99\x82\xe9\x96\x93");
  EXPECT_EQ(logfmt_value("Z\xc3\xbcrich Nord"), "\"Z\xc3\xbcrich Nord\"");
  // Bytes that are not UTF-8 are not touched either (JSON replaces them, logfmt does not).
  EXPECT_EQ(logfmt_value("\xff\xfe"), "\xff\xfe");
}

TEST(LogfmtQuoting, EventNameIsQuotedLikeAValue) {
  EXPECT_EQ(logfmt("odd event"), "ts=2026-11-26T10:00:00.123Z level=info event=\"odd event\"");
  EXPECT_EQ(logfmt(""), "ts=2026-11-26T10:00:00.123Z level=info event=\"\"");
}

TEST(LogfmtKeys, UnsafeKeyBytesBecomeUnderscores) {
  EXPECT_EQ(logfmt("e", {{"bad key", "1"}, {"a=b", "2"}, {"q\"", "3"}, {"t\t\n", "4"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=e bad_key=1 a_b=2 q_=3 t__=4");
  EXPECT_EQ(logfmt("e", {{"del\x7f", "1"}, {"Z\xc3\xbc", "2"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=e del_=1 Z\xc3\xbc=2");
}

TEST(LogfmtLine, AlwaysExactlyOneLine) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  const std::string line = logfmt(every_byte, {{every_byte, every_byte}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
}

TEST(LogfmtRoundTrip, PrintableValuesParseBackExactly) {
  const LogFields fields{{"plain", "ntp1"},
                         {"empty", ""},
                         {"space", "a b"},
                         {"quote", "say \"hi\""},
                         {"backslash", "C:\\ntp\\"},
                         {"equals", "k=v"},
                         {"newline", "line1\nline2\r\n"},
                         {"tab", "\t"},
                         {"mixed", "\" = \\ \n"},
                         {"unicode", "Z\xc3\xbcrich \xe2\x8c\x9a"}};
  const std::string line = logfmt("probe failed", fields);
  const auto parsed = parse_logfmt(line);
  ASSERT_TRUE(parsed.has_value()) << line;
  EXPECT_EQ(*parsed, with_prefix("probe failed", fields));
}

TEST(LogfmtRoundTrip, ControlBytes) {
  // The Go logfmt decoder (and log shippers that use it) accepts only the JSON escapes
  // \" \\ \/ \b \f \n \r \t \uXXXX and rejects the whole line with "invalid quoted value" on
  // anything else, such as \xNN.
  for (int b = 0; b < 0x20; ++b) {
    const std::string value = std::string("x") + static_cast<char>(b) + "y";
    const auto parsed = parse_logfmt(logfmt("e", {{"v", value}}));
    ASSERT_TRUE(parsed.has_value()) << "byte " << b;
    EXPECT_EQ(*parsed, with_prefix("e", {{"v", value}})) << "byte " << b;
  }
  const auto del = parse_logfmt(logfmt("e", {{"v", "\x7f"}}));
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(*del, with_prefix("e", {{"v", "\x7f"}}));
}

TEST(LogfmtRoundTrip, EmptyKey) {
  // " =value" is not accepted by any logfmt decoder ("unexpected '='"); the placeholder "_"
  // keeps the line parsable whatever the fields.
  const std::string line = logfmt("e", {{"", "v"}});
  EXPECT_EQ(line, "ts=2026-11-26T10:00:00.123Z level=info event=e _=v");
  const auto parsed = parse_logfmt(line);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, with_prefix("e", {{"_", "v"}}));
}

TEST(LogfmtKeys, EmptyKeysAreUnderscoresAndDeduplicated) {
  EXPECT_EQ(logfmt("e", {{"", "a"}, {"", "b"}, {"_", "c"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=e _=a __2=b __3=c");
}

TEST(LogfmtKeys, ReservedAndRepeatedKeysGetSuffixes) {
  // The rule documented at render_log_line: nothing is dropped, no key appears twice.
  const std::string line = logfmt("probe_ok", {{"level", "bogus"},
                                               {"ts", "x"},
                                               {"event", "y"},
                                               {"x", "1"},
                                               {"x", "2"},
                                               {"x", "3"},
                                               {"level", "again"}});
  EXPECT_EQ(line,
            "ts=2026-11-26T10:00:00.123Z level=info event=probe_ok level_2=bogus ts_2=x "
            "event_2=y x=1 x_2=2 x_3=3 level_3=again");
  const auto parsed = parse_logfmt(line);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->at(1), (std::pair<std::string, std::string>{"level", "info"}));
}

TEST(LogfmtKeys, ASuffixedNameThatIsTakenMovesOn) {
  // "a_2" is claimed by the second "a" first; the real "a_2" field then becomes "a_2_2".
  EXPECT_EQ(logfmt("e", {{"a", "1"}, {"a", "2"}, {"a_2", "3"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=e a=1 a_2=2 a_2_2=3");
  // Taken the other way round, the field named "a_2" keeps its name.
  EXPECT_EQ(logfmt("e", {{"a", "1"}, {"a_2", "2"}, {"a", "3"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=e a=1 a_2=2 a_3=3");
}

TEST(LogfmtKeys, KeysThatBecomeEqualAfterSanitizingStayApart) {
  EXPECT_EQ(logfmt("e", {{"a b", "1"}, {"a_b", "2"}, {"a=b", "3"}}),
            "ts=2026-11-26T10:00:00.123Z level=info event=e a_b=1 a_b_2=2 a_b_3=3");
}

// --- JSON ------------------------------------------------------------------------------------

TEST(JsonLine, ExactLayoutWithFieldsInOrder) {
  EXPECT_EQ(json("probe_ok", {{"server", "ntp1"}, {"offset_s", "-0.000123"}}),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"probe_ok",)"
            R"("server":"ntp1","offset_s":"-0.000123"})");
}

TEST(JsonLine, NoFieldsAndEveryLevel) {
  EXPECT_EQ(json("e"), R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"e"})");
  EXPECT_EQ(json("e", {}, LogLevel::kDebug),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"debug","event":"e"})");
  EXPECT_EQ(json("e", {}, LogLevel::kWarning),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"warning","event":"e"})");
  EXPECT_EQ(json("e", {}, LogLevel::kError),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"error","event":"e"})");
}

TEST(JsonLine, ValuesAreAlwaysStrings) {
  // Numbers-as-text stay strings, empty stays an empty string.
  EXPECT_EQ(json("e", {{"n", "42"}, {"b", "true"}, {"z", ""}}),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"e",)"
            R"("n":"42","b":"true","z":""})");
}

std::string json_value(std::string_view value) {
  const std::string prefix = R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"e","v":)";
  const std::string line = json("e", {{"v", std::string(value)}});
  EXPECT_EQ(line.substr(0, prefix.size()), prefix);
  EXPECT_EQ(line.back(), '}');
  return line.substr(prefix.size(), line.size() - prefix.size() - 1);
}

TEST(JsonEscaping, QuotesAndBackslashes) {
  EXPECT_EQ(json_value("say \"hi\""), R"("say \"hi\"")");
  EXPECT_EQ(json_value("C:\\ntp\\"), R"("C:\\ntp\\")");
  EXPECT_EQ(json_value("a/b"), R"("a/b")");  // '/' needs no escape
  EXPECT_EQ(json_value("a b=c"), R"("a b=c")");
  EXPECT_EQ(json_value(""), R"("")");
}

TEST(JsonEscaping, ControlBytes) {
  EXPECT_EQ(json_value("a\nb\rc\td"), R"("a\nb\rc\td")");
  EXPECT_EQ(json_value("\b\f"), R"("\b\f")");
  EXPECT_EQ(json_value(std::string("\0", 1)), R"("\u0000")");
  EXPECT_EQ(json_value("\x01"), R"("\u0001")");
  EXPECT_EQ(json_value("\x1b[0m"), R"("\u001b[0m")");
  EXPECT_EQ(json_value("\x1f"), R"("\u001f")");
  // JSON allows DEL unescaped.
  EXPECT_EQ(json_value("\x7f"), "\"\x7f\"");
}

TEST(JsonEscaping, UnicodePassesThroughAsUtf8) {
  EXPECT_EQ(json_value("Z\xc3\xbcrich"), "\"Z\xc3\xbcrich\"");
  EXPECT_EQ(json_value("\xe6\x99\x82"), "\"\xe6\x99\x82\"");
  EXPECT_EQ(json_value("\xf0\x9f\x95\x90"), "\"\xf0\x9f\x95\x90\"");
}

TEST(JsonEscaping, InvalidUtf8IsReplacedNotThrown) {
  // Each invalid byte becomes U+FFFD; the rest of the value survives.
  EXPECT_EQ(json_value("a\xff"
                       "b"),
            "\"a\xef\xbf\xbd"
            "b\"");
  EXPECT_EQ(json_value("\xc3"), "\"\xef\xbf\xbd\"");  // truncated sequence
  EXPECT_NO_THROW(json("\xff\xfe", {{"\xc0\xaf", "\xed\xa0\x80"}}));
  const auto parsed = nlohmann::json::parse(json("\xff", {{"k\xfe", "v\xff"}}));
  EXPECT_EQ(parsed.at("event"), "\xef\xbf\xbd");
  EXPECT_EQ(parsed.at("k\xef\xbf\xbd"), "v\xef\xbf\xbd");
}

TEST(JsonEscaping, KeysAreEscapedToo) {
  EXPECT_EQ(json("e", {{"a\"b", "1"}, {"k\n", "2"}}),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"e","a\"b":"1","k\n":"2"})");
}

TEST(JsonRoundTrip, EveryValidValueParsesBackExactly) {
  std::string controls;
  for (int b = 0; b < 0x20; ++b) controls += static_cast<char>(b);
  controls += '\x7f';
  const LogFields fields{{"controls", controls},
                         {"quote", "\"\\\"\\"},
                         {"unicode", "Z\xc3\xbcrich \xf0\x9f\x95\x90"},
                         {"empty", ""},
                         {"spaces", "  a  "}};
  const std::string line = json("probe failed", fields, LogLevel::kWarning);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto parsed = nlohmann::ordered_json::parse(line);
  ASSERT_TRUE(parsed.is_object());
  ASSERT_EQ(parsed.size(), 3 + fields.size());
  auto it = parsed.begin();
  EXPECT_EQ(it.key(), "ts");
  EXPECT_EQ(*it++, "2026-11-26T10:00:00.123Z");
  EXPECT_EQ(it.key(), "level");
  EXPECT_EQ(*it++, "warning");
  EXPECT_EQ(it.key(), "event");
  EXPECT_EQ(*it++, "probe failed");
  for (const auto& [key, value] : fields) {
    EXPECT_EQ(it.key(), key);
    EXPECT_EQ(it->get<std::string>(), value) << key;
    ++it;
  }
}

TEST(JsonLine, AlwaysOneLineOfValidJsonWhateverTheBytes) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  const std::string line = json(every_byte, {{every_byte, every_byte}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(JsonLine, AFieldNamedLikeAReservedKeyDoesNotReplaceIt) {
  // A field named "level", "ts" or "event" must not overwrite the real one (a log pipeline
  // would file the line under the wrong level or time), and a repeated key must not lose the
  // earlier value: colliding keys get "_2", "_3", ... exactly as in logfmt.
  const std::string line = json("probe_ok", {{"level", "bogus"},
                                             {"ts", "x"},
                                             {"event", "y"},
                                             {"x", "1"},
                                             {"x", "2"},
                                             {"x", "3"},
                                             {"level", "again"}});
  EXPECT_EQ(line, R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"probe_ok",)"
                  R"("level_2":"bogus","ts_2":"x","event_2":"y","x":"1","x_2":"2","x_3":"3",)"
                  R"("level_3":"again"})");
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed.at("level"), "info");
  EXPECT_EQ(parsed.at("ts"), "2026-11-26T10:00:00.123Z");
  EXPECT_EQ(parsed.at("event"), "probe_ok");
}

TEST(JsonLine, BothFormatsCarryTheSameKeys) {
  const LogFields fields{{"level", "a"}, {"", "b"},    {"", "c"},  {"k", "d"},
                         {"k", "e"},     {"k_2", "f"}, {"ts", "g"}};
  const auto from_logfmt = parse_logfmt(logfmt("e", fields));
  ASSERT_TRUE(from_logfmt.has_value());
  const auto from_json = nlohmann::ordered_json::parse(json("e", fields));
  ASSERT_EQ(from_json.size(), from_logfmt->size());
  std::size_t i = 0;
  for (auto it = from_json.begin(); it != from_json.end(); ++it, ++i) {
    EXPECT_EQ(it.key(), (*from_logfmt)[i].first);
    EXPECT_EQ(it->get<std::string>(), (*from_logfmt)[i].second);
  }
}

TEST(JsonLine, EmptyKeyIsAnUnderscore) {
  EXPECT_EQ(json("e", {{"", "v"}, {"", "w"}}),
            R"({"ts":"2026-11-26T10:00:00.123Z","level":"info","event":"e","_":"v","__2":"w"})");
}

TEST(JsonLine, KeysEqualOnlyAfterUtf8ReplacementStayApart) {
  // Both keys are dumped as "k\uFFFD"; without the check the line would hold that key twice.
  const std::string line = json("e", {{"k\xfe", "1"}, {"k\xff", "2"}});
  EXPECT_EQ(line,
            "{\"ts\":\"2026-11-26T10:00:00.123Z\",\"level\":\"info\",\"event\":\"e\","
            "\"k\xef\xbf\xbd\":\"1\",\"k\xef\xbf\xbd_2\":\"2\"}");
}

}  // namespace
}  // namespace ntpmon::engine
