// `ntp-monitor query`: ask servers for the time once and print what each address said.
//
// A thin formatter over engine::run_query (the same engine call the client library makes):
// this file only turns arguments into query targets and AddressResults into text or JSON.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/client_auth.hpp"
#include "app/commands.hpp"
#include "config/config.hpp"
#include "engine/address.hpp"
#include "engine/query.hpp"
#include "export/measurement_json.hpp"

namespace ntpmon::app {
namespace {

struct QueryArgs {
  bool json = false;
  int samples = 4;
  double interval_s = 1.0;
  double timeout_s = 2.0;
  int port = 123;
  int version = 4;
  std::string config_file;
  std::vector<std::string> hosts;
  // Authentication.
  ClientAuthArgs auth;
  double ntske_timeout_s = 5.0;
  std::string nts_ntp_server;
};

std::chrono::nanoseconds to_ns(double seconds) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(seconds * 1e9)));
}

std::string fmt(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

// Seconds, milliseconds or microseconds by magnitude, three decimals: loopback figures are
// microseconds, a broken server's offset can be seconds. Offsets can be either sign, so they
// always carry one; the rest are magnitudes.
std::string ms(double seconds, bool sign = false) {
  const double magnitude = std::abs(seconds);
  if (magnitude >= 1.0) return fmt(sign ? "%+.6f s" : "%.6f s", seconds);
  if (magnitude >= 1e-3 || magnitude == 0.0) {
    return fmt(sign ? "%+.3f ms" : "%.3f ms", seconds * 1e3);
  }
  return fmt(sign ? "%+.3f us" : "%.3f us", seconds * 1e6);
}

// Precision and poll are powers of two on the wire; show the value and the exponent.
std::string power_of_two(double seconds) {
  const int exponent = static_cast<int>(std::lround(std::log2(seconds)));
  std::string value;
  if (seconds >= 1.0) {
    value = fmt("%.0f s", seconds);
  } else if (seconds >= 1e-3) {
    value = fmt("%.3f ms", seconds * 1e3);
  } else if (seconds >= 1e-6) {
    value = fmt("%.3f us", seconds * 1e6);
  } else {
    value = fmt("%.1f ns", seconds * 1e9);
  }
  return value + " (2^" + std::to_string(exponent) + ")";
}

const char* leap_text(int leap) {
  switch (leap) {
    case 0:
      return "no warning";
    case 1:
      return "last minute has 61 s";
    case 2:
      return "last minute has 59 s";
    default:
      return "unsynchronized";
  }
}

std::string endpoint_text(const engine::AddressResult& r) {
  if (!r.address) return r.host;
  const bool v6 = r.address->find(':') != std::string::npos;
  const std::string endpoint =
      (v6 ? "[" + *r.address + "]" : *r.address) + ":" + std::to_string(r.port);
  return r.host == *r.address ? endpoint : r.host + " (" + endpoint + ")";
}

void print_line(const char* label, const std::string& value) {
  std::printf("  %-16s %s\n", label, value.c_str());
}

void print_text(const std::vector<engine::AddressResult>& results) {
  bool first = true;
  for (const auto& r : results) {
    if (!first) std::printf("\n");
    first = false;
    std::printf("%s\n", endpoint_text(r).c_str());
    if (!r.ok) {
      print_line("error", r.error.value_or("no valid reply"));
      // A reply that was refused for what its header says (leap 3, ...) still tells it.
      if (r.stratum) print_line("stratum", std::to_string(*r.stratum));
      if (r.refid) print_line("refid", *r.refid);
      if (r.leap) print_line("leap", std::to_string(*r.leap) + " (" + leap_text(*r.leap) + ")");
      if (r.version) print_line("version", std::to_string(*r.version));
      if (r.poll_s) print_line("server poll", power_of_two(*r.poll_s));
    } else {
      print_line("offset", ms(*r.offset_s, true));
      print_line("delay", ms(*r.delay_s));
      print_line("jitter", ms(*r.jitter_s));
      print_line("stratum", std::to_string(*r.stratum));
      print_line("refid", *r.refid);
      print_line("leap", std::to_string(*r.leap) + " (" + leap_text(*r.leap) + ")");
      print_line("version", std::to_string(*r.version));
      print_line("root delay", ms(*r.root_delay_s));
      print_line("root dispersion", ms(*r.root_dispersion_s));
      print_line("root distance", ms(*r.root_distance_s));
      print_line("precision", power_of_two(*r.precision_s));
      print_line("server poll", power_of_two(*r.poll_s));
    }
    if (r.address) {
      print_line("samples",
                 std::to_string(r.samples) + " valid of " + std::to_string(r.requests) + " sent");
    }
    if (r.kod) print_line("kiss code", *r.kod);
    if (r.total_rejections() > 0) {
      std::string text;
      for (std::size_t i = 0; i < r.rejections.size(); ++i) {
        if (r.rejections[i] == 0) continue;
        if (!text.empty()) text += ", ";
        text += std::string(proto::to_string(static_cast<proto::RejectReason>(i))) + " " +
                std::to_string(r.rejections[i]);
      }
      print_line("rejected", text);
    }
    if (r.late_replies > 0) print_line("late replies", std::to_string(r.late_replies));
    if (r.authenticated != "none") {
      std::string auth = r.authenticated == "nts" ? "NTS" : "symmetric key";
      if (r.address) {
        // No authenticated sample is a failure, not a kind of authentication.
        auth += r.authenticated_samples == 0
                    ? " failed (no authenticated sample)"
                    : " (" + std::to_string(r.authenticated_samples) + " authenticated samples)";
      }
      print_line("authenticated", auth);
    } else {
      print_line("authenticated", "no");
    }
    if (r.auth_error) print_line("auth failure", *r.auth_error);
    if (r.nts_ke_s) {
      print_line("NTS-KE", ms(*r.nts_ke_s) + " (" + std::to_string(r.nts_ke_exchanges) +
                               (r.nts_ke_exchanges == 1 ? " exchange)" : " exchanges)"));
    }
    if (r.aead) print_line("AEAD", *r.aead);
    if (r.nts_ntp_server) print_line("NTS NTP server", *r.nts_ntp_server);
    if (r.cookies) print_line("cookies", std::to_string(*r.cookies));
    if (r.certificate_expiry) print_line("cert expiry", *r.certificate_expiry);
  }
}

template <typename T>
nlohmann::ordered_json or_null(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

std::optional<std::string_view> view(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return std::string_view(*text);
}

exporter::MeasurementFields measurement_fields(const engine::AddressResult& r) {
  return {.host = r.host,
          .address = view(r.address),
          .port = r.port,
          .ok = r.ok,
          .error = view(r.error),
          .offset_s = r.offset_s,
          .delay_s = r.delay_s,
          .jitter_s = r.jitter_s,
          .stratum = r.stratum,
          .refid = view(r.refid),
          .leap = r.leap,
          .version = r.version,
          .root_delay_s = r.root_delay_s,
          .root_dispersion_s = r.root_dispersion_s,
          .root_distance_s = r.root_distance_s};
}

void print_json(const std::vector<engine::AddressResult>& results) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& r : results) {
    nlohmann::ordered_json o;
    exporter::write_measurement_keys(measurement_fields(r), o);
    o["precision"] = or_null(r.precision_s);
    o["poll"] = or_null(r.poll_s);
    o["samples"] = r.samples;
    o["kod"] = or_null(r.kod);
    o["authenticated"] = r.authenticated;
    o["nts_ke_seconds"] = or_null(r.nts_ke_s);
    o["cookies"] = or_null(r.cookies);
    o["aead"] = or_null(r.aead);
    o["certificate_expiry"] = or_null(r.certificate_expiry);
    out.push_back(std::move(o));
  }
  std::printf("%s\n", out.dump(2).c_str());
}

