// The pure part of `ntp-monitor check`, the Nagios/Icinga plugin mode: threshold ranges, the
// state of each figure, the plugin's one-line output with its performance data, and the exit
// code.
//
// Responsible for: parsing the monitoring-plugins range syntax ("10", "10:", "~:10", "10:20",
// "@10:20"), deciding OK / WARNING / CRITICAL / UNKNOWN from what every address of the checked
// name said (the worst address wins), and writing the status line as check_ntp_time and
// check_ntp_peer do ("NTP OK: Offset 0.0012 secs, ...|offset=0.0012s;60;120; ..."). Not
// responsible for: options, DNS or the network (src/app/cmd_check.cpp runs the engine's one-shot
// query and hands its figures here). No I/O, no clock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::app::nagios {

// The plugin states; the value is the exit code.
enum class State : int { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

std::string_view to_string(State state);  // "OK", "WARNING", "CRITICAL", "UNKNOWN"
// The more serious of two states: CRITICAL > WARNING > UNKNOWN > OK (as monitoring-plugins'
// max_state: a figure that is known to be bad outranks one that is not known).
State worse(State a, State b);

// A threshold range (https://www.monitoring-plugins.org/doc/guidelines.html#THRESHOLDFORMAT).
// Without '@' a value outside [low, high] alerts; with '@' a value inside it does (inclusive).
struct Range {
  std::optional<double> low;   // empty: minus infinity ("~")
  std::optional<double> high;  // empty: plus infinity ("10:")
  bool alert_inside = false;   // '@'
  std::string text;            // as written, for the performance data
};

// "10" (0..10), "10:" (10..inf), "~:10" (-inf..10), "10:20", "@10:20". The error says what is
// wrong with the text ("-w: ..." is the caller's prefix).
Result<Range, std::string> parse_range(std::string_view text);
bool alerts(const Range& range, double value);

struct Thresholds {
  std::optional<Range> warning;
  std::optional<Range> critical;
};
// CRITICAL if the critical range alerts, else WARNING if the warning range does, else OK.
State evaluate(const Thresholds& thresholds, double value);

// What one address of the checked name said (the engine's AddressResult, flattened).
struct AddressFigures {
  std::string host;
  std::string address;  // empty: the name did not resolve
  bool ok = false;      // at least one valid sample
  std::string error;    // why ok is false
  std::string kod;      // the kiss code, if one came
  double offset_s = 0;
  double jitter_s = 0;
  int stratum = 0;
};

struct CheckSpec {
  Thresholds offset;       // on |offset + time_offset|, seconds (check_ntp_time -w/-c)
  Thresholds jitter;       // milliseconds (check_ntp_peer -j/-k)
  Thresholds stratum;      // check_ntp_peer -W/-C
  Thresholds truechimers;  // addresses with a valid answer (check_ntp_peer -m/-n)
  // check_ntp_time -o, with its sign: added to the measured offset (a server known to run 5 s
  // ahead is checked with -o -5).
  double time_offset_s = 0;
  bool quiet = false;  // -q: UNKNOWN instead of CRITICAL when no offset is known
};

// The defaults of check_ntp_time: warning above 60 s, critical above 120 s.
CheckSpec default_spec();

struct Verdict {
  State state = State::kUnknown;
  std::string line;                     // the status line, performance data included
  std::vector<std::string> long_lines;  // one per address (printed with -v)
};

// The state of one address (without the truechimers count) and its description.
State address_state(const CheckSpec& spec, const AddressFigures& figures);

// The worst address wins; an empty list or a name that did not resolve is UNKNOWN.
Verdict decide(const CheckSpec& spec, const std::vector<AddressFigures>& addresses);

// A plugin that cannot run as asked: "NTP UNKNOWN: <why>", exit 3.
Verdict unknown(std::string_view why);

}  // namespace ntpmon::app::nagios
