#include "client/ntp_client.hpp"

#include <algorithm>
#include <utility>

#include "engine/address.hpp"
#include "engine/query.hpp"
#include "proto/validate.hpp"

namespace ntpmon {
namespace {

std::string join_errors(const std::vector<config::ConfigError>& errors) {
  std::string text;
  for (const auto& error : errors) {
    if (!text.empty()) text += "\n";
    text += error.to_string();
  }
  return text.empty() ? "invalid configuration" : text;
}

engine::QueryOptions engine_options(const QueryOptions& options) {
  engine::QueryOptions out;
  out.samples = options.samples;
  out.interval = std::chrono::duration_cast<std::chrono::nanoseconds>(options.interval);
  out.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(options.timeout);
  out.dns_timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(options.dns_timeout);
  if (options.nts) {
    out.auth = engine::QueryOptions::Auth::kNts;
    out.ntske_port = options.ntske_port;
    out.ca_file = options.ca_file;
  } else if (options.key) {
    out.auth = engine::QueryOptions::Auth::kKey;
    out.key = options.key;
  }
  return out;
}

Failure classify(const engine::AddressResult& in, const TimeResult& out) {
  if (in.ok) return Failure::kNone;
  if (!in.address) return Failure::kDns;
  if (in.kod) return Failure::kKissOfDeath;
  const std::string& error = out.error;
  if (error.rfind("NTS-KE", 0) == 0 || out.rejected == "auth_failed") {
    return Failure::kAuthentication;
  }
  if (!out.rejected.empty()) return Failure::kRejected;
  // engine/query.cpp's failure_reason: a send error is reported as itself, silence as
  // "no reply (N requests timed out)".
  if (error.rfind("no reply", 0) == 0) return Failure::kTimeout;
  return Failure::kNetwork;
}

TimeResult flatten(const engine::AddressResult& in) {
  TimeResult out;
  out.host = in.host;
  out.address = in.address.value_or("");
  out.port = in.port;
  out.ok = in.ok;
  out.error = in.error.value_or("");
  out.offset = in.offset_s.value_or(0);
  out.delay = in.delay_s.value_or(0);
  out.jitter = in.jitter_s.value_or(0);
  out.stratum = in.stratum.value_or(0);
  out.refid = in.refid.value_or("");
  out.leap = in.leap.value_or(0);
  out.version = in.version.value_or(0);
  out.root_delay = in.root_delay_s.value_or(0);
  out.root_dispersion = in.root_dispersion_s.value_or(0);
  out.root_distance = in.root_distance_s.value_or(0);
  out.precision = in.precision_s.value_or(0);
  out.poll = in.poll_s.value_or(0);
  out.samples = in.samples;
  out.kod = in.kod.value_or("");
  out.requests = in.requests;
  out.timeouts = in.timeouts;
  out.authenticated = in.authenticated;
  out.authenticated_samples = in.authenticated_samples;
  out.auth_error = in.auth_error.value_or("");
  out.nts_ke_seconds = in.nts_ke_s;
  out.cookies = in.cookies;
  out.aead = in.aead.value_or("");
  out.certificate_expiry = in.certificate_expiry.value_or("");
  std::uint64_t most = 0;
  for (std::size_t i = 0; i < in.rejections.size(); ++i) {
    if (in.rejections[i] > most) {
      most = in.rejections[i];
      out.rejected = proto::to_string(static_cast<proto::RejectReason>(i));
    }
  }
  out.failure = classify(in, out);
  return out;
}

std::vector<TimeResult> run(const std::vector<engine::QueryTarget>& targets,
                            const QueryOptions& options) {
  std::vector<TimeResult> out;
  for (const auto& result : engine::run_query(targets, engine_options(options))) {
    out.push_back(flatten(result));
  }
  return out;
}

}  // namespace

std::string_view to_string(Failure failure) {
  switch (failure) {
    case Failure::kNone:
      return "none";
    case Failure::kBadHost:
      return "bad_host";
    case Failure::kDns:
      return "dns";
    case Failure::kTimeout:
      return "timeout";
    case Failure::kKissOfDeath:
      return "kiss_of_death";
    case Failure::kRejected:
      return "rejected";
    case Failure::kAuthentication:
      return "authentication";
    case Failure::kNetwork:
      return "network";
  }
  return "none";
}

ConfigLoadError::ConfigLoadError(std::vector<config::ConfigError> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

NtpClient::NtpClient(config::Config config, QueryOptions options)
    : config_(std::move(config)), options_(options) {}

NtpClient NtpClient::from_config(const std::string& path, QueryOptions options) {
  auto loaded = config::load_config_file(path);
  if (!loaded) throw ConfigLoadError(loaded.error());
  return NtpClient(std::move(*loaded), options);
}

std::vector<std::string> NtpClient::get_servers() const {
  std::vector<std::string> hosts;
  hosts.reserve(config_.servers.size());
  for (const auto& server : config_.servers) hosts.push_back(server.host);
  return hosts;
}

std::vector<TimeResult> NtpClient::get_time_all(const std::string& host) const {
  const auto spec = engine::parse_host_port(host);
  if (!spec) {
    TimeResult failed;
    failed.host = host;
    failed.port = options_.port;
    failed.error = spec.error();
    failed.failure = Failure::kBadHost;
    return {failed};
  }
  engine::QueryTarget target{spec->host, options_.port, options_.version};
  // A configured server keeps its own port and version, found by host or by its name label.
  const auto configured = std::find_if(
      config_.servers.begin(), config_.servers.end(),
      [&](const auto& server) { return server.host == spec->host || server.name == host; });
  if (configured != config_.servers.end()) {
    target = {configured->host, configured->port, configured->version};
  }
  if (spec->port) target.port = *spec->port;
  return run({target}, options_);
}

TimeResult NtpClient::get_time(const std::string& host) const {
  const std::vector<TimeResult> all = get_time_all(host);
  const TimeResult* best = nullptr;
  for (const auto& result : all) {
    if (result.ok && (best == nullptr || result.root_distance < best->root_distance)) {
      best = &result;
    }
  }
  if (best != nullptr) return *best;
  return all.empty() ? TimeResult{} : all.front();
}

std::vector<TimeResult> NtpClient::get_time_configured() const {
  std::vector<engine::QueryTarget> targets;
  for (const auto& server : config_.servers) {
    targets.push_back({server.host, server.port, server.version});
  }
  return run(targets, options_);
}

}  // namespace ntpmon
