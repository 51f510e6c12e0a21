// The NTS sessions of the daemon's sources (RFC 8915): one NTS-KE client per NTS source, and
// what each handshake gave.
//
// Responsible for: starting NTS-KE when the Monitor asks (NtsKeAction), finding the NTP server
// the handshake negotiated (§4.1.7-8: its Server and Port records, else the NTS-KE address and
// the configured port; a name resolved through the Resolver, the NTS-KE family preferred),
// installing keys and cookies into the NtsState shared with the source's probe, reporting each
// outcome once and from the loop, and forgetting a source (a callback in progress is never
// destroyed under itself). Not responsible for: when to run NTS-KE or retry (src/monitor), the
// TLS exchange itself (NtsKeClient) or NTS requests (the probes).
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/logging.hpp"
#include "engine/nts_ke_client.hpp"
#include "engine/probe_auth.hpp"
#include "engine/resolver.hpp"
#include "monitor/monitor.hpp"

namespace ntpmon::engine {

class NtsSessions {
 public:
  struct Handlers {
    // Keys and cookies are installed and the NTP endpoint known: ready() answers for `source`.
    std::function<void(monitor::SourceId, const monitor::NtsKeInfo&)> on_ready;
    // `reason` is NtsKeClient's name ("connect", "certificate", ...) or "resolve".
    std::function<void(monitor::SourceId, const std::string& reason, const std::string& detail)>
        on_failed;
  };

  NtsSessions(asio::io_context& io, Resolver& resolver, Logger& logger, Handlers handlers);
  ~NtsSessions();
  NtsSessions(const NtsSessions&) = delete;
  NtsSessions& operator=(const NtsSessions&) = delete;

  // Starts (or restarts) the handshake for action.source. Its outcome comes through a handler,
  // from the loop, never from inside this call.
  void start(const monitor::NtsKeAction& action);
  // Forgets the source: no handler is called for it afterwards.
  void cancel(monitor::SourceId source);
  // Forgets every source (the daemon stops).
  void cancel_all();

  struct Ready {
    std::shared_ptr<NtsState> state;  // shared with the probe: the probe spends its cookies
    asio::ip::udp::endpoint endpoint;
  };
  // The source's session once a handshake succeeded (it stays after later failures until
  // cancel()), else nullopt.
  [[nodiscard]] std::optional<Ready> ready(monitor::SourceId source) const;
  // The cookies the source holds now; nullopt for a source without NTS.
  [[nodiscard]] std::optional<std::size_t> cookies(monitor::SourceId source) const;

 private:
  struct Session {
    std::shared_ptr<NtsState> state;
    std::unique_ptr<NtsKeClient> ke;
    std::optional<asio::ip::udp::endpoint> endpoint;
    std::uint64_t generation = 0;
  };

  void failed(monitor::SourceId source, const std::string& reason, const std::string& detail);
  void on_session(monitor::SourceId source, const asio::ip::address& ke_address,
                  std::uint16_t ntp_port, const NtsKeSession& session);
  void install(monitor::SourceId source, const asio::ip::udp::endpoint& endpoint,
               const NtsKeSession& session);

  asio::io_context& io_;
  Resolver& resolver_;
  Logger& logger_;
  Handlers handlers_;
  std::unordered_map<monitor::SourceId, Session> sessions_;
  // Cancelled sessions wait here until the loop is out of their callbacks.
  std::vector<Session> graveyard_;
  // Each start() gets a new generation: an answer for an older one, or for a cancelled source,
  // is dropped (its handshake or its name lookup was overtaken).
  std::uint64_t next_generation_ = 0;
  [[nodiscard]] bool current(monitor::SourceId source, std::uint64_t generation) const;
};

}  // namespace ntpmon::engine