int run_query_command(const QueryArgs& args) {
  engine::QueryOptions options;
  if (const auto error = apply_client_auth(args.auth, options)) {
    std::fprintf(stderr, "ntp-monitor query: %s\n", error->c_str());
    return kExitUsage;
  }
  if (args.auth.nts) {
    options.ntske_timeout = to_ns(args.ntske_timeout_s);
    if (!args.nts_ntp_server.empty()) {
      const auto parsed = engine::parse_host_port(args.nts_ntp_server);
      if (!parsed) {
        std::fprintf(stderr, "ntp-monitor query: --nts-ntp-server: %s\n", parsed.error().c_str());
        return kExitUsage;
      }
      options.nts_ntp_host = parsed->host;
      options.nts_ntp_port = parsed->port;
    }
  }

  std::vector<engine::QueryTarget> targets;
  if (!args.config_file.empty()) {
    const auto loaded = config::load_config_file(args.config_file);
    if (!loaded) {
      for (const auto& error : loaded.error()) {
        std::fprintf(stderr, "%s\n", error.to_string().c_str());
      }
      return kExitUsage;
    }
    for (const auto& server : loaded->servers) {
      targets.push_back({server.host, server.port, server.version});
    }
  }
  for (const auto& spec : args.hosts) {
    const auto parsed = engine::parse_host_port(spec);
    if (!parsed) {
      std::fprintf(stderr, "ntp-monitor query: %s\n", parsed.error().c_str());
      return kExitUsage;
    }
    targets.push_back({parsed->host, parsed->port.value_or(static_cast<std::uint16_t>(args.port)),
                       static_cast<std::uint8_t>(args.version)});
  }
  if (targets.empty()) {
    std::fprintf(stderr, "ntp-monitor query: no server given (HOST arguments or --config)\n");
    return kExitUsage;
  }

  options.samples = args.samples;
  options.interval = to_ns(args.interval_s);
  options.timeout = to_ns(args.timeout_s);
  const auto results = engine::run_query(targets, options);

  if (args.json) {
    print_json(results);
  } else {
    print_text(results);
  }
  for (const auto& r : results) {
    if (!r.ok) return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void register_query(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<QueryArgs>();
  CLI::App* cmd = app.add_subcommand(
      "query", "Ask NTP servers for the time once: offset, delay, jitter, stratum, ...");
  cmd->add_flag("--json", args->json, "Print a JSON array, one object per server address");
  cmd->add_option("--samples", args->samples, "Requests per server address")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--interval", args->interval_s, "Seconds between requests to one address")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--timeout", args->timeout_s, "Seconds to wait for each reply")
      ->check(CLI::Range(0.001, 60.0))
      ->capture_default_str();
  cmd->add_option("--port", args->port, "UDP port for HOST arguments without one")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--ntp-version", args->version, "NTP version of the requests")
      ->check(CLI::IsMember({3, 4}))
      ->capture_default_str();
  cmd->add_option("--config", args->config_file,
                  "Also query every server of this YAML configuration (its port and version)");
  add_client_auth_options(*cmd, args->auth);
  cmd->add_option("--ntske-timeout", args->ntske_timeout_s, "Seconds allowed for one NTS-KE")
      ->check(CLI::Range(0.001, 60.0))
      ->capture_default_str();
  cmd->add_option("--nts-ntp-server", args->nts_ntp_server,
                  "HOST:PORT: send NTS-protected NTP here instead of the negotiated server "
                  "(debugging, proxies)");
  cmd->add_option("hosts", args->hosts,
                  "HOST[:PORT]: a name, an IPv4 address, [IPv6]:PORT or a bare IPv6 address");
  cmd->callback([args, exit_code] { *exit_code = run_query_command(*args); });
}

}  // namespace ntpmon::app
