// `ntp-monitor check`: a Nagios/Icinga plugin, option-compatible with monitoring-plugins'
// check_ntp_time (-H -p -w -c -o -t -4 -6 -q -v) and check_ntp_peer's thresholds (-W/-C
// stratum, -j/-k jitter, -m/-n truechimers). docs/nagios.md.
//
// A thin command: it turns options into ranges (app/nagios.hpp decides everything else), runs
// the engine's one-shot query on every address of the name (the same call `query` makes) and
// prints the plugin's status line. Exit codes are the plugin states: 0 OK, 1 WARNING, 2
// CRITICAL, 3 UNKNOWN (bad usage, DNS failure, no result within -t seconds).
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "app/client_auth.hpp"
#include "app/commands.hpp"
#include "app/nagios.hpp"
#include "config/config.hpp"
#include "engine/address.hpp"
#include "engine/query.hpp"

namespace ntpmon::app {
namespace {

using nagios::State;
using nagios::Verdict;

struct CheckArgs {
  std::string host;
  int port = 123;
  std::string warning = "60";
  std::string critical = "120";
  std::string stratum_warning, stratum_critical;
  std::string jitter_warning, jitter_critical;
  std::string truechimers_warning, truechimers_critical;
  double time_offset_s = 0;
  int timeout_s = 10;
  bool ipv4 = false;
  bool ipv6 = false;
  bool quiet = false;
  int verbose = 0;
  int samples = 4;
  double interval_s = 1.0;
  int version = 4;
  ClientAuthArgs auth;  // as for `query`
};

int print(const Verdict& verdict, bool verbose) {
  std::printf("%s\n", verdict.line.c_str());
  if (verbose) {
    for (const auto& line : verdict.long_lines) std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  return static_cast<int>(verdict.state);
}

// -t: the whole check, DNS included, gets this long; the engine's budget is set to end well
// before, so this only fires if something hangs. write() and _exit() are async-signal-safe.
void on_alarm(int /*signal*/) {
  static constexpr char kLine[] = "NTP UNKNOWN: no result within the timeout (-t)\n";
  const ssize_t ignored = write(STDOUT_FILENO, kLine, sizeof(kLine) - 1);
  (void)ignored;
  _exit(static_cast<int>(State::kUnknown));
}

// Sets `*out` from option `name`'s text, or returns why it is not a range.
bool set_range(const char* name, const std::string& text, std::optional<nagios::Range>* out,
               std::string* error) {
  if (text.empty()) return true;
  auto parsed = nagios::parse_range(text);
  if (!parsed) {
    *error = std::string(name) + ": " + parsed.error();
    return false;
  }
  *out = std::move(*parsed);
  return true;
}

// With -4 or -6, the addresses of that family only (getaddrinfo: the engine's resolver asks for
// both). The error is the resolver's.
Result<std::vector<std::string>, std::string> resolve_family(const std::string& host, int family) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) return Err(std::string(gai_strerror(rc)));
  std::vector<std::string> addresses;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof(text), nullptr, 0, NI_NUMERICHOST) ==
        0) {
      if (std::find(addresses.begin(), addresses.end(), text) == addresses.end()) {
        addresses.emplace_back(text);
      }
    }
  }
  freeaddrinfo(found);
  if (addresses.empty()) return Err(std::string("no address of the asked family"));
  return addresses;
}

