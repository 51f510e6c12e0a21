#include "engine/resolver.hpp"

#include <asio/post.hpp>
#include <utility>

namespace ntpmon::engine {

Resolver::Resolver(asio::io_context& io) : io_(io), resolver_(io) {}

Resolver::~Resolver() { cancel(); }

void Resolver::resolve(const std::string& host, std::uint16_t port, Callback done) {
  std::error_code literal_ec;
  const asio::ip::address literal = asio::ip::make_address(host, literal_ec);
  if (!literal_ec) {
    asio::post(io_, [cancelled = cancelled_, endpoint = asio::ip::udp::endpoint(literal, port),
                     done = std::move(done)] {
      if (!*cancelled) done({}, {endpoint});
    });
    return;
  }
  // No AI_ADDRCONFIG: it hides ::1 on hosts whose only IPv6 address is loopback.
  resolver_.async_resolve(
      host, std::to_string(port), asio::ip::resolver_base::numeric_service,
      [cancelled = cancelled_, done = std::move(done)](
          const std::error_code& ec, const asio::ip::udp::resolver::results_type& results) {
        if (*cancelled || ec == asio::error::operation_aborted) return;
        std::vector<asio::ip::udp::endpoint> endpoints;
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
        done(ec, std::move(endpoints));
      });
}

void Resolver::cancel() {
  *cancelled_ = true;
  cancelled_ = std::make_shared<bool>(false);
  resolver_.cancel();
}

std::vector<monitor::ResolvedAddress> to_resolved(
    const std::vector<asio::ip::udp::endpoint>& endpoints) {
  std::vector<monitor::ResolvedAddress> out;
  out.reserve(endpoints.size());
  for (const asio::ip::udp::endpoint& endpoint : endpoints) {
    asio::ip::address address = endpoint.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    monitor::ResolvedAddress r;
    r.address = address.to_string();
    r.port = endpoint.port();
    r.loopback = address.is_loopback();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ntpmon::engine
