// The TLS settings applied to an OpenSSL server context (export/tls_context.hpp): names,
// protocol versions, client certificate policy, hardening options, and failures that say which
// file they are about. Handshakes with these settings: http_server_security_test.cpp.
#include "export/tls_context.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "test_pki.hpp"

namespace ntpmon::exporter {
namespace {

using ContextPtr = std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)>;

ContextPtr new_context() { return {SSL_CTX_new(TLS_server_method()), &SSL_CTX_free}; }

// Made once, on first use; the files stay in the test's temporary directory.
const testpki::TestPki& pki() {
  static const testpki::TestPki made = testpki::make_test_pki();
  return made;
}

TlsServerConfig server(ClientAuth auth = ClientAuth::kNoClientCert) {
  TlsServerConfig tls;
  tls.cert_file = pki().server_cert;
  tls.key_file = pki().server_key;
  if (auth != ClientAuth::kNoClientCert) tls.client_ca_file = pki().ca_cert;
  tls.client_auth = auth;
  return tls;
}

TEST(TlsNames, AreExporterToolkits) {
  EXPECT_EQ(to_string(TlsVersion::kTls10), "TLS10");
  EXPECT_EQ(to_string(TlsVersion::kTls13), "TLS13");
  EXPECT_EQ(to_string(ClientAuth::kNoClientCert), "NoClientCert");
  EXPECT_EQ(to_string(ClientAuth::kRequestClientCert), "RequestClientCert");
  EXPECT_EQ(to_string(ClientAuth::kRequireAnyClientCert), "RequireAnyClientCert");
  EXPECT_EQ(to_string(ClientAuth::kVerifyClientCertIfGiven), "VerifyClientCertIfGiven");
  EXPECT_EQ(to_string(ClientAuth::kRequireAndVerifyClientCert), "RequireAndVerifyClientCert");
}

TEST(TlsContext, VersionsAndHardening) {
  auto tls = server();
  tls.min_version = TlsVersion::kTls11;
  tls.max_version = TlsVersion::kTls12;
  const auto ctx = new_context();
  ASSERT_EQ(configure_tls_context(*ctx, tls), std::nullopt);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_1_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx.get()), TLS1_2_VERSION);
  const auto options = SSL_CTX_get_options(ctx.get());
  EXPECT_NE(options & SSL_OP_NO_COMPRESSION, 0U);
  EXPECT_NE(options & SSL_OP_NO_RENEGOTIATION, 0U);
  const auto* names = SSL_CTX_get_client_CA_list(ctx.get());  // no client CA: none offered
  EXPECT_EQ(names == nullptr ? 0 : sk_X509_NAME_num(names), 0);
}

TEST(TlsContext, ClientCertificatePolicies) {
  struct Case {
    ClientAuth auth;
    int mode;
    bool accepts_any;  // a callback that takes any chain
  };
  const Case cases[] = {
      {ClientAuth::kNoClientCert, SSL_VERIFY_NONE, false},
      {ClientAuth::kRequestClientCert, SSL_VERIFY_PEER, true},
      {ClientAuth::kRequireAnyClientCert, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, true},
      {ClientAuth::kVerifyClientCertIfGiven, SSL_VERIFY_PEER, false},
      {ClientAuth::kRequireAndVerifyClientCert, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
       false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(to_string(c.auth)));
    const auto ctx = new_context();
    ASSERT_EQ(configure_tls_context(*ctx, server(c.auth)), std::nullopt);
    EXPECT_EQ(SSL_CTX_get_verify_mode(ctx.get()), c.mode);
    EXPECT_EQ(SSL_CTX_get_verify_callback(ctx.get()) != nullptr, c.accepts_any);
    const auto* names = SSL_CTX_get_client_CA_list(ctx.get());
    EXPECT_EQ(names == nullptr ? 0 : sk_X509_NAME_num(names),
              c.auth == ClientAuth::kNoClientCert ? 0 : 1);
  }
}

TEST(TlsContext, FailuresNameTheFile) {
  auto tls = server();
  EXPECT_EQ(check_tls_files(tls), std::nullopt);

  tls.cert_file = pki().dir + "absent.pem";
  auto failure = check_tls_files(tls);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->file, TlsFile::kCert);
  EXPECT_EQ(failure->message,
            "cannot open '" + pki().dir + "absent.pem': No such file or directory");

  tls = server();
  tls.key_file = pki().unrelated_key;
  failure = check_tls_files(tls);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->file, TlsFile::kKey);
  EXPECT_EQ(failure->message, "private key '" + pki().unrelated_key +
                                  "' does not match the certificate '" + pki().server_cert + "'");

  tls = server(ClientAuth::kRequireAndVerifyClientCert);
  tls.client_ca_file = pki().server_key;  // not a certificate
  failure = check_tls_files(tls);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->file, TlsFile::kClientCa);

  // configure_tls_context gives the same message, without the file.
  const auto ctx = new_context();
  EXPECT_EQ(configure_tls_context(*ctx, tls), failure->message);
}

}  // namespace
}  // namespace ntpmon::exporter
