// The --web-config file (exporter-toolkit format) and the basic-auth check. The format is
// documented in docs/web-security.md; this file checks it.
//
// yaml-cpp hands us an untyped tree and throws on syntax errors; the walk below checks it
// against the fixed schema, records every problem with its 1-based position and keeps going, so
// an operator fixes a file in one round. Keys exporter-toolkit knows but we do not implement
// (cipher_suites, client_allowed_sans, ...) are errors rather than silently ignored: a security
// setting that is quietly not applied is worse than a daemon that refuses to start.
#include "export/web_config.hpp"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <span>
#include <sstream>

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

using config::DocumentMessages;
using config::parse_single_document;
using config::printable;
using config::read_text_file;

// A web configuration is a few lines; the bound keeps a wrong path (a log file) cheap to reject.
constexpr std::size_t kMaxFileBytes = 256 * 1024;
// Successful verifications remembered; at most one per user and password, so this only bounds
// memory if bcrypt's 72-byte truncation is abused with many long variants of a password.
constexpr std::size_t kMaxCacheEntries = 1024;

constexpr std::array<std::string_view, 3> kTopKeys = {"tls_server_config", "http_server_config",
                                                      "basic_auth_users"};
constexpr std::array<std::string_view, 6> kTlsKeys = {
    "cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"};
// exporter-toolkit keys that are recognised but not implemented: an error says so explicitly.
constexpr std::array<std::string_view, 7> kTlsUnsupportedKeys = {"cert",
                                                                 "key",
                                                                 "client_allowed_sans",
                                                                 "cipher_suites",
                                                                 "curve_preferences",
                                                                 "prefer_server_cipher_suites",
                                                                 "client_ca"};
constexpr std::array<std::string_view, 2> kHttpKeys = {"http2", "headers"};
// exporter-toolkit allows only these security headers (its list, same spelling).
constexpr std::array<std::string_view, 5> kHeaderNames = {
    "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "X-XSS-Protection",
    "Content-Security-Policy"};

struct VersionName {
  std::string_view name;
  TlsVersion version;
};
constexpr std::array<VersionName, 4> kVersions = {{{"TLS10", TlsVersion::kTls10},
                                                   {"TLS11", TlsVersion::kTls11},
                                                   {"TLS12", TlsVersion::kTls12},
                                                   {"TLS13", TlsVersion::kTls13}}};

constexpr std::array<ClientAuth, 5> kClientAuths = {
    ClientAuth::kNoClientCert, ClientAuth::kRequestClientCert, ClientAuth::kRequireAnyClientCert,
    ClientAuth::kVerifyClientCertIfGiven, ClientAuth::kRequireAndVerifyClientCert};

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    return lower(x) == lower(y);
  });
}

std::string_view to_string_view(std::string_view s) { return s; }
std::string_view to_string_view(const VersionName& v) { return v.name; }
std::string_view to_string_view(ClientAuth a) { return to_string(a); }

template <typename Words>
std::string join(const Words& words) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += ", ";
    out += to_string_view(word);
  }
  return out;
}

// File text made safe for a one-line message: control bytes escaped, long values shortened.

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      break;
  }
  return "'" + printable(node.Scalar()) + "'";
}

// "$2b$10$" + 53 characters of bcrypt's base64 alphabet (22 of salt, 31 of hash).
std::optional<std::string> bcrypt_format_error(std::string_view hash) {
  constexpr std::size_t kLength = 60;
  if (hash.size() < 4 || hash[0] != '$' || hash[1] != '2' ||
      (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') || hash[3] != '$') {
    return "is not a bcrypt hash (expected $2a$, $2b$ or $2y$, as produced by htpasswd -B)";
  }
  if (hash.size() != kLength) {
    return "is not a bcrypt hash: " + std::to_string(hash.size()) + " characters instead of " +
           std::to_string(kLength);
  }
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(hash[4]) || !digit(hash[5]) || hash[6] != '$') {
    return std::string("is not a bcrypt hash: no two-digit cost after the prefix");
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) {
    return "has bcrypt cost " + std::to_string(cost) + " (must be 04..31)";
  }
  for (std::size_t i = 7; i < hash.size(); ++i) {
    const char c = hash[i];
    const bool ok =
        c == '.' || c == '/' || digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!ok) return std::string("is not a bcrypt hash: unexpected character in salt or hash");
  }
  return std::nullopt;
}

