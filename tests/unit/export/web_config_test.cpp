// The --web-config parser (every error with its position) and the bcrypt check.
//
// The bcrypt hashes below were produced with Python's crypt module (htpasswd is not installed
// on the development machine):
//   python3 -c "import crypt; print(crypt.crypt('pw', crypt.mksalt(crypt.METHOD_BLOWFISH,
//               rounds=16)))"
// (rounds=16 is cost 04, so the tests stay fast), and the $2a$ / $2y$ variants by passing the
// same salt with that prefix to crypt.crypt. The cost-10 hash used mksalt's rounds=1024.
#include "export/web_config.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test_pki.hpp"

namespace ntpmon::exporter {
namespace {

constexpr const char* kPwHash2b = "$2b$04$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412S";
constexpr const char* kPwHash2a = "$2a$04$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412S";
constexpr const char* kPwHash2y = "$2y$04$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412S";
constexpr const char* kHorseHash =
    "$2b$04$V54HDhEJKRDPsZqb3/lPs.bPTIxUqJQkV3imu4Fm/Ilq6DF.cKDfC";  // "correct horse"
constexpr const char* kPwHashCost10 =
    "$2b$10$cRsIZTDKTq/mg45x1kymQOixea.ZU5mU/LSbA9eLmybm1Zw5tQql2";

// The one error of a text that must fail, as "line:col: message".
std::string only_error(const std::string& yaml, const WebConfigParseOptions& options = {}) {
  const auto result = parse_web_config(yaml, "web.yml", options);
  if (result.ok()) return "parsed without error";
  const auto errors = result.error();
  if (errors.size() != 1) {
    std::string all = std::to_string(errors.size()) + " errors:";
    for (const auto& e : errors) all += "\n  " + e.to_string();
    return all;
  }
  return std::to_string(errors[0].line) + ":" + std::to_string(errors[0].column) + ": " +
         errors[0].message;
}

TEST(WebConfigParse, FullFile) {
  const std::string yaml = std::string(R"(tls_server_config:
  cert_file: server.pem
  key_file: /etc/ntp-monitor/server.key
  client_ca_file: ca.pem
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS13
  max_version: TLS13
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    strict-transport-security: max-age=31536000
basic_auth_users:
  alice: )") + kPwHash2b + "\n  bob: '" +
                           kHorseHash + "'\n";
  WebConfigParseOptions options;
  options.base_dir = "/srv/web";
  const auto result = parse_web_config(yaml, "web.yml", options);
  ASSERT_TRUE(result.ok()) << result.error()[0].to_string();
  const WebConfig& web = *result;
  ASSERT_TRUE(web.tls.has_value());
  EXPECT_EQ(web.tls->cert_file, "/srv/web/server.pem");
  EXPECT_EQ(web.tls->key_file, "/etc/ntp-monitor/server.key");
  EXPECT_EQ(web.tls->client_ca_file, "/srv/web/ca.pem");
  EXPECT_EQ(web.tls->client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(web.tls->min_version, TlsVersion::kTls13);
  EXPECT_EQ(web.tls->max_version, TlsVersion::kTls13);
  ASSERT_EQ(web.headers.size(), 2u);
  EXPECT_EQ(web.headers[0], (std::pair<std::string, std::string>{"X-Frame-Options", "deny"}));
  // Names are written in their canonical spelling whatever the file's case.
  EXPECT_EQ(web.headers[1].first, "Strict-Transport-Security");
  EXPECT_EQ(web.headers[1].second, "max-age=31536000");
  ASSERT_EQ(web.basic_auth_users.size(), 2u);
  EXPECT_EQ(web.basic_auth_users[0].name, "alice");
  EXPECT_EQ(web.basic_auth_users[0].bcrypt_hash, kPwHash2b);
  EXPECT_EQ(web.basic_auth_users[1].name, "bob");
  EXPECT_TRUE(web.auth_enabled());
  EXPECT_EQ(web.source, "web.yml");
}

TEST(WebConfigParse, DefaultsOfTls) {
  const auto result = parse_web_config("tls_server_config: {cert_file: a.pem, key_file: a.key}\n");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->tls->cert_file, "a.pem");  // no base_dir: as written
  EXPECT_EQ(result->tls->client_auth, ClientAuth::kNoClientCert);
  EXPECT_EQ(result->tls->min_version, TlsVersion::kTls12);
  EXPECT_EQ(result->tls->max_version, TlsVersion::kTls13);
  EXPECT_TRUE(result->tls->client_ca_file.empty());
  EXPECT_FALSE(result->auth_enabled());
}

TEST(WebConfigParse, EmptyFileAndEmptySectionsEnableNothing) {
  for (const char* yaml : {"", "# nothing\n", "tls_server_config:\n", "tls_server_config: {}\n",
                           "basic_auth_users: {}\nhttp_server_config:\n"}) {
    const auto result = parse_web_config(yaml);
    ASSERT_TRUE(result.ok()) << yaml;
    EXPECT_FALSE(result->tls.has_value()) << yaml;
    EXPECT_FALSE(result->auth_enabled()) << yaml;
    EXPECT_TRUE(result->headers.empty()) << yaml;
  }
}

TEST(WebConfigParse, AllThreeBcryptPrefixesAreAccepted) {
  for (const char* hash : {kPwHash2a, kPwHash2b, kPwHash2y}) {
    const auto result = parse_web_config(std::string("basic_auth_users:\n  u: ") + hash + "\n");
    ASSERT_TRUE(result.ok()) << hash;
    EXPECT_EQ(result->basic_auth_users[0].bcrypt_hash, hash);
  }
}

TEST(WebConfigParse, EachErrorHasItsPosition) {
  EXPECT_EQ(only_error("tls_server_config: {cert_file: a, key_file: b}\nbasic_auth: {}\n"),
            "2:1: unknown key 'basic_auth' at the top level (expected one of: "
            "tls_server_config, http_server_config, basic_auth_users)");
  EXPECT_EQ(only_error("- a\n- b\n"),
            "1:1: the web configuration must be a mapping with tls_server_config, "
            "http_server_config and/or basic_auth_users, got a list");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: a.pem\n"),
            "1:1: tls_server_config has no 'key_file'");
  EXPECT_EQ(only_error("tls_server_config:\n  key_file: a.key\n"),
            "1:1: tls_server_config has no 'cert_file'");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: ''\n  key_file: k\n"),
            "2:14: 'cert_file' is empty (expected a file name)");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: [a]\n  key_file: k\n"),
            "2:14: 'cert_file' must be a file name, got a list");
  EXPECT_EQ(only_error("tls_server_config: {cert_file: c, key_file: k, min_version: TLS1.3}\n"),
            "1:61: 'min_version' must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS1.3'");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
                       "  min_version: TLS13\n  max_version: TLS12\n"),
            "4:16: min_version TLS13 is above max_version TLS12");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
                       "  client_auth_type: RequireClientCert\n"),
            "4:21: 'client_auth_type' must be one of NoClientCert, RequestClientCert, "
            "RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert, got "
            "'RequireClientCert'");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
                       "  client_ca_file: ca.pem\n"),
            "4:3: 'client_ca_file' is set but client_auth_type is NoClientCert (set "
            "client_auth_type to RequireAndVerifyClientCert to check client certificates)");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
                       "  client_auth_type: RequireAndVerifyClientCert\n"),
            "4:21: client_auth_type RequireAndVerifyClientCert needs 'client_ca_file' (the CA "
            "that signs client certificates)");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
                       "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
            "4:3: 'cipher_suites' in tls_server_config is an exporter-toolkit setting that "
            "ntp-monitor does not implement; remove it (see docs/web-security.md)");
  EXPECT_EQ(only_error("tls_server_config:\n  cert_file: c\n  cert_file: d\n  key_file: k\n"),
            "3:3: duplicate key 'cert_file' in tls_server_config (first set at line 2)");
  EXPECT_EQ(only_error("tls_server_config: yes\n"),
            "1:20: 'tls_server_config' must be a mapping, got 'yes'");
}

