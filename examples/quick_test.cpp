// The project's original "quick test", in C++: load the server list, show it, and ask one
// server for the time.
//
//   example_quick_test [CONFIG [HOST]]
//
// CONFIG defaults to config/servers.yaml, HOST to the first configured server. Exits 0 when
// the server gave a valid answer, 1 when it did not, 2 when the configuration is invalid.
#include <cstdio>
#include <string>
#include <vector>

#include "client/ntp_client.hpp"

int main(int argc, char** argv) {
  const std::string config_path = argc > 1 ? argv[1] : "config/servers.yaml";
  try {
    const ntpmon::NtpClient client = ntpmon::NtpClient::from_config(config_path);

    const std::vector<std::string> servers = client.get_servers();
    std::printf("[");
    for (std::size_t i = 0; i < servers.size(); ++i) {
      std::printf("%s'%s'", i == 0 ? "" : ", ", servers[i].c_str());
    }
    std::printf("]\n");

    if (argc <= 2 && servers.empty()) {
      std::fprintf(stderr, "%s: no servers configured\n", config_path.c_str());
      return 2;
    }
    const std::string host = argc > 2 ? argv[2] : servers.front();
    const ntpmon::TimeResult r = client.get_time(host);
    if (!r.ok) {
      std::printf("{'host': '%s', 'error': '%s'}\n", host.c_str(), r.error.c_str());
      return 1;
    }
    std::printf("{'offset': %.9f, 'stratum': %d, 'jitter': %.9f}\n", r.offset, r.stratum, r.jitter);
    return 0;
  } catch (const ntpmon::ConfigLoadError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
