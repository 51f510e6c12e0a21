// The --web-config file (exporter-toolkit format). The format is documented in
// docs/web-security.md; this file checks it.
//
// yaml-cpp hands us an untyped tree and throws on syntax errors; the walk below checks it
// against the fixed schema, records every problem with its 1-based position and keeps going, so
// an operator fixes a file in one round. Keys exporter-toolkit knows but we do not implement
// (cipher_suites, client_allowed_sans, ...) are errors rather than silently ignored: a security
// setting that is quietly not applied is worse than a daemon that refuses to start.
#include "export/web_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

#include "config/yaml_check.hpp"
#include "config/yaml_document.hpp"
#include "export/ascii.hpp"

namespace ntpmon::exporter {
namespace {

using config::check_single_document;
using config::DocumentMessages;
using config::Field;
using config::find;
using config::join;
using config::printable;
using config::read_text_file;
using config::ScalarStyle;
using config::UnsupportedKeys;

// A web configuration is a few lines; the bound keeps a wrong path (a log file) cheap to reject.
constexpr std::size_t kMaxFileBytes = 256 * 1024;
constexpr std::array<std::string_view, 3> kTopKeys = {"tls_server_config", "http_server_config",
                                                      "basic_auth_users"};
constexpr std::array<std::string_view, 6> kTlsKeys = {
    "cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"};
// exporter-toolkit keys that are recognised but not implemented: an error says so explicitly.
constexpr std::string_view kUnsupportedReason =
    "is an exporter-toolkit setting that ntp-monitor does not implement; remove it (see "
    "docs/web-security.md)";
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

constexpr std::array<TlsVersion, 4> kVersions = {TlsVersion::kTls10, TlsVersion::kTls11,
                                                 TlsVersion::kTls12, TlsVersion::kTls13};

constexpr std::array<ClientAuth, 5> kClientAuths = {
    ClientAuth::kNoClientCert, ClientAuth::kRequestClientCert, ClientAuth::kRequireAnyClientCert,
    ClientAuth::kVerifyClientCertIfGiven, ClientAuth::kRequireAndVerifyClientCert};

class Checker : public config::YamlChecker {
 public:
  Checker(std::string_view file, const WebConfigParseOptions& options)
      : YamlChecker(file, ScalarStyle::kAsWritten), options_(options) {}

  WebConfig parse_document(const YAML::Node& root);

 private:
  std::optional<TlsServerConfig> tls_config(const Field& field);
  void http_config(const Field& field, WebConfig& out);
  void users(const Field& field, WebConfig& out);
  std::string resolve(const std::string& path) const;

  const WebConfigParseOptions& options_;
};

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
    wrong_value(field, "a mapping");
    return std::nullopt;
  }
  const auto fields = fields_of(field.value, "in tls_server_config", kTlsKeys,
                                UnsupportedKeys{kTlsUnsupportedKeys, kUnsupportedReason});
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

  const std::string versions =
      "one of " + join(kVersions, [](TlsVersion v) { return to_string(v); });
  const auto version_of = [&](std::string_view key, TlsVersion& out) {
    const Field* f = find(fields, key);
    if (f == nullptr) return;
    const auto value = scalar(*f, versions);
    if (!value) {
      valid = false;
      return;
    }
    for (const TlsVersion v : kVersions) {
      if (*value == to_string(v)) {
        out = v;
        return;
      }
    }
    wrong_value(*f, versions);
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
        wrong_value(*auth_field,
                    "one of " + join(kClientAuths, [](ClientAuth a) { return to_string(a); }));
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
    if (auto failure = check_tls_files(tls)) {
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
    wrong_value(field, "a mapping");
    return;
  }
  const auto fields = fields_of(field.value, "in http_server_config", kHttpKeys);
  if (const Field* f = find(fields, "http2")) {
    // Accepted for compatibility; the server speaks HTTP/1.1 only, whatever the value.
    const auto value = scalar(*f, "true or false");
    if (value && *value != "true" && *value != "false") {
      wrong_value(*f, "true or false");
    }
  }
  const Field* headers = find(fields, "headers");
  if (headers == nullptr || headers->value.IsNull()) return;
  if (!headers->value.IsMap()) {
    wrong_value(*headers, "a mapping of header name to value");
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
    wrong_value(field, "a mapping of user name to bcrypt hash");
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

}  // namespace

WebConfigResult parse_web_config(std::string_view yaml_text, std::string_view file,
                                 const WebConfigParseOptions& options) {
  Checker checker(file, options);
  const DocumentMessages messages{kMaxFileBytes,
                                  "the file is larger than " +
                                      std::to_string(kMaxFileBytes / 1024) +
                                      " KiB; this is not a web configuration file",
                                  "a second YAML document ('---') is not allowed"};
  return check_single_document(yaml_text, file, messages, checker);
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

}  // namespace ntpmon::exporter