TEST(WebConfigParse, UserErrors) {
  EXPECT_EQ(only_error("basic_auth_users:\n  alice: secret\n"),
            "2:10: the password hash of user 'alice' is not a bcrypt hash (expected $2a$, $2b$ "
            "or $2y$, as produced by htpasswd -B)");
  EXPECT_EQ(only_error("basic_auth_users:\n  alice: $2b$04$short\n"),
            "2:10: the password hash of user 'alice' is not a bcrypt hash: 12 characters "
            "instead of 60");
  EXPECT_EQ(only_error("basic_auth_users:\n  alice: "
                       "$2b$03$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412S\n"),
            "2:10: the password hash of user 'alice' has bcrypt cost 3 (must be 04..31)");
  EXPECT_EQ(only_error("basic_auth_users:\n  alice: "
                       "$2b$04$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412!\n"),
            "2:10: the password hash of user 'alice' is not a bcrypt hash: unexpected "
            "character in salt or hash");
  // $2x$ is the "buggy 8-bit" variant: refused rather than reproducing the bug.
  EXPECT_EQ(only_error("basic_auth_users:\n  alice: "
                       "$2x$04$5Sn8kVyGsdX7ZjoNRfeYOeuh//wEMxIjgPpyJ9KYkajwdN1Z2412S\n"),
            "2:10: the password hash of user 'alice' is not a bcrypt hash (expected $2a$, $2b$ "
            "or $2y$, as produced by htpasswd -B)");
  EXPECT_EQ(only_error(std::string("basic_auth_users:\n  'a:b': ") + kPwHash2b + "\n"),
            "2:3: user name 'a:b' contains ':'");
  EXPECT_EQ(only_error(std::string("basic_auth_users:\n  al: ") + kPwHash2b +
                       "\n  al: " + kPwHash2b + "\n"),
            "3:3: duplicate user 'al'");
  EXPECT_EQ(only_error("basic_auth_users:\n  alice:\n"), "2:3: user 'alice' has no password hash");
  EXPECT_EQ(only_error("basic_auth_users:\n  alice: [x]\n"),
            "2:10: the password hash of user 'alice' must be a string, got a list");
  EXPECT_EQ(only_error("basic_auth_users: [alice]\n"),
            "1:19: 'basic_auth_users' must be a mapping of user name to bcrypt hash, got a list");
}

