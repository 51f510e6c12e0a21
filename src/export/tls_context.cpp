#include "export/tls_context.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "config/yaml_document.hpp"

namespace ntpmon::exporter {

std::string_view to_string(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTls10:
      return "TLS10";
    case TlsVersion::kTls11:
      return "TLS11";
    case TlsVersion::kTls12:
      return "TLS12";
    case TlsVersion::kTls13:
      return "TLS13";
  }
  return "?";
}

std::string_view to_string(ClientAuth auth) {
  switch (auth) {
    case ClientAuth::kNoClientCert:
      return "NoClientCert";
    case ClientAuth::kRequestClientCert:
      return "RequestClientCert";
    case ClientAuth::kRequireAnyClientCert:
      return "RequireAnyClientCert";
    case ClientAuth::kVerifyClientCertIfGiven:
      return "VerifyClientCertIfGiven";
    case ClientAuth::kRequireAndVerifyClientCert:
      return "RequireAndVerifyClientCert";
  }
  return "?";
}

namespace {

std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
}

// Opened first: OpenSSL's message for a missing file is a generic "system lib". Only a regular
// file, looked at before it is opened and opened without waiting: OpenSSL's own open of a FIFO
// would block the thread that (re)loads the certificate until something writes to it.
std::optional<std::string> unreadable(const std::string& path) {
  if (auto why = config::not_a_regular_file(path)) return "'" + path + "' " + *why;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return "cannot open '" + path + "': " + std::strerror(errno);
  ::close(fd);
  return std::nullopt;
}

int openssl_version(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTls10:
      return TLS1_VERSION;
    case TlsVersion::kTls11:
      return TLS1_1_VERSION;
    case TlsVersion::kTls12:
      return TLS1_2_VERSION;
    case TlsVersion::kTls13:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

// RequestClientCert and RequireAnyClientCert take any certificate: the chain is not judged.
int accept_any_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*store*/) { return 1; }

// configure_tls_context, with which file failed.
std::optional<TlsFailure> apply_tls_settings(SSL_CTX& ctx, const TlsServerConfig& tls) {
  ERR_clear_error();
  // Renegotiation only lets a client make the server redo expensive work; compression leaks
  // secrets (CRIME).
  SSL_CTX_set_options(
      &ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_min_proto_version(&ctx, openssl_version(tls.min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(&ctx, openssl_version(tls.max_version)) != 1) {
    return TlsFailure{TlsFile::kNone, "cannot set the TLS versions: " + openssl_reason()};
  }
  if (auto why = unreadable(tls.cert_file)) return TlsFailure{TlsFile::kCert, *why};
  if (SSL_CTX_use_certificate_chain_file(&ctx, tls.cert_file.c_str()) != 1) {
    return TlsFailure{TlsFile::kCert,
                      "cannot load certificate '" + tls.cert_file + "': " + openssl_reason()};
  }
  if (auto why = unreadable(tls.key_file)) return TlsFailure{TlsFile::kKey, *why};
  if (SSL_CTX_use_PrivateKey_file(&ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair here already; its "key values mismatch" alone would not say
    // which certificate the key was held against.
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return TlsFailure{TlsFile::kKey, "private key '" + tls.key_file +
                                           "' does not match the certificate '" + tls.cert_file +
                                           "'"};
    }
    return TlsFailure{TlsFile::kKey,
                      "cannot load private key '" + tls.key_file + "': " + openssl_reason()};
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    ERR_clear_error();
    return TlsFailure{TlsFile::kKey, "private key '" + tls.key_file +
                                         "' does not match the certificate '" + tls.cert_file +
                                         "'"};
  }
  if (!tls.client_ca_file.empty()) {
    if (auto why = unreadable(tls.client_ca_file)) return TlsFailure{TlsFile::kClientCa, *why};
    if (SSL_CTX_load_verify_locations(&ctx, tls.client_ca_file.c_str(), nullptr) != 1) {
      return TlsFailure{TlsFile::kClientCa,
                        "cannot load client CA '" + tls.client_ca_file + "': " + openssl_reason()};
    }
    // Tells clients which CAs' certificates are welcome (the CertificateRequest's list).
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr) {
      return TlsFailure{TlsFile::kClientCa, "no certificate in client CA '" + tls.client_ca_file +
                                                "': " + openssl_reason()};
    }
    SSL_CTX_set_client_CA_list(&ctx, names);
  }
  switch (tls.client_auth) {
    case ClientAuth::kNoClientCert:
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_NONE, nullptr);
      break;
    case ClientAuth::kRequestClientCert:
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, accept_any_certificate);
      break;
    case ClientAuth::kRequireAnyClientCert:
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         accept_any_certificate);
      break;
    case ClientAuth::kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
      break;
    case ClientAuth::kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  // Without a session id context OpenSSL refuses to resume a session that carried a client
  // certificate, and the client sees a handshake failure instead of a fresh handshake.
  static constexpr unsigned char kSessionContext[] = "ntp-monitor";
  SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof kSessionContext - 1);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> configure_tls_context(ssl_ctx_st& ctx, const TlsServerConfig& tls) {
  if (auto failure = apply_tls_settings(ctx, tls)) return std::move(failure->message);
  return std::nullopt;
}

std::optional<TlsFailure> check_tls_files(const TlsServerConfig& tls) {
  const std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_server_method()),
                                                         &SSL_CTX_free);
  if (!ctx) return TlsFailure{TlsFile::kNone, "cannot create a TLS context: " + openssl_reason()};
  return apply_tls_settings(*ctx, tls);
}

}  // namespace ntpmon::exporter
