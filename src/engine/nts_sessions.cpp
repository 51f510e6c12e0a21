#include "engine/nts_sessions.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <system_error>
#include <utility>

namespace ntpmon::engine {

NtsSessions::NtsSessions(asio::io_context& io, Resolver& resolver, Logger& logger,
                         Handlers handlers)
    : io_(io), resolver_(resolver), logger_(logger), handlers_(std::move(handlers)) {}

NtsSessions::~NtsSessions() { cancel_all(); }

void NtsSessions::start(const monitor::NtsKeAction& action) {
  auto [it, inserted] = sessions_.try_emplace(action.source);
  Session& session = it->second;
  if (inserted) {
    session.state = std::make_shared<NtsState>();
    session.ke = std::make_unique<NtsKeClient>(io_);
  }
  const std::uint64_t generation = ++next_generation_;
  session.generation = generation;
  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(action.address, ec);
  if (ec) {
    asio::post(io_, [this, id = action.source, generation, a = action.address] {
      if (current(id, generation)) failed(id, "connect", "bad address " + a);
    });
    return;
  }
  NtsKeConfig ke;
  ke.host = action.host;
  ke.endpoint = asio::ip::tcp::endpoint(address, action.port);
  ke.ca_file = action.ca_file;
  ke.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(action.timeout_s));
  // NtsKeClient never calls back after cancel() or its destruction.
  session.ke->start(std::move(ke), [this, id = action.source, address,
                                    ntp_port = action.ntp_port](const NtsKeResult& result) {
    if (!result) {
      failed(id, result.error().reason, result.error().detail);
      return;
    }
    on_session(id, address, ntp_port, *result);
  });
}

void NtsSessions::cancel(monitor::SourceId source) {
  const auto it = sessions_.find(source);
  if (it == sessions_.end()) return;
  it->second.ke->cancel();
  // Its callback may be the one running: destroyed once the loop is out of it.
  graveyard_.push_back(std::move(it->second));
  sessions_.erase(it);
  asio::post(io_, [this] { graveyard_.clear(); });
}

void NtsSessions::cancel_all() {
  for (auto& [id, session] : sessions_) session.ke->cancel();
  sessions_.clear();
  graveyard_.clear();
}

bool NtsSessions::current(monitor::SourceId source, std::uint64_t generation) const {
  const auto it = sessions_.find(source);
  return it != sessions_.end() && it->second.generation == generation;
}

std::optional<NtsSessions::Ready> NtsSessions::ready(monitor::SourceId source) const {
  const auto it = sessions_.find(source);
  if (it == sessions_.end() || !it->second.endpoint) return std::nullopt;
  return Ready{it->second.state, *it->second.endpoint};
}

std::optional<std::size_t> NtsSessions::cookies(monitor::SourceId source) const {
  const auto it = sessions_.find(source);
  if (it == sessions_.end()) return std::nullopt;
  return it->second.state->cookies.size();
}

void NtsSessions::failed(monitor::SourceId source, const std::string& reason,
                         const std::string& detail) {
  if (handlers_.on_failed) handlers_.on_failed(source, reason, detail);
}

void NtsSessions::on_session(monitor::SourceId source, const asio::ip::address& ke_address,
                             std::uint16_t ntp_port, const NtsKeSession& session) {
  const std::uint16_t port = session.port.value_or(ntp_port);
  if (!session.server) {
    install(source, asio::ip::udp::endpoint(ke_address, port), session);
    return;
  }
  const std::uint64_t generation = sessions_.at(source).generation;
  resolver_.resolve(*session.server, port,
                    [this, source, generation, ke_address, session](
                        const std::error_code& ec, std::vector<asio::ip::udp::endpoint> endpoints) {
                      if (!current(source, generation)) return;  // cancelled or restarted meanwhile
                      if (ec || endpoints.empty()) {
                        failed(source, "resolve",
                               "cannot resolve the negotiated NTP server " + *session.server +
                                   (ec ? ": " + ec.message() : std::string()));
                        return;
                      }
                      asio::ip::udp::endpoint chosen = endpoints.front();
                      for (const asio::ip::udp::endpoint& endpoint : endpoints) {
                        if (endpoint.address().is_v4() == ke_address.is_v4()) {
                          chosen = endpoint;
                          break;
                        }
                      }
                      install(source, chosen, session);
                    });
}

void NtsSessions::install(monitor::SourceId source, const asio::ip::udp::endpoint& endpoint,
                          const NtsKeSession& session) {
  const auto it = sessions_.find(source);
  if (it == sessions_.end()) return;  // cancelled meanwhile
  Session& state = it->second;
  // The same NtsState object stays shared with the source's probe: only its contents change.
  state.state->c2s_key = session.c2s_key;
  state.state->s2c_key = session.s2c_key;
  state.state->cookies.assign(session.cookies.begin(), session.cookies.end());
  state.endpoint = endpoint;
  logger_.log(
      LogLevel::kDebug, "nts_session",
      {{"ntp_server", endpoint.address().to_string() + ":" + std::to_string(endpoint.port())},
       {"aead", aead_name(session.aead)}});
  monitor::NtsKeInfo info;
  info.duration_s = session.duration_s;
  info.cookies = session.cookies.size();
  info.certificate_not_after_unix_s = session.certificate_not_after_unix_s;
  if (handlers_.on_ready) handlers_.on_ready(source, info);
}

}  // namespace ntpmon::engine