TEST(WebConfigParse, HttpServerConfigErrors) {
  EXPECT_EQ(only_error("http_server_config:\n  headers:\n    Server: ntp\n"),
            "3:5: header 'Server' cannot be set (allowed: Strict-Transport-Security, "
            "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, "
            "Content-Security-Policy)");
  EXPECT_EQ(only_error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
            "3:22: X-Frame-Options must be deny or sameorigin, got 'allow'");
  EXPECT_EQ(only_error("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n"),
            "3:29: X-Content-Type-Options must be nosniff, got 'sniff'");
  EXPECT_EQ(only_error("http_server_config:\n  http2: maybe\n"),
            "2:10: 'http2' must be true or false, got 'maybe'");
  EXPECT_EQ(only_error("http_server_config:\n  tls: true\n"),
            "2:3: unknown key 'tls' in http_server_config (expected one of: http2, headers)");
}

TEST(WebConfigParse, SyntaxErrorsAndEveryErrorOfAFile) {
  EXPECT_EQ(only_error("tls_server_config: {cert_file: a\n"),
            "2:1: YAML syntax error: end of map flow not found");
  // Collected in file order, not stopping at the first.
  const auto result = parse_web_config(
      "basic_auth_users:\n  a: x\nfoo: 1\ntls_server_config: {cert_file: c}\n", "w.yml");
  ASSERT_FALSE(result.ok());
  const auto errors = result.error();
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].to_string().substr(0, 12), "w.yml:2:6: t");
  EXPECT_EQ(errors[1].to_string().substr(0, 29), "w.yml:3:1: unknown key 'foo' ");
  EXPECT_EQ(errors[2].to_string(), "w.yml:4:1: tls_server_config has no 'key_file'");
  EXPECT_EQ(only_error("basic_auth_users: {}\n---\ntls_server_config: {}\n"),
            "2:1: a second YAML document ('---') is not allowed");
  EXPECT_EQ(only_error(","), "1:1: YAML syntax error: unexpected ','");
  // Hostile input never throws.
  for (const char* junk : {",", "\"a\",", "[[[[[[", "{a: *b}", "\x01\x02", "&a [*a]"}) {
    EXPECT_FALSE(parse_web_config(junk).ok()) << junk;
  }
}

class WebConfigFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new testpki::TestPki(testpki::make_test_pki()); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  static std::string write(const std::string& name, const std::string& text) {
    const std::string path = pki_->dir + name;
    std::ofstream(path) << text;
    return path;
  }
  static testpki::TestPki* pki_;
};
testpki::TestPki* WebConfigFiles::pki_ = nullptr;

TEST_F(WebConfigFiles, LoadResolvesRelativePathsAndChecksTheFiles) {
  const auto path = write("web.yml",
                          "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
                          "  client_ca_file: ca.pem\n"
                          "  client_auth_type: RequireAndVerifyClientCert\n");
  const auto result = load_web_config_file(path);
  ASSERT_TRUE(result.ok()) << result.error()[0].to_string();
  EXPECT_EQ(result->tls->cert_file, pki_->server_cert);
  EXPECT_EQ(result->tls->client_ca_file, pki_->ca_cert);
  EXPECT_EQ(result->source, path);
}

TEST_F(WebConfigFiles, FileProblemsPointAtTheKeyNamingTheFile) {
  const auto path =
      write("missing.yml", "tls_server_config:\n  cert_file: nope.pem\n  key_file: server.key\n");
  auto result = load_web_config_file(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].to_string(),
            path + ":2:14: cannot open '" + pki_->dir + "nope.pem': No such file or directory");

  // A key that is not the certificate's.
  const auto mismatch = write(
      "mismatch.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: unrelated.key\n");
  result = load_web_config_file(mismatch);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].to_string(), mismatch + ":3:13: private key '" + pki_->unrelated_key +
                                               "' does not match the certificate '" +
                                               pki_->server_cert + "'");

  // A key file given as the certificate: not a certificate.
  const auto swapped =
      write("swapped.yml", "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n");
  result = load_web_config_file(swapped);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].line, 2);
  EXPECT_EQ(result.error()[0].column, 14);
  EXPECT_NE(result.error()[0].message.find("cannot load certificate '" + pki_->server_key),
            std::string::npos)
      << result.error()[0].message;

  const auto bad_ca = write("bad_ca.yml",
                            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
                            "  client_auth_type: VerifyClientCertIfGiven\n"
                            "  client_ca_file: server.key\n");
  result = load_web_config_file(bad_ca);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].line, 5);
  EXPECT_EQ(result.error()[0].column, 19);
}

TEST_F(WebConfigFiles, MissingOrOversizedWebConfig) {
  auto result = load_web_config_file(pki_->dir + "absent.yml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].to_string(),
            pki_->dir + "absent.yml: cannot open: No such file or directory");
  result = load_web_config_file(pki_->dir);  // a directory
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].to_string(), pki_->dir + ": is a directory, not a regular file");
  const auto big = write("big.yml", "# " + std::string(300 * 1024, 'x') + "\n");
  result = load_web_config_file(big);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error()[0].message,
            "the file is larger than 256 KiB; this is not a web configuration file");
}

TEST(BasicAuthVerifier, BcryptHashesOfEveryPrefixVerify) {
  for (const char* hash : {kPwHash2a, kPwHash2b, kPwHash2y, kPwHashCost10}) {
    BasicAuthVerifier verifier(std::vector<BasicAuthUser>{{"alice", hash}});
    EXPECT_TRUE(verifier.verify("alice", "pw")) << hash;
    EXPECT_FALSE(verifier.verify("alice", "pW")) << hash;
    EXPECT_FALSE(verifier.verify("alice", "")) << hash;
    EXPECT_FALSE(verifier.verify("Alice", "pw")) << hash;  // user names are case-sensitive
  }
}

