#include "engine/resolver.hpp"

#include <utility>

namespace ntpmon::engine {

Resolver::Resolver(asio::io_context& io, DnsOptions options) : dns_(io, options) {}

Resolver::~Resolver() { cancel(); }

void Resolver::resolve(const std::string& host, std::uint16_t port, Callback done) {
  // AsyncDns answers literals itself, from the loop, and never calls back from inside lookup().
  dns_.lookup(host, [port, done = std::move(done)](const std::error_code& ec,
                                                   std::vector<asio::ip::address> addresses) {
    std::vector<asio::ip::udp::endpoint> endpoints;
    endpoints.reserve(addresses.size());
    for (const asio::ip::address& address : addresses) endpoints.emplace_back(address, port);
    done(ec, std::move(endpoints));
  });
}

void Resolver::cancel() { dns_.cancel(); }

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
