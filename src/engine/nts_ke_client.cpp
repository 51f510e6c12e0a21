#include "engine/nts_ke_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <csignal>
#include <cstring>
#include <ctime>
#include <span>
#include <string_view>
#include <utility>

#include "proto/nts_ke.hpp"

namespace ntpmon::engine {
namespace {

// RFC 8915 §5.1: the exporter label, and 32-byte keys for AEAD_AES_SIV_CMAC_256.
constexpr std::string_view kExporterLabel = "EXPORTER-network-time-security";
constexpr std::size_t kAeadKeySize = 32;
// A real response is a few hundred bytes per cookie; anything far beyond eight cookies is a
// misbehaving server, not a reason to keep buffering.
constexpr std::size_t kMaxResponseSize = 64 * 1024;
// After the exchange: how long we wait for the server's close_notify once ours is sent, before
// closing the socket anyway (the result is delivered at once; only the socket lingers).
constexpr auto kCloseNotifyWait = std::chrono::seconds(1);

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

// The most recent OpenSSL error on this thread's queue, then clears the queue so the next
// exchange does not report a stale error.
std::string openssl_error() {
  std::string text;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    text = buffer.data();
  }
  return text;
}

std::optional<std::int64_t> not_after_unix_s(const X509* cert) {
  if (cert == nullptr) return std::nullopt;
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  std::tm tm{};
  if (not_after == nullptr || ASN1_TIME_to_tm(not_after, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

bool is_ip_literal(const std::string& host) {
  asio::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

std::string aead_name(std::uint16_t aead) {
  if (aead == proto::kNtsKeAeadAesSivCmac256) return "AEAD_AES_SIV_CMAC_256";
  return "AEAD " + std::to_string(aead);
}

class NtsKeClient::Exchange : public std::enable_shared_from_this<NtsKeClient::Exchange> {
 public:
  Exchange(asio::io_context& io, NtsKeConfig config, Callback done)
      : io_(io), socket_(io), timer_(io), config_(std::move(config)), done_(std::move(done)) {}

  void start() {
    started_ = std::chrono::steady_clock::now();
    auto self = shared_from_this();
    timer_.expires_after(config_.timeout);
    timer_.async_wait([self](const asio::error_code& ec) {
      if (!ec) self->finish(Err(NtsKeFailure{"timeout", "no complete NTS-KE response in time"}));
    });
    socket_.async_connect(config_.endpoint, [self](const asio::error_code& ec) {
      if (self->finished_) return;
      if (ec) {
        self->finish(Err(NtsKeFailure{"connect", ec.message()}));
        return;
      }
      self->on_connected();
    });
  }

  void cancel() {
    cancelled_ = true;
    finished_ = true;
    shutdown();
  }

 private:
  enum class Phase : std::uint8_t { kHandshake, kWrite, kRead, kClosing };

  void on_connected() {
    asio::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) {
      finish(Err(NtsKeFailure{"connect", ec.message()}));
      return;
    }
    // The exchange is a few small writes each waiting for an answer: with Nagle's algorithm
    // and the peer's delayed ACK every round trip stalls ~40 ms. A failure only costs speed.
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (auto problem = setup_tls()) {
      finish(Err(std::move(*problem)));
      return;
    }
    request_ = proto::encode_client_request();
    phase_ = Phase::kHandshake;
    step();
  }

  std::optional<NtsKeFailure> setup_tls() {
    ERR_clear_error();
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) return NtsKeFailure{"tls_setup", openssl_error()};
    // RFC 8915 §3: TLS 1.3 or newer only.
    if (SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION) != 1) {
      return NtsKeFailure{"tls_setup", openssl_error()};
    }
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    const int loaded = config_.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_.get())
                                               : SSL_CTX_load_verify_locations(
                                                     ctx_.get(), config_.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      return NtsKeFailure{
          "certificate", "cannot load trust store " +
                             (config_.ca_file.empty() ? std::string("(system)") : config_.ca_file) +
                             ": " + openssl_error()};
    }
    // ALPN in wire format: one length-prefixed protocol name.
    std::vector<unsigned char> alpn;
    alpn.push_back(static_cast<unsigned char>(proto::kNtsKeAlpn.size()));
    alpn.insert(alpn.end(), proto::kNtsKeAlpn.begin(), proto::kNtsKeAlpn.end());
    if (SSL_CTX_set_alpn_protos(ctx_.get(), alpn.data(), static_cast<unsigned>(alpn.size())) != 0) {
      return NtsKeFailure{"tls_setup", openssl_error()};
    }
    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1) {
      return NtsKeFailure{"tls_setup", openssl_error()};
    }
    // RFC 9525 §6.3: the name is matched against the subjectAltName only; a certificate without
    // a DNS or IP SAN is not accepted on its subject's CN (OpenSSL's fallback otherwise).
    X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl_.get()),
                                    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (is_ip_literal(config_.host)) {
      // RFC 6066 forbids IP literals in SNI; verify against the certificate's IP SANs.
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), config_.host.c_str()) != 1) {
        return NtsKeFailure{"tls_setup", "bad IP address " + config_.host};
      }
    } else {
      // SSL_set_tlsext_host_name is a macro with a C cast; this is its expansion.
      if (SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(config_.host.c_str())) != 1 ||
          SSL_set1_host(ssl_.get(), config_.host.c_str()) != 1) {
        return NtsKeFailure{"tls_setup", openssl_error()};
      }
    }
    SSL_set_connect_state(ssl_.get());
    return std::nullopt;
  }

  // Runs the current phase until OpenSSL needs the socket, then waits for it.
  void step() {
    while (!finished_) {
      ERR_clear_error();
      int rc = 0;
      switch (phase_) {
        case Phase::kHandshake:
          rc = SSL_do_handshake(ssl_.get());
          if (rc == 1) {
            handshake_done_ = true;
            if (auto problem = after_handshake()) {
              finish(Err(std::move(*problem)));
              return;
            }
            phase_ = Phase::kWrite;
            continue;
          }
          break;
        case Phase::kWrite:
          rc = SSL_write(ssl_.get(), request_.data() + written_,
                         static_cast<int>(request_.size() - written_));
          if (rc > 0) {
            written_ += static_cast<std::size_t>(rc);
            if (written_ == request_.size()) phase_ = Phase::kRead;
            continue;
          }
          break;
        case Phase::kClosing:
          return;
        case Phase::kRead: {
          std::array<std::uint8_t, 4096> buffer{};
          rc = SSL_read(ssl_.get(), buffer.data(), static_cast<int>(buffer.size()));
          if (rc > 0) {
            response_.insert(response_.end(), buffer.begin(), buffer.begin() + rc);
            if (const auto size = proto::complete_message_size(response_)) {
              complete(*size);
              return;
            }
            if (response_.size() > kMaxResponseSize) {
              finish(Err(
                  NtsKeFailure{"protocol:too_large", std::to_string(response_.size()) + " bytes"}));
              return;
            }
            continue;
          }
          break;
        }
      }
      const int error = SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        wait(error == SSL_ERROR_WANT_READ ? asio::ip::tcp::socket::wait_read
                                          : asio::ip::tcp::socket::wait_write);
        return;
      }
      // OpenSSL forbids SSL_shutdown after these (the session is broken).
      if (error == SSL_ERROR_SYSCALL || error == SSL_ERROR_SSL) tls_broken_ = true;
      finish(Err(classify_failure(error)));
      return;
    }
  }

  NtsKeFailure classify_failure(int error) {
    if (phase_ == Phase::kHandshake) {
      const long verify = SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK) {
        return {"certificate", X509_verify_cert_error_string(verify)};
      }
      const std::string text = openssl_error();
      return {"tls_handshake", text.empty() ? "connection closed during the handshake" : text};
    }
    if (phase_ == Phase::kRead && (error == SSL_ERROR_ZERO_RETURN || error == SSL_ERROR_SYSCALL)) {
      // The server closed before End of Message: a truncated response (§4).
      return {"protocol:" + std::string(proto::to_string(proto::NtsKeError::kTruncatedRecord)),
              "connection closed after " + std::to_string(response_.size()) + " bytes"};
    }
    const std::string text = openssl_error();
    return {"io", text.empty() ? "TLS error " + std::to_string(error) : text};
  }

  std::optional<NtsKeFailure> after_handshake() {
    const unsigned char* selected = nullptr;
    unsigned selected_size = 0;
    SSL_get0_alpn_selected(ssl_.get(), &selected, &selected_size);
    // RFC 8915 §3: the server must select ntske/1; a server that ignored ALPN is not NTS-KE.
    if (selected == nullptr || std::string_view(reinterpret_cast<const char*>(selected),
                                                selected_size) != proto::kNtsKeAlpn) {
      return NtsKeFailure{"alpn", "server did not select ntske/1"};
    }
    const X509* cert = SSL_get0_peer_certificate(ssl_.get());
    not_after_ = not_after_unix_s(cert);
    return std::nullopt;
  }

  void wait(asio::ip::tcp::socket::wait_type type) {
    auto self = shared_from_this();
    socket_.async_wait(type, [self](const asio::error_code& ec) {
      if (self->finished_) return;
      if (ec) {
        self->finish(Err(NtsKeFailure{"io", ec.message()}));
        return;
      }
      self->step();
    });
  }

  void complete(std::size_t size) {
    const auto message = std::span<const std::uint8_t>(response_.data(), size);
    const auto accepted = proto::accept_response(message);
    if (!accepted) {
      NtsKeFailure failure{"protocol:" + std::string(proto::to_string(accepted.error())), ""};
      if (accepted.error() == proto::NtsKeError::kServerError) {
        const auto parsed = proto::parse_response(message);
        if (parsed && !parsed->errors.empty()) {
          failure.detail = "server error code " + std::to_string(parsed->errors.front());
        }
      }
      finish(Err(std::move(failure)));
      return;
    }
    NtsKeSession session;
    session.aead = accepted->aead_algorithms.front();
    session.cookies = accepted->cookies;
    session.server = accepted->server;
    session.port = accepted->port;
    session.certificate_not_after_unix_s = not_after_;
    // §5.1: context = Protocol ID (NTPv4 = 0) || AEAD id || 0x00 (C2S) / 0x01 (S2C).
    std::array<unsigned char, 5> context{0, 0, static_cast<unsigned char>(session.aead >> 8),
                                         static_cast<unsigned char>(session.aead & 0xff), 0};
    session.c2s_key.resize(kAeadKeySize);
    session.s2c_key.resize(kAeadKeySize);
    bool exported = SSL_export_keying_material(ssl_.get(), session.c2s_key.data(), kAeadKeySize,
                                               kExporterLabel.data(), kExporterLabel.size(),
                                               context.data(), context.size(), 1) == 1;
    context[4] = 1;
    exported =
        exported && SSL_export_keying_material(ssl_.get(), session.s2c_key.data(), kAeadKeySize,
                                               kExporterLabel.data(), kExporterLabel.size(),
                                               context.data(), context.size(), 1) == 1;
    if (!exported) {
      finish(Err(NtsKeFailure{"key_export", openssl_error()}));
      return;
    }
    finish(std::move(session));
  }

  void finish(NtsKeResult result) {
    if (finished_) return;
    finished_ = true;
    if (result.ok()) {
      result->duration_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    }
    // A TLS session that was established ends with a close_notify (RFC 8446 §6.1, a MUST);
    // a failed handshake or a timeout just closes the socket.
    const bool timed_out = !result.ok() && result.error().reason == "timeout";
    if (handshake_done_ && !tls_broken_ && !timed_out) {
      phase_ = Phase::kClosing;
      timer_.cancel();
      timer_.expires_after(kCloseNotifyWait);
      auto self = shared_from_this();
      timer_.async_wait([self](const asio::error_code& ec) {
        if (!ec) self->shutdown();
      });
      start_close();
    } else {
      shutdown();
    }
    // Deliver from the loop, so the owner may start a new exchange from its callback.
    auto self = shared_from_this();
    asio::post(io_, [self, result = std::move(result)] {
      if (!self->cancelled_) self->done_(result);
    });
  }

  // Sends our close_notify, then reads (and drops) what the server still sends until its own
  // close_notify or EOF, so that the socket is closed with nothing unread and neither side sees
  // a reset; at most kCloseNotifyWait (the timer finish() armed). The caller has its result
  // already.
  void start_close() {
    ERR_clear_error();
    const int rc = SSL_shutdown(ssl_.get());
    if (rc == 1) {
      shutdown();  // both close_notify done
      return;
    }
    if (rc < 0) {
      const int error = SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
        // Ours is not out yet: wait until it can be written, then try again.
        wait_close(error == SSL_ERROR_WANT_WRITE ? asio::ip::tcp::socket::wait_write
                                                 : asio::ip::tcp::socket::wait_read,
                   true);
        return;
      }
      shutdown();
      return;
    }
    drain();
  }

  // Our close_notify is out: read until the server's (SSL_ERROR_ZERO_RETURN) or the end.
  void drain() {
    while (!closed_) {
      ERR_clear_error();
      std::array<std::uint8_t, 4096> buffer{};
      const int rc = SSL_read(ssl_.get(), buffer.data(), static_cast<int>(buffer.size()));
      if (rc > 0) continue;
      const int error = SSL_get_error(ssl_.get(), rc);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        wait_close(error == SSL_ERROR_WANT_READ ? asio::ip::tcp::socket::wait_read
                                                : asio::ip::tcp::socket::wait_write,
                   false);
        return;
      }
      shutdown();  // close_notify received (ZERO_RETURN), EOF or an error: done either way
      return;
    }
  }

  void wait_close(asio::ip::tcp::socket::wait_type type, bool retry_shutdown) {
    auto self = shared_from_this();
    socket_.async_wait(type, [self, retry_shutdown](const asio::error_code& ec) {
      if (self->closed_) return;
      if (ec) {
        self->shutdown();
        return;
      }
      if (retry_shutdown) {
        self->start_close();
      } else {
        self->drain();
      }
    });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  NtsKeConfig config_;
  Callback done_;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
  std::vector<std::uint8_t> request_;
  std::size_t written_ = 0;
  std::vector<std::uint8_t> response_;
  std::optional<std::int64_t> not_after_;
  std::chrono::steady_clock::time_point started_;
  Phase phase_ = Phase::kHandshake;
  bool finished_ = false;
  bool cancelled_ = false;
  bool handshake_done_ = false;
  bool tls_broken_ = false;  // a fatal TLS error: no close_notify possible
  bool closed_ = false;      // the socket is closed: nothing more happens
};

NtsKeClient::NtsKeClient(asio::io_context& io) : io_(io) {}

NtsKeClient::~NtsKeClient() { cancel(); }

void NtsKeClient::start(NtsKeConfig config, Callback done) {
  cancel();
  // OpenSSL writes to the socket with write(2), not send(MSG_NOSIGNAL): a server that resets
  // the connection mid-handshake would raise SIGPIPE and kill the process. Ignore it unless
  // the program installed its own handler.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
  current_ = std::make_shared<Exchange>(io_, std::move(config), std::move(done));
  current_->start();
}

void NtsKeClient::cancel() {
  if (current_) {
    current_->cancel();
    current_.reset();
  }
}

}  // namespace ntpmon::engine