// Which file a TLS set-up failure is about, so the parser can point at the right key.
enum class TlsFile : std::uint8_t { kNone, kCert, kKey, kClientCa };

struct TlsFailure {
  TlsFile file = TlsFile::kNone;
  std::string message;
};

std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
}

// fopen first: OpenSSL's message for a missing file is a generic "system lib".
std::optional<std::string> unreadable(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return "cannot open '" + path + "': " + std::strerror(errno);
  std::fclose(file);
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

std::optional<TlsFailure> apply_tls(SSL_CTX& ctx, const TlsServerConfig& tls) {
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

struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

const Field* find(const std::vector<Field>& fields, std::string_view key) {
  const auto it =
      std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
  return it == fields.end() ? nullptr : &*it;
}

class Checker {
 public:
  Checker(std::string_view file, const WebConfigParseOptions& options)
      : file_(file), options_(options) {}

  WebConfig parse_document(const YAML::Node& root);

  void error_at(const YAML::Mark& mark, std::string message) {
    // yaml-cpp marks are 0-based and -1 when unknown.
    const bool known = mark.line >= 0 && mark.column >= 0;
    errors_.push_back(WebConfigError{std::string(file_), known ? mark.line + 1 : 0,
                                     known ? mark.column + 1 : 0, std::move(message)});
  }
  void error(std::string message) { error_at(YAML::Mark::null_mark(), std::move(message)); }

  std::vector<WebConfigError> take_errors() {
    std::stable_sort(
        errors_.begin(), errors_.end(), [](const WebConfigError& a, const WebConfigError& b) {
          const auto key = [](const WebConfigError& e) {
            return std::pair{e.line == 0 ? std::numeric_limits<int>::max() : e.line, e.column};
          };
          return key(a) < key(b);
        });
    return std::move(errors_);
  }

 private:
  std::vector<Field> fields_of(const YAML::Node& map, std::string_view where,
                               std::span<const std::string_view> allowed,
                               std::span<const std::string_view> unsupported = {});
  // A scalar value; reports null and non-scalar values (with `what` naming the expectation).
  std::optional<std::string> scalar(const Field& field, std::string_view what);
  std::optional<TlsServerConfig> tls_config(const Field& field);
  void http_config(const Field& field, WebConfig& out);
  void users(const Field& field, WebConfig& out);
  std::string resolve(const std::string& path) const;

  std::string_view file_;
  const WebConfigParseOptions& options_;
  std::vector<WebConfigError> errors_;
};

std::vector<Field> Checker::fields_of(const YAML::Node& map, std::string_view where,
                                      std::span<const std::string_view> allowed,
                                      std::span<const std::string_view> unsupported) {
  std::vector<Field> fields;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key_node = it->first;
    if (!key_node.IsScalar()) {
      error_at(key_node.Mark(),
               "a key " + std::string(where) + " must be a plain name, got " + describe(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    if (std::find(unsupported.begin(), unsupported.end(), key) != unsupported.end()) {
      error_at(key_node.Mark(), "'" + key + "' " + std::string(where) +
                                    " is an exporter-toolkit setting that ntp-monitor does not "
                                    "implement; remove it (see docs/web-security.md)");
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      error_at(key_node.Mark(), "unknown key '" + printable(key) + "' " + std::string(where) +
                                    " (expected one of: " + join(allowed) + ")");
      continue;
    }
    if (const Field* first = find(fields, key)) {
      error_at(key_node.Mark(), "duplicate key '" + key + "' " + std::string(where) +
                                    " (first set at line " +
                                    std::to_string(first->key_node.Mark().line + 1) + ")");
      continue;
    }
    fields.push_back(Field{key, key_node, it->second});
  }
  return fields;
}

std::optional<std::string> Checker::scalar(const Field& field, std::string_view what) {
  if (field.value.IsNull()) {
    // A null value's mark points past the key, so report at the key.
    error_at(field.key_node.Mark(),
             "'" + field.key + "' has no value (expected " + std::string(what) + ")");
    return std::nullopt;
  }
  if (!field.value.IsScalar()) {
    error_at(field.value.Mark(),
             "'" + field.key + "' must be " + std::string(what) + ", got " + describe(field.value));
    return std::nullopt;
  }
  return field.value.Scalar();
}

std::string Checker::resolve(const std::string& path) const {
  if (path.empty() || path.front() == '/' || options_.base_dir.empty()) return path;
  std::string out = options_.base_dir;
  if (out.back() != '/') out += '/';
  return out + path;
}

std::optional<TlsServerConfig> Checker::tls_config(const Field& field) {
  // An empty tls_server_config means plain HTTP, as in exporter-toolkit.
  if (field.value.IsNull()) return std::nullopt;
  if (!field.value.IsMap()) {
    error_at(field.value.Mark(),
             "'tls_server_config' must be a mapping, got " + describe(field.value));
    return std::nullopt;
  }
  const auto fields = fields_of(field.value, "in tls_server_config", kTlsKeys, kTlsUnsupportedKeys);
  if (fields.empty() && field.value.size() == 0) return std::nullopt;

  TlsServerConfig tls;
  bool valid = true;
  const auto path_of = [&](std::string_view key, std::string& out) {
    const Field* f = find(fields, key);
    if (f == nullptr) return;
    auto value = scalar(*f, "a file name");
    if (!value || value->empty()) {
      if (value) error_at(f->value.Mark(), "'" + f->key + "' is empty (expected a file name)");
      valid = false;
      return;
    }
    out = resolve(*value);
  };
  path_of("cert_file", tls.cert_file);
  path_of("key_file", tls.key_file);
  path_of("client_ca_file", tls.client_ca_file);
  if (find(fields, "cert_file") == nullptr) {
    error_at(field.key_node.Mark(), "tls_server_config has no 'cert_file'");
    valid = false;
  }
  if (find(fields, "key_file") == nullptr) {
    error_at(field.key_node.Mark(), "tls_server_config has no 'key_file'");
    valid = false;
  }

  const auto version_of = [&](std::string_view key, TlsVersion& out) {
    const Field* f = find(fields, key);
    if (f == nullptr) return;
    const auto value = scalar(*f, "one of TLS10, TLS11, TLS12, TLS13");
    if (!value) {
      valid = false;
      return;
    }
    for (const auto& v : kVersions) {
      if (*value == v.name) {
        out = v.version;
        return;
      }
    }
    error_at(f->value.Mark(),
             "'" + f->key + "' must be one of " + join(kVersions) + ", got " + describe(f->value));
    valid = false;
  };
  version_of("min_version", tls.min_version);
  version_of("max_version", tls.max_version);
  if (tls.min_version > tls.max_version) {
    const Field* f = find(fields, "min_version");
    error_at(f != nullptr ? f->value.Mark() : field.key_node.Mark(),
             "min_version " + std::string(to_string(tls.min_version)) + " is above max_version " +
                 std::string(to_string(tls.max_version)));
    valid = false;
  }

  const Field* auth_field = find(fields, "client_auth_type");
  if (auth_field != nullptr) {
    if (const auto value = scalar(*auth_field, "a client_auth_type")) {
      const auto it = std::find_if(kClientAuths.begin(), kClientAuths.end(),
                                   [&](ClientAuth a) { return to_string(a) == *value; });
      if (it == kClientAuths.end()) {
        error_at(auth_field->value.Mark(), "'client_auth_type' must be one of " +
                                               join(kClientAuths) + ", got " +
                                               describe(auth_field->value));
        valid = false;
      } else {
        tls.client_auth = *it;
      }
    } else {
      valid = false;
    }
  }
  const Field* ca_field = find(fields, "client_ca_file");
  if (valid && ca_field != nullptr && tls.client_auth == ClientAuth::kNoClientCert) {
    // exporter-toolkit rejects this too: a CA without a policy suggests the operator expects
    // client certificates to be checked, and they would not be.
    error_at(ca_field->key_node.Mark(),
             "'client_ca_file' is set but client_auth_type is NoClientCert (set client_auth_type "
             "to RequireAndVerifyClientCert to check client certificates)");
    valid = false;
  }
  if (valid && ca_field == nullptr &&
      (tls.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
       tls.client_auth == ClientAuth::kRequireAndVerifyClientCert)) {
    // Stricter than exporter-toolkit (which would fall back to the system's roots): any public
    // CA's customer would then be a valid client.
    error_at(auth_field->value.Mark(), "client_auth_type " +
                                           std::string(to_string(tls.client_auth)) +
                                           " needs 'client_ca_file' (the CA that signs client "
                                           "certificates)");
    valid = false;
  }
  if (!valid) return std::nullopt;

  if (options_.check_files) {
    std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_server_method()),
                                                     &SSL_CTX_free);
    if (!ctx) {
      error_at(field.key_node.Mark(), "cannot create a TLS context: " + openssl_reason());
      return std::nullopt;
    }
    if (auto failure = apply_tls(*ctx, tls)) {
      const Field* at = failure->file == TlsFile::kCert       ? find(fields, "cert_file")
                        : failure->file == TlsFile::kKey      ? find(fields, "key_file")
                        : failure->file == TlsFile::kClientCa ? ca_field
                                                              : nullptr;
      error_at(at != nullptr ? at->value.Mark() : field.key_node.Mark(), failure->message);
      return std::nullopt;
    }
  }
  return tls;
}

void Checker::http_config(const Field& field, WebConfig& out) {
  if (field.value.IsNull()) return;
  if (!field.value.IsMap()) {
    error_at(field.value.Mark(),
             "'http_server_config' must be a mapping, got " + describe(field.value));
    return;
  }
  const auto fields = fields_of(field.value, "in http_server_config", kHttpKeys);
  if (const Field* f = find(fields, "http2")) {
    // Accepted for compatibility; the server speaks HTTP/1.1 only, whatever the value.
    const auto value = scalar(*f, "true or false");
    if (value && *value != "true" && *value != "false") {
      error_at(f->value.Mark(), "'http2' must be true or false, got " + describe(f->value));
    }
  }
  const Field* headers = find(fields, "headers");
  if (headers == nullptr || headers->value.IsNull()) return;
  if (!headers->value.IsMap()) {
    error_at(headers->value.Mark(), "'headers' must be a mapping of header name to value, got " +
                                        describe(headers->value));
    return;
  }
  for (auto it = headers->value.begin(); it != headers->value.end(); ++it) {
    const YAML::Node name_node = it->first;
    const YAML::Node value_node = it->second;
    if (!name_node.IsScalar()) {
      error_at(name_node.Mark(), "a header name must be a string, got " + describe(name_node));
      continue;
    }
    const std::string& name = name_node.Scalar();
    const auto known = std::find_if(kHeaderNames.begin(), kHeaderNames.end(),
                                    [&](std::string_view h) { return iequals(h, name); });
    if (known == kHeaderNames.end()) {
      error_at(name_node.Mark(), "header '" + printable(name) +
                                     "' cannot be set (allowed: " + join(kHeaderNames) + ")");
      continue;
    }
    const bool repeated = std::any_of(out.headers.begin(), out.headers.end(),
                                      [&](const auto& h) { return h.first == *known; });
    if (repeated) {
      error_at(name_node.Mark(), "duplicate header '" + std::string(*known) + "'");
      continue;
    }
    if (!value_node.IsScalar() || value_node.Scalar().empty()) {
      error_at(value_node.IsNull() ? name_node.Mark() : value_node.Mark(),
               "header '" + std::string(*known) + "' needs a non-empty string value");
      continue;
    }
    const std::string& value = value_node.Scalar();
    if (value.find_first_of("\r\n") != std::string::npos) {
      error_at(value_node.Mark(), "header '" + std::string(*known) + "' contains a line break");
      continue;
    }
    // exporter-toolkit's value checks for the two headers with a closed set of values.
    if (*known == "X-Content-Type-Options" && !iequals(value, "nosniff")) {
      error_at(value_node.Mark(),
               "X-Content-Type-Options must be nosniff, got " + describe(value_node));
      continue;
    }
    if (*known == "X-Frame-Options" && !iequals(value, "deny") && !iequals(value, "sameorigin")) {
      error_at(value_node.Mark(),
               "X-Frame-Options must be deny or sameorigin, got " + describe(value_node));
      continue;
    }
    out.headers.emplace_back(std::string(*known), value);
  }
}

void Checker::users(const Field& field, WebConfig& out) {
  if (field.value.IsNull()) return;
  if (!field.value.IsMap()) {
    error_at(field.value.Mark(),
             "'basic_auth_users' must be a mapping of user name to bcrypt "
             "hash, got " +
                 describe(field.value));
    return;
  }
  for (auto it = field.value.begin(); it != field.value.end(); ++it) {
    const YAML::Node name_node = it->first;
    const YAML::Node hash_node = it->second;
    if (!name_node.IsScalar() || name_node.Scalar().empty()) {
      error_at(name_node.Mark(),
               "a user name must be a non-empty string, got " + describe(name_node));
      continue;
    }
    const std::string& name = name_node.Scalar();
    // RFC 7617 section 2: the user-id cannot contain a colon (it separates the password).
    if (name.find(':') != std::string::npos) {
      error_at(name_node.Mark(), "user name '" + printable(name) + "' contains ':'");
      continue;
    }
    if (std::any_of(name.begin(), name.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      error_at(name_node.Mark(), "user name '" + printable(name) + "' contains control bytes");
      continue;
    }
    const bool repeated = std::any_of(out.basic_auth_users.begin(), out.basic_auth_users.end(),
                                      [&](const BasicAuthUser& u) { return u.name == name; });
    if (repeated) {
      error_at(name_node.Mark(), "duplicate user '" + printable(name) + "'");
      continue;
    }
    if (hash_node.IsNull()) {
      error_at(name_node.Mark(), "user '" + printable(name) + "' has no password hash");
      continue;
    }
    if (!hash_node.IsScalar()) {
      error_at(hash_node.Mark(), "the password hash of user '" + printable(name) +
                                     "' must be a string, got " + describe(hash_node));
      continue;
    }
    if (auto why = bcrypt_format_error(hash_node.Scalar())) {
      error_at(hash_node.Mark(), "the password hash of user '" + printable(name) + "' " + *why);
      continue;
    }
    out.basic_auth_users.push_back(BasicAuthUser{name, hash_node.Scalar()});
  }
}

WebConfig Checker::parse_document(const YAML::Node& root) {
  WebConfig out;
  if (root.IsNull()) return out;  // an empty file: nothing enabled
  if (!root.IsMap()) {
    error_at(root.Mark(),
             "the web configuration must be a mapping with tls_server_config, "
             "http_server_config and/or basic_auth_users, got " +
                 describe(root));
    return out;
  }
  const auto fields = fields_of(root, "at the top level", kTopKeys);
  if (const Field* f = find(fields, "tls_server_config")) out.tls = tls_config(*f);
  if (const Field* f = find(fields, "http_server_config")) http_config(*f, out);
  if (const Field* f = find(fields, "basic_auth_users")) users(*f, out);
  return out;
}

std::string sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &length, EVP_sha256(), nullptr) != 1) {
    return {};  // only on allocation failure; the caller then skips the cache
  }
  return std::string(reinterpret_cast<const char*>(md.data()), length);
}

}  // namespace

