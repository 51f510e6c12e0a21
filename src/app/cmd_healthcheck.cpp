// `ntp-monitor healthcheck [--timeout SEC] [--ca-file FILE] URL`: one HTTP GET, exit 0 when the
// answer is 2xx. It is the container image's HEALTHCHECK: the image carries no curl and no
// shell, so the binary checks its own /healthz (docs/deploy.md).
//
// http:// and https:// (the server's certificate is verified, against --ca-file or the system's
// CA certificates); user:password@ in the URL is sent as basic auth (--web-config). Exit 1 with
// one line on stderr when the server cannot be reached or does not answer 2xx, 2 for a usage
// error (a URL it cannot use).
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "app/commands.hpp"

namespace ntpmon::app {
namespace {

struct HealthcheckArgs {
  std::string url;
  double timeout_s = 5.0;
  std::string ca_file;
};

struct Target {
  std::string origin;  // scheme://host[:port], what httplib's client takes
  std::string path;    // from the first '/' after the authority, query included; "/" if none
  std::string user;
  std::string password;
};

// Splits an http(s) URL; nullopt when it is not one (the caller reports a usage error).
std::optional<Target> split_url(std::string_view url) {
  Target t;
  std::string_view scheme;
  for (const std::string_view s : {std::string_view("http://"), std::string_view("https://")}) {
    if (url.substr(0, s.size()) == s) scheme = s;
  }
  if (scheme.empty()) return std::nullopt;
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    t.user = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) t.password = std::string(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return std::nullopt;
  t.origin = std::string(scheme) + std::string(authority);
  return t;
}

int healthcheck(const HealthcheckArgs& args) {
  const auto target = split_url(args.url);
  if (!target) {
    std::fprintf(stderr, "ntp-monitor healthcheck: %s: not an http:// or https:// URL\n",
                 args.url.c_str());
    return kExitUsage;
  }
  httplib::Client client(target->origin);
  if (!client.is_valid()) {
    std::fprintf(stderr, "ntp-monitor healthcheck: %s: cannot use this address\n",
                 args.url.c_str());
    return kExitUsage;
  }
  const auto whole = std::chrono::duration<double>(args.timeout_s);
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(whole);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  if (!args.ca_file.empty()) client.set_ca_cert_path(args.ca_file.c_str());
  client.enable_server_certificate_verification(true);
  if (!target->user.empty()) {
    client.set_basic_auth(target->user.c_str(), target->password.c_str());
  }
  const httplib::Result result = client.Get(target->path.c_str());
  if (!result) {
    std::fprintf(stderr, "ntp-monitor healthcheck: %s: %s\n", args.url.c_str(),
                 httplib::to_string(result.error()).c_str());
    return kExitFailure;
  }
  if (result->status < 200 || result->status > 299) {
    std::fprintf(stderr, "ntp-monitor healthcheck: %s: HTTP %d\n", args.url.c_str(),
                 result->status);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void register_healthcheck(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "healthcheck", "GET a URL once (e.g. http://127.0.0.1:9100/healthz); exit 0 on a 2xx answer");
  auto args = std::make_shared<HealthcheckArgs>();
  cmd->add_option("url", args->url, "http:// or https:// URL; user:password@ for basic auth")
      ->required();
  cmd->add_option("--timeout", args->timeout_s, "Seconds to wait for the connection and answer")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--ca-file", args->ca_file,
                  "CA certificates (PEM) that verify an https server; default: the system's")
      ->check(CLI::ExistingFile);
  cmd->callback([args, exit_code] { *exit_code = healthcheck(*args); });
}

}  // namespace ntpmon::app
