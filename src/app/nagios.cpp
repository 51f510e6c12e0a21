#include "app/nagios.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace ntpmon::app::nagios {
namespace {

int rank(State state) {
  switch (state) {
    case State::kOk:
      return 0;
    case State::kUnknown:
      return 1;
    case State::kWarning:
      return 2;
    case State::kCritical:
      return 3;
  }
  return 1;
}

// A finite decimal number, the whole text ("+1.5", "-0.25", "1e-3"); empty if it is not one.
std::optional<double> parse_number(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), pattern, value);
  return buffer;
}

std::string range_text(const std::optional<Range>& range) { return range ? range->text : ""; }

// label=value[UOM];warn;crit; (the guidelines' order; min and max are left out).
std::string perf(std::string_view label, const std::string& value, std::string_view unit,
                 const Thresholds& thresholds) {
  std::string out(label);
  out += "=" + value;
  out += unit;
  out += ";" + range_text(thresholds.warning) + ";" + range_text(thresholds.critical) + ";";
  return out;
}

std::string where(const AddressFigures& figures) {
  if (figures.address.empty() || figures.address == figures.host) return figures.host;
  return figures.host + " (" + figures.address + ")";
}

// What a failed address said, for the status line.
std::string failure_text(const AddressFigures& figures) {
  if (!figures.kod.empty()) return "Kiss-o'-Death " + figures.kod + " from " + where(figures);
  std::string text = "No valid reply from " + where(figures);
  if (!figures.error.empty()) text += ": " + figures.error;
  return text;
}

double jitter_ms(const AddressFigures& figures) { return figures.jitter_s * 1e3; }

std::string figures_text(const CheckSpec& spec, const AddressFigures& figures) {
  return "Offset " + format("%.10g", figures.offset_s + spec.time_offset_s) + " secs, jitter " +
         format("%.3f", jitter_ms(figures)) + " msec, stratum " + std::to_string(figures.stratum);
}

std::string perfdata(const CheckSpec& spec, const AddressFigures& figures, int truechimers) {
  return perf("offset", format("%.6f", figures.offset_s + spec.time_offset_s), "s", spec.offset) +
         " " + perf("jitter", format("%.6f", jitter_ms(figures)), "ms", spec.jitter) + " " +
         perf("stratum", std::to_string(figures.stratum), "", spec.stratum) + " " +
         perf("truechimers", std::to_string(truechimers), "", spec.truechimers);
}

}  // namespace

std::string_view to_string(State state) {
  switch (state) {
    case State::kOk:
      return "OK";
    case State::kWarning:
      return "WARNING";
    case State::kCritical:
      return "CRITICAL";
    case State::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

State worse(State a, State b) { return rank(b) > rank(a) ? b : a; }

Result<Range, std::string> parse_range(std::string_view text) {
  Range range;
  range.text = std::string(text);
  if (!text.empty() && text.front() == '@') {
    range.alert_inside = true;
    text.remove_prefix(1);
  }
  if (text.empty()) return Err(std::string("empty range"));
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    const auto high = parse_number(text);
    if (!high) return Err("'" + range.text + "' is not a number or a range");
    range.low = 0.0;
    range.high = *high;
  } else {
    const std::string_view low = text.substr(0, colon);
    const std::string_view high = text.substr(colon + 1);
    if (low == "~") {
      range.low.reset();
    } else if (low.empty()) {
      range.low = 0.0;
    } else if (const auto value = parse_number(low)) {
      range.low = *value;
    } else {
      return Err("'" + range.text + "': start '" + std::string(low) + "' is not a number or ~");
    }
    if (high.empty()) {
      range.high.reset();
    } else if (const auto value = parse_number(high)) {
      range.high = *value;
    } else {
      return Err("'" + range.text + "': end '" + std::string(high) + "' is not a number");
    }
  }
  if (range.low && range.high && *range.low > *range.high) {
    return Err("'" + range.text + "': start is greater than end");
  }
  return range;
}

bool alerts(const Range& range, double value) {
  const bool inside = (!range.low || value >= *range.low) && (!range.high || value <= *range.high);
  return range.alert_inside ? inside : !inside;
}

State evaluate(const Thresholds& thresholds, double value) {
  if (thresholds.critical && alerts(*thresholds.critical, value)) return State::kCritical;
  if (thresholds.warning && alerts(*thresholds.warning, value)) return State::kWarning;
  return State::kOk;
}

CheckSpec default_spec() {
  CheckSpec spec;
  spec.offset.warning = *parse_range("60");
  spec.offset.critical = *parse_range("120");
  return spec;
}

State address_state(const CheckSpec& spec, const AddressFigures& figures) {
  if (!figures.ok) return spec.quiet ? State::kUnknown : State::kCritical;
  State state = evaluate(spec.offset, std::abs(figures.offset_s + spec.time_offset_s));
  state = worse(state, evaluate(spec.jitter, jitter_ms(figures)));
  state = worse(state, evaluate(spec.stratum, figures.stratum));
  return state;
}

Verdict unknown(std::string_view why) {
  Verdict verdict;
  verdict.state = State::kUnknown;
  verdict.line = "NTP UNKNOWN: " + std::string(why);
  return verdict;
}

Verdict decide(const CheckSpec& spec, const std::vector<AddressFigures>& addresses) {
  if (addresses.empty()) return unknown("no address to check");
  // The engine gives one result without an address when the name did not resolve.
  if (addresses.front().address.empty()) {
    const AddressFigures& failed = addresses.front();
    // The engine's error names the host already ("cannot resolve host: NAME: why").
    if (failed.error.find(failed.host) != std::string::npos) return unknown(failed.error);
    return unknown("cannot resolve " + failed.host +
                   (failed.error.empty() ? std::string() : ": " + failed.error));
  }

  Verdict verdict;
  verdict.state = State::kOk;
  std::size_t reported = 0;
  int truechimers = 0;
  const AddressFigures* best_ok = nullptr;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const AddressFigures& figures = addresses[i];
    const State state = address_state(spec, figures);
    if (i == 0 || rank(state) > rank(verdict.state)) reported = i;
    verdict.state = worse(verdict.state, state);
    if (figures.ok) {
      ++truechimers;
      if (best_ok == nullptr || std::abs(figures.offset_s) < std::abs(best_ok->offset_s)) {
        best_ok = &figures;
      }
    }
    verdict.long_lines.push_back(
        where(figures) + ": " + std::string(to_string(state)) + ", " +
        (figures.ok ? figures_text(spec, figures) : failure_text(figures)));
  }
  verdict.state = worse(verdict.state, evaluate(spec.truechimers, truechimers));

  const AddressFigures& shown = addresses[reported];
  const AddressFigures* perf_source = shown.ok ? &shown : best_ok;
  verdict.line = "NTP " + std::string(to_string(verdict.state)) + ": " +
                 (shown.ok ? figures_text(spec, shown) : failure_text(shown)) + ", truechimers " +
                 std::to_string(truechimers);
  if (addresses.size() > 1) {
    verdict.line += " (worst of " + std::to_string(addresses.size()) +
                    " addresses: " + (shown.address.empty() ? shown.host : shown.address) + ")";
  }
  if (perf_source != nullptr) verdict.line += "|" + perfdata(spec, *perf_source, truechimers);
  return verdict;
}

}  // namespace ntpmon::app::nagios