WebConfigResult parse_web_config(std::string_view yaml_text, std::string_view file,
                                 const WebConfigParseOptions& options) {
  Checker checker(file, options);
  const DocumentMessages messages{kMaxFileBytes,
                                  "the file is larger than " +
                                      std::to_string(kMaxFileBytes / 1024) +
                                      " KiB; this is not a web configuration file",
                                  "a second YAML document ('---') is not allowed"};
  auto config = parse_single_document(yaml_text, messages, checker, [&](const YAML::Node& root) {
    return checker.parse_document(root);
  });
  auto errors = checker.take_errors();
  if (!config || !errors.empty()) return Err{std::move(errors)};
  config->source = std::string(file);
  return std::move(*config);
}

WebConfigResult load_web_config_file(const std::string& path) {
  auto text = read_text_file(path, kMaxFileBytes,
                             "the file is larger than " + std::to_string(kMaxFileBytes / 1024) +
                                 " KiB; this is not a web configuration file");
  if (!text) return Err{std::vector<WebConfigError>{WebConfigError{path, 0, 0, text.error()}}};
  WebConfigParseOptions options;
  const auto slash = path.rfind('/');
  options.base_dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  options.check_files = true;
  return parse_web_config(*text, path, options);
}

std::optional<std::string> configure_tls_context(ssl_ctx_st& ctx, const TlsServerConfig& tls) {
  if (auto failure = apply_tls(ctx, tls)) return std::move(failure->message);
  return std::nullopt;
}

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=' ? (text[i + 2] == '=' ? 2 : 1) : 0) : 0;
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      int v = 0;
      if (j >= 4 - static_cast<std::size_t>(pad)) {
        if (c != '=') return std::nullopt;
      } else {
        v = value(c);
        if (v < 0) return std::nullopt;
      }
      group = (group << 6) | static_cast<std::uint32_t>(v);
    }
    out += static_cast<char>((group >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((group >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(group & 0xff);
  }
  return out;
}

struct BasicAuthVerifier::CryptScratch {
  crypt_data data{};
};

BasicAuthVerifier::BasicAuthVerifier(std::vector<BasicAuthUser> users)
    : users_(std::move(users)), crypt_data_(std::make_unique<CryptScratch>()) {}

BasicAuthVerifier::~BasicAuthVerifier() = default;

bool BasicAuthVerifier::bcrypt_matches(std::string_view password, const std::string& hash) {
  const std::string phrase(password);  // NUL-terminated for libcrypt
  const std::lock_guard lock(bcrypt_mutex_);
  bcrypt_runs_.fetch_add(1, std::memory_order_relaxed);
  const char* out =
      crypt_rn(phrase.c_str(), hash.c_str(), &crypt_data_->data, sizeof crypt_data_->data);
  if (out == nullptr) return false;
  const std::size_t length = std::strlen(out);
  // The length is not secret (every valid output is 60 characters); the bytes are compared in
  // constant time so the answer time does not reveal how much of the hash was right.
  return length == hash.size() && CRYPTO_memcmp(out, hash.data(), length) == 0;
}

bool BasicAuthVerifier::verify(std::string_view user, std::string_view password) {
  if (users_.empty()) return false;
  // libcrypt stops at a NUL byte: "pw\0anything" must not pass for "pw".
  if (password.find('\0') != std::string_view::npos) return false;
  const auto it = std::find_if(users_.begin(), users_.end(),
                               [&](const BasicAuthUser& u) { return u.name == user; });
  const bool known = it != users_.end();
  std::string key;
  if (known) {
    const std::string digest = sha256(password);
    if (!digest.empty()) {
      key.reserve(user.size() + 1 + digest.size());
      key.append(user);
      key += '\0';
      key += digest;
      const std::lock_guard lock(cache_mutex_);
      if (cache_.count(key) != 0) return true;
    }
  }
  // An unknown user is checked against a real hash too (and refused whatever the result), so
  // it takes as long as a wrong password for a known user.
  const bool matches =
      bcrypt_matches(password, known ? it->bcrypt_hash : users_.front().bcrypt_hash);
  if (!known || !matches) return false;
  if (!key.empty()) {
    const std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.insert(std::move(key));
  }
  return true;
}

bool BasicAuthVerifier::check_authorization(std::string_view header_value) {
  constexpr std::string_view kScheme = "basic";
  if (header_value.size() <= kScheme.size() ||
      !iequals(header_value.substr(0, kScheme.size()), kScheme) ||
      header_value[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view token = header_value.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const auto decoded = decode_base64(token);
  if (!decoded) return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  return verify(std::string_view(*decoded).substr(0, colon),
                std::string_view(*decoded).substr(colon + 1));
}

}  // namespace ntpmon::exporter
