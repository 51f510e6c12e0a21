// libFuzzer target for the monitoring configuration (src/config): YAML text and server lists.
//
// The input is parsed three times: as the YAML text of a configuration (parse_config, which also
// reads any server list or key file the text names; the limits are lowered so that a path the
// fuzzer invents, such as a large file in the working directory, stays cheap), and as the contents
// of a server list file (scan_server_list), which no file-based input could reach, and as a /probe
// target (parse_probe_target, text from the network). Invariants:
// never crash or throw; an accepted configuration satisfies what the engine relies on (at least
// one server, unique non-empty names, valid hosts, ports, versions and poll bounds); every error
// names a file and says something; every listed server has a valid host and a line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/host.hpp"
#include "config/probe_target.hpp"
#include "config/server_list.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void check_errors(const std::vector<ntpmon::config::ConfigError>& errors) {
  check(!errors.empty());
  for (const auto& e : errors) {
    check(!e.file.empty());
    check(!e.message.empty());
    check(e.line >= 0 && e.column >= 0);
    check(e.line > 0 || e.column == 0);
  }
}

void check_config(const ntpmon::config::Config& config) {
  check(!config.servers.empty());
  check(config.poll.min_poll_s > 0 && config.poll.min_poll_s <= config.poll.max_poll_s);
  std::set<std::string_view> names;
  for (const auto& server : config.servers) {
    check(!server.name.empty());
    check(names.insert(server.name).second);
    check(ntpmon::config::check_host(server.host).ok());
    check(server.port >= 1);
    check(server.version == 3 || server.version == 4);
    check(server.line >= 1);
    check(server.list_file >= -1 &&
          server.list_file < static_cast<int>(config.server_list_files.size()));
    check(!ntpmon::config::file_of(config, server).empty());
    check(!server.poll_s || (*server.poll_s > 0 && *server.poll_s <= 131072));
    check(!server.expected_stratum ||
          (*server.expected_stratum >= 1 && *server.expected_stratum <= 15));
    check(!server.pool || (server.max_addresses >= 1 && server.max_addresses <= 64));
    check(!(server.nts && server.key_id));
    check(!server.key_id || !config.key_file.empty());
  }
  // Probe modules: sorted, unique, `default` always there, each usable as a server would be.
  check(config.probe.module("default") != nullptr);
  for (std::size_t i = 0; i < config.probe.modules.size(); ++i) {
    const auto& m = config.probe.modules[i];
    check(!m.name.empty() && m.name.size() <= 64);
    check(i == 0 || config.probe.modules[i - 1].name < m.name);
    check(m.version == 3 || m.version == 4);
    check(!(m.nts && m.key_id) && !(m.nts && m.version == 3));
    check(!m.key_id || !config.key_file.empty());
    check(!m.poll || (m.poll->min_poll_s > 0 && m.poll->min_poll_s <= m.poll->max_poll_s));
  }
  check(config.probe.target_ttl_s > 0 && config.probe.max_targets <= 100000);
}

// An accepted target names a valid host and port; a refused one says why, briefly.
void parse_as_probe_target(std::string_view text) {
  const auto target = ntpmon::config::parse_probe_target(text);
  if (!target.ok()) {
    check(!target.error().empty() && target.error().size() < 4 * 300 + 200);
    return;
  }
  check(target->port >= 1);
  check(ntpmon::config::check_host(target->host).ok());
  check(target->host.find('[') == std::string::npos);
}

void scan_as_list(std::string_view text) {
  constexpr std::size_t kMaxServers = 50;
  constexpr std::size_t kMaxErrors = 20;
  std::vector<ntpmon::config::ServerConfig> servers;
  std::vector<int> columns;
  std::vector<ntpmon::config::ConfigError> errors;
  const auto end = ntpmon::config::scan_server_list(text, "list.txt", 0, {}, kMaxServers,
                                                    kMaxErrors, {&servers, &columns, &errors});
  check(servers.size() == columns.size());
  check(servers.size() <= kMaxServers);
  check(errors.size() <= kMaxErrors + 1);
  check((end == ntpmon::config::ServerListEnd::kComplete) ==
        (errors.empty() || errors.back().message.find("more than") == std::string::npos));
  int previous_line = 0;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const auto& server = servers[i];
    check(ntpmon::config::check_host(server.host).ok());
    check(!server.name.empty());
    check(server.line > previous_line);
    previous_line = server.line;
    check(columns[i] >= 1);
  }
  for (const auto& e : errors) check(e.line >= 1 && !e.message.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ntpmon::config::ConfigLimits limits;
  limits.max_servers = 50;
  limits.max_server_list_bytes = 64 * 1024;
  limits.max_list_errors = 20;
  const auto result = ntpmon::config::parse_config(text, "<string>", limits);
  if (result.ok()) {
    check_config(*result);
  } else {
    check_errors(result.error());
  }
  scan_as_list(text);
  parse_as_probe_target(text);
  return 0;
}