TEST(BasicAuthVerifier, UnknownUserCostsABcryptAndIsRefusedEvenWithAnotherUsersPassword) {
  BasicAuthVerifier verifier(std::vector<BasicAuthUser>{{"alice", kPwHash2b}, {"bob", kHorseHash}});
  EXPECT_FALSE(verifier.verify("mallory", "pw"));  // alice's password, wrong user
  EXPECT_EQ(verifier.bcrypt_runs(), 1u);
  EXPECT_FALSE(verifier.verify("mallory", "pw"));  // and never cached
  EXPECT_EQ(verifier.bcrypt_runs(), 2u);
  EXPECT_FALSE(verifier.verify("alice", "correct horse"));  // bob's password
  EXPECT_TRUE(verifier.verify("bob", "correct horse"));
}

TEST(BasicAuthVerifier, SuccessesAreCachedFailuresAreNot) {
  BasicAuthVerifier verifier(std::vector<BasicAuthUser>{{"alice", kPwHash2b}});
  EXPECT_TRUE(verifier.verify("alice", "pw"));
  EXPECT_EQ(verifier.bcrypt_runs(), 1u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(verifier.verify("alice", "pw"));
  EXPECT_EQ(verifier.bcrypt_runs(), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(verifier.verify("alice", "px"));
  EXPECT_EQ(verifier.bcrypt_runs(), 4u);
}

TEST(BasicAuthVerifier, NulInPasswordNeverMatchesItsPrefix) {
  BasicAuthVerifier verifier(std::vector<BasicAuthUser>{{"alice", kPwHash2b}});
  EXPECT_FALSE(verifier.verify("alice", std::string("pw\0x", 4)));
  EXPECT_FALSE(verifier.check_authorization("Basic YWxpY2U6cHcAeA=="));  // "alice:pw\0x"
  EXPECT_TRUE(verifier.verify("alice", "pw"));
}

TEST(BasicAuthVerifier, AuthorizationHeaderForms) {
  BasicAuthVerifier verifier(std::vector<BasicAuthUser>{{"alice", kPwHash2b}, {"bob", kHorseHash}});
  EXPECT_TRUE(verifier.check_authorization("Basic YWxpY2U6cHc="));
  EXPECT_TRUE(verifier.check_authorization("basic   YWxpY2U6cHc=  "));  // scheme is case-free
  EXPECT_TRUE(verifier.check_authorization("Basic Ym9iOmNvcnJlY3QgaG9yc2U="));
  EXPECT_FALSE(verifier.check_authorization(""));
  EXPECT_FALSE(verifier.check_authorization("Basic"));
  EXPECT_FALSE(verifier.check_authorization("Basic "));
  EXPECT_FALSE(verifier.check_authorization("BasicYWxpY2U6cHc="));
  EXPECT_FALSE(verifier.check_authorization("Bearer YWxpY2U6cHc="));
  EXPECT_FALSE(verifier.check_authorization("Basic YWxpY2U="));          // "alice", no colon
  EXPECT_FALSE(verifier.check_authorization("Basic YWxpY2U6d3Jvbmc="));  // wrong password
  EXPECT_FALSE(verifier.check_authorization("Basic YWxpY2U6cHc6eA=="));  // "pw:x"
  EXPECT_FALSE(verifier.check_authorization("Basic OnB3"));              // empty user
  EXPECT_FALSE(verifier.check_authorization("Basic %%%%"));
}

TEST(BasicAuthVerifier, NoUsersRefusesEverything) {
  BasicAuthVerifier verifier(std::vector<BasicAuthUser>{});
  EXPECT_FALSE(verifier.enabled());
  EXPECT_FALSE(verifier.verify("", ""));
  EXPECT_EQ(verifier.bcrypt_runs(), 0u);
}

TEST(BasicAuthVerifier, ConcurrentChecksAgree) {
  BasicAuthVerifier verifier(std::vector<BasicAuthUser>{{"alice", kPwHash2b}});
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (verifier.verify("alice", (i + t) % 2 == 0 ? "pw" : "nope")) {
          right.fetch_add(1);
        } else {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(right.load(), 40);
  EXPECT_EQ(wrong.load(), 40);
}

}  // namespace
}  // namespace ntpmon::exporter
