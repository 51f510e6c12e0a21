// NTS Key Establishment client (RFC 8915 §4) over TLS 1.3 on the Asio io_context.
//
// Responsible for: the TCP connection to an NTS-KE server, the TLS 1.3 handshake with ALPN
// "ntske/1", SNI and certificate verification against the system trust store or a CA file
// (chain and host name or IP address), sending the request and reading the response until End
// of Message (with proto::nts_ke doing every byte of record parsing), exporting the two AEAD keys
// with the TLS exporter (§5.1), the handshake duration and the certificate's notAfter, and a
// per-attempt timeout. Every failure is reported once through the callback with a stable reason
// name. Not responsible for: using the cookies (UdpProbe), deciding when to redo NTS-KE or how
// to back off (the owner: the query runner or the daemon's monitor), or resolving names.
//
// Non-blocking: OpenSSL works on the socket's non-blocking descriptor and every WANT_READ /
// WANT_WRITE becomes an async_wait on it, so NTS-KE never stalls the thread that stamps probes.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::engine {

struct NtsKeConfig {
  // The name the certificate must carry (DNS name, or an IP address literal checked against the
  // certificate's IP SANs). A DNS name is also sent as SNI.
  std::string host;
  asio::ip::tcp::endpoint endpoint;  // where to connect (port 4460 by default)
  std::string ca_file;               // PEM bundle to trust instead of the system store
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);
};

// What NTS-KE negotiated: everything UdpProbe needs for NTS requests.
struct NtsKeSession {
  std::uint16_t aead = 0;             // AEAD algorithm id (15: AEAD_AES_SIV_CMAC_256)
  std::vector<std::uint8_t> c2s_key;  // client-to-server key (32 bytes for AEAD 15)
  std::vector<std::uint8_t> s2c_key;  // server-to-client key
  std::vector<std::vector<std::uint8_t>> cookies;
  std::optional<std::string> server;  // NTPv4 Server record (a name or address), if sent
  std::optional<std::uint16_t> port;  // NTPv4 Port record, if sent
  double duration_s = 0.0;            // connect + handshake + request/response
  // The server certificate's notAfter, seconds since the Unix epoch (UTC).
  std::optional<std::int64_t> certificate_not_after_unix_s;
};

// Stable reason names: connect, tls_setup, tls_handshake, certificate, alpn, timeout, io,
// key_export, protocol:<proto::NtsKeError name> (protocol:server_error carries the code).
struct NtsKeFailure {
  std::string reason;
  std::string detail;  // human-readable, from OpenSSL or the server
  [[nodiscard]] std::string text() const {
    return detail.empty() ? reason : reason + ": " + detail;
  }
};

using NtsKeResult = Result<NtsKeSession, NtsKeFailure>;

// "AEAD_AES_SIV_CMAC_256" for 15, "AEAD <id>" otherwise.
std::string aead_name(std::uint16_t aead);

class NtsKeClient {
 public:
  using Callback = std::function<void(const NtsKeResult&)>;

  explicit NtsKeClient(asio::io_context& io);
  ~NtsKeClient();  // cancels: the callback is not called afterwards
  NtsKeClient(const NtsKeClient&) = delete;
  NtsKeClient& operator=(const NtsKeClient&) = delete;

  // Starts one NTS-KE exchange (cancelling any previous one). `done` is called exactly once,
  // from the io_context, never from inside start().
  void start(NtsKeConfig config, Callback done);
  // Stops the exchange in progress without calling its callback.
  void cancel();

  class Exchange;  // public only for the implementation file

 private:
  asio::io_context& io_;
  std::shared_ptr<Exchange> current_;
};

}  // namespace ntpmon::engine