Verdict run_check(const CheckArgs& args) {
  if (args.host.empty()) return nagios::unknown("no host given (-H)");
  if (args.ipv4 && args.ipv6) return nagios::unknown("-4 and -6 are exclusive");
  nagios::CheckSpec spec;
  std::string error;
  if (!set_range("-w", args.warning, &spec.offset.warning, &error) ||
      !set_range("-c", args.critical, &spec.offset.critical, &error) ||
      !set_range("-W", args.stratum_warning, &spec.stratum.warning, &error) ||
      !set_range("-C", args.stratum_critical, &spec.stratum.critical, &error) ||
      !set_range("-j", args.jitter_warning, &spec.jitter.warning, &error) ||
      !set_range("-k", args.jitter_critical, &spec.jitter.critical, &error) ||
      !set_range("-m", args.truechimers_warning, &spec.truechimers.warning, &error) ||
      !set_range("-n", args.truechimers_critical, &spec.truechimers.critical, &error)) {
    return nagios::unknown("bad threshold " + error);
  }
  spec.time_offset_s = args.time_offset_s;
  spec.quiet = args.quiet;

  engine::QueryOptions options;
  if (const auto why = apply_client_auth(args.auth, options)) return nagios::unknown(*why);

  const auto spec_host = engine::parse_host_port(args.host);
  if (!spec_host) return nagios::unknown("-H: " + spec_host.error());
  const std::uint16_t port = spec_host->port.value_or(static_cast<std::uint16_t>(args.port));
  const auto version = static_cast<std::uint8_t>(args.version);

  // The budget: DNS a fifth of -t, the requests 70% of it (check_ntp_time waits -t/2 for its
  // replies); each request waits at most 2 s, and requests to one address are at least
  // --interval apart unless that does not fit.
  const double total = args.timeout_s;
  const double slot = 0.7 * total / args.samples;
  options.samples = args.samples;
  options.dns_timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(std::min(5.0, 0.2 * total)));
  options.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(std::min(2.0, slot)));
  options.interval = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(std::min(args.interval_s, slot)));

  std::vector<engine::QueryTarget> targets;
  if (args.ipv4 || args.ipv6) {
    const int family = args.ipv4 ? AF_INET : AF_INET6;
    auto addresses = resolve_family(spec_host->host, family);
    if (!addresses) {
      return nagios::unknown("cannot resolve " + spec_host->host + " (" +
                             (args.ipv4 ? "IPv4" : "IPv6") + "): " + addresses.error());
    }
    for (const auto& address : *addresses) targets.push_back({address, port, version});
  } else {
    targets.push_back({spec_host->host, port, version});
  }

  std::vector<nagios::AddressFigures> figures;
  for (const auto& r : engine::run_query(targets, options)) {
    nagios::AddressFigures f;
    f.host = spec_host->host;
    f.address = r.address.value_or("");
    f.ok = r.ok;
    f.error = r.error.value_or("");
    f.kod = r.kod.value_or("");
    f.offset_s = r.offset_s.value_or(0);
    f.jitter_s = r.jitter_s.value_or(0);
    f.stratum = r.stratum.value_or(0);
    figures.push_back(std::move(f));
  }
  return nagios::decide(spec, figures);
}

}  // namespace

void register_check(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Nagios/Icinga plugin: check one server's offset (check_ntp_time options), exit 0-3");
  cmd->add_option("-H,--hostname", args->host,
                  "Server to check: a name (every address is checked, the worst wins) or an "
                  "address, optionally with :PORT");
  cmd->add_option("-p,--port", args->port, "UDP port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("-w,--warning", args->warning, "Offset range (seconds) for WARNING")
      ->capture_default_str();
  cmd->add_option("-c,--critical", args->critical, "Offset range (seconds) for CRITICAL")
      ->capture_default_str();
  cmd->add_option("-W,--swarn", args->stratum_warning, "Stratum range for WARNING");
  cmd->add_option("-C,--scrit", args->stratum_critical, "Stratum range for CRITICAL");
  cmd->add_option("-j,--jwarn", args->jitter_warning, "Jitter range (milliseconds) for WARNING");
  cmd->add_option("-k,--jcrit", args->jitter_critical, "Jitter range (milliseconds) for CRITICAL");
  cmd->add_option("-m,--twarn", args->truechimers_warning,
                  "Range of addresses with a valid answer (truechimers) for WARNING");
  cmd->add_option("-n,--tcrit", args->truechimers_critical,
                  "Range of addresses with a valid answer (truechimers) for CRITICAL");
  cmd->add_option("-o,--time-offset", args->time_offset_s,
                  "Added to the measured offset before the thresholds, as check_ntp_time does "
                  "(a server known to run 5 s ahead: -o -5)");
  cmd->add_option("-t,--timeout", args->timeout_s, "Seconds the whole check may take")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_flag("-4,--use-ipv4", args->ipv4, "Check the IPv4 addresses of the name only");
  cmd->add_flag("-6,--use-ipv6", args->ipv6, "Check the IPv6 addresses of the name only");
  cmd->add_flag("-q,--quiet", args->quiet, "UNKNOWN instead of CRITICAL when no offset is known");
  cmd->add_flag("-v,--verbose", args->verbose, "Also print one line per address");
  cmd->add_option("--samples", args->samples, "Requests per address")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--interval", args->interval_s, "Seconds between requests to one address")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  cmd->add_option("--ntp-version", args->version, "NTP version of the requests")
      ->check(CLI::IsMember({3, 4}))
      ->capture_default_str();
  add_client_auth_options(*cmd, args->auth);
  cmd->callback([args, exit_code] {
    std::signal(SIGALRM, on_alarm);
    alarm(static_cast<unsigned>(args->timeout_s));
    *exit_code = print(run_check(*args), args->verbose > 0);
    alarm(0);
  });
}

}  // namespace ntpmon::app
