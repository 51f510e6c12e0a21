// The TLS settings of the daemon's HTTP endpoints (tls_server_config of the web configuration)
// and their application to an OpenSSL server context.
//
// Responsible for: the TLS settings' types and names, loading the certificate chain, key and
// client CA into a context (with a message naming the file that failed, and which of the three
// it was), protocol versions, the client certificate policy, and the hardening options (no
// compression, no renegotiation). Not responsible for: reading or checking the YAML that names
// these settings (web_config.hpp), sockets or handshakes (http_server.hpp), nor for noticing
// that a certificate file changed while the daemon runs (a restart picks it up).
//
// OpenSSL stays out of this header: the context is only forward-declared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace ntpmon::exporter {

// exporter-toolkit's min_version / max_version names: TLS10, TLS11, TLS12, TLS13.
enum class TlsVersion : std::uint8_t { kTls10, kTls11, kTls12, kTls13 };
std::string_view to_string(TlsVersion version);

// exporter-toolkit's client_auth_type values (they are Go's tls.ClientAuthType names).
enum class ClientAuth : std::uint8_t {
  kNoClientCert,                // no certificate asked for
  kRequestClientCert,           // asked for, not required, not verified
  kRequireAnyClientCert,        // required, not verified
  kVerifyClientCertIfGiven,     // not required; verified against client_ca_file when sent
  kRequireAndVerifyClientCert,  // required and verified against client_ca_file (mutual TLS)
};
std::string_view to_string(ClientAuth auth);

struct TlsServerConfig {
  // Absolute paths: a relative path in the file is taken relative to the file's directory.
  std::string cert_file;       // PEM: the server certificate, then any intermediates
  std::string key_file;        // PEM private key, unencrypted
  std::string client_ca_file;  // PEM CA certificates for client certificates; "" = none
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
};

// Which file a TLS set-up failure is about, so a configuration reader can point at its key.
enum class TlsFile : std::uint8_t { kNone, kCert, kKey, kClientCa };

struct TlsFailure {
  TlsFile file = TlsFile::kNone;
  std::string message;  // with OpenSSL's reason, or the system's for a file that cannot be opened
};

// Applies `tls` to a server context: certificate chain, key (checked against the certificate),
// protocol versions, client certificate policy and CA list, no compression or renegotiation.
// Returns the failure's message. Never throws.
std::optional<std::string> configure_tls_context(ssl_ctx_st& ctx, const TlsServerConfig& tls);
// Applies `tls` to a throw-away context: whether the certificate, key and client CA load and
// belong together. Never throws.
std::optional<TlsFailure> check_tls_files(const TlsServerConfig& tls);

}  // namespace ntpmon::exporter
