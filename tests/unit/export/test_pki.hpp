// Test certificates made at test time with OpenSSL's API (no files in the repository, nothing
// that expires in the tree): a CA, a server certificate for 127.0.0.1 / ::1 / localhost and a
// client certificate signed by it, a client certificate from an unrelated CA, and a key that
// belongs to no certificate. Also a minimal blocking TLS client for the server tests.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace ntpmon::exporter::testpki {

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertDeleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using CertPtr = std::unique_ptr<X509, CertDeleter>;

inline void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  const bool ok = cert != nullptr
                      ? PEM_write_X509(f, cert) == 1
                      : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  if (!ok) throw std::runtime_error("cannot encode " + path);
}

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) throw std::runtime_error("bad extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Signed by (issuer, issuer_key), or self-signed when issuer is null.
inline CertPtr make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                         const char* san, long serial) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "CA:FALSE");
    if (san != nullptr) add_ext(cert.get(), signer, NID_subject_alt_name, san);
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    throw std::runtime_error("cannot sign");
  }
  return cert;
}

struct TestPki {
  std::string dir;
  std::string ca_cert, server_cert, server_key, client_cert, client_key;
  std::string stranger_cert, stranger_key;  // client certificate from another CA
  std::string unrelated_key;                // matches no certificate
};

inline TestPki make_test_pki() {
  std::string tmpl = ::testing::TempDir() + "ntpmon-pki-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
  TestPki pki;
  pki.dir = tmpl + "/";
  const auto path = [&](const char* name) { return pki.dir + name; };
  KeyPtr ca_key(EVP_EC_gen("P-256"));
  KeyPtr server_key(EVP_EC_gen("P-256"));
  KeyPtr client_key(EVP_EC_gen("P-256"));
  KeyPtr other_ca_key(EVP_EC_gen("P-256"));
  KeyPtr stranger_key(EVP_EC_gen("P-256"));
  KeyPtr unrelated_key(EVP_EC_gen("P-256"));
  const CertPtr ca = make_cert(ca_key.get(), "test ca", nullptr, nullptr, true, nullptr, 1);
  const CertPtr server = make_cert(server_key.get(), "localhost", ca.get(), ca_key.get(), false,
                                   "DNS:localhost,IP:127.0.0.1,IP:::1", 2);
  const CertPtr client =
      make_cert(client_key.get(), "scraper", ca.get(), ca_key.get(), false, nullptr, 3);
  const CertPtr other_ca =
      make_cert(other_ca_key.get(), "other ca", nullptr, nullptr, true, nullptr, 4);
  const CertPtr stranger = make_cert(stranger_key.get(), "stranger", other_ca.get(),
                                     other_ca_key.get(), false, nullptr, 5);
  pki.ca_cert = path("ca.pem");
  write_pem(pki.ca_cert, ca.get(), nullptr);
  pki.server_cert = path("server.pem");
  write_pem(pki.server_cert, server.get(), nullptr);
  pki.server_key = path("server.key");
  write_pem(pki.server_key, nullptr, server_key.get());
  pki.client_cert = path("client.pem");
  write_pem(pki.client_cert, client.get(), nullptr);
  pki.client_key = path("client.key");
  write_pem(pki.client_key, nullptr, client_key.get());
  pki.stranger_cert = path("stranger.pem");
  write_pem(pki.stranger_cert, stranger.get(), nullptr);
  pki.stranger_key = path("stranger.key");
  write_pem(pki.stranger_key, nullptr, stranger_key.get());
  pki.unrelated_key = path("unrelated.key");
  write_pem(pki.unrelated_key, nullptr, unrelated_key.get());
  return pki;
}

struct TlsClientOptions {
  std::string ca_file;
  std::string cert_file;  // client certificate, "" = none
  std::string key_file;
  int max_version = 0;  // e.g. TLS1_2_VERSION; 0 = library default
};

// Connects to 127.0.0.1:port, does the handshake, sends `request` and reads until the server
// closes or 3 s pass. Returns the bytes read, or "" when the handshake (or the first read, where
// TLS 1.3 reports a rejected client certificate) fails.
inline std::string tls_exchange(std::uint16_t port, const TlsClientOptions& options,
                                const std::string& request) {
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (options.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), options.max_version);
  if (!options.cert_file.empty()) {
    SSL_CTX_use_certificate_file(ctx.get(), options.cert_file.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), SSL_FILETYPE_PEM);
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return {};
  }
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL* ssl = SSL_new(ctx.get());
  SSL_set_fd(ssl, fd);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
  std::string out;
  if (SSL_connect(ssl) == 1 &&
      SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
    char buf[4096];
    while (true) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
  return out;
}

}  // namespace ntpmon::exporter::testpki
