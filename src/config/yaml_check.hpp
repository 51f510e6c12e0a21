// The checks every strict YAML reader of the project makes on the tree yaml-cpp hands it (the
// monitoring config and the web configuration): keys of a mapping, values present and scalar,
// "expected X, got Y" wording, and errors collected with their file:line:col.
//
// Responsible for: the key checks of a mapping (a plain name, known, not repeated, or known but
// deliberately unsupported), the messages these checks produce (their text is compared by tests
// and quoted in the docs, so it must not drift between readers), collecting errors instead of
// throwing and sorting them into file order. Not responsible for: any schema (callers list their
// keys and check their values), reading files or loading the document (yaml_document.hpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_document.hpp"
#include "proto/result.hpp"

namespace ntpmon::config {

// One key of a mapping that passed the key checks.
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// The field named `key`, or nullptr.
const Field* find(const std::vector<Field>& fields, std::string_view key);

// yaml-cpp marks a quoted (or block) scalar with the non-specific tag "!" and a plain one with
// "?"; only plain scalars are numbers in YAML, so `port: "123"` is a string.
bool is_plain(const YAML::Node& node);

// How describe() shows a scalar.
enum class ScalarStyle : std::uint8_t {
  kAsWritten,          // 'text', quoted or not
  kMarkQuotedStrings,  // 'text' for a plain scalar, the quoted string "text" for a quoted one
};

// What the file actually holds, for "expected X, got Y" messages: nothing, a list, a mapping,
// or the scalar's text made printable (printable() in yaml_document.hpp).
std::string describe(const YAML::Node& node, ScalarStyle style);

// "a, b, c": each word as name(word) gives it (a string_view or something convertible).
template <typename Words, typename Name = std::identity>
std::string join(const Words& words, Name name = {}) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += ", ";
    out += std::string_view(std::invoke(name, word));
  }
  return out;
}

// Keys a reader recognises but refuses, and the reason given after "'key' <where> ".
struct UnsupportedKeys {
  std::span<const std::string_view> keys;
  std::string_view reason;
};

// The common part of a reader's checker: errors with positions in `file`, and the checks of
// keys and values every reader makes. Readers derive from it and add their schema.
class YamlChecker {
 public:
  YamlChecker(std::string_view file, ScalarStyle style) : file_(file), style_(style) {}

  // yaml-cpp's marks are 0-based and -1 when unknown (a null mark): the error then has no
  // position.
  void error_at(const YAML::Mark& mark, std::string message);
  void error(std::string message) { error_at(YAML::Mark::null_mark(), std::move(message)); }

  // The errors in file order; errors without a position come last (stable otherwise). Errors
  // in `later_files` follow the file's own, file by file in that order. At most
  // kMaxReportedErrors of them, then one more entry "and N more errors" (ConfigError::more)
  // when there were more.
  std::vector<ConfigError> take_errors(std::span<const std::string> later_files = {});

 protected:
  [[nodiscard]] std::string describe(const YAML::Node& node) const {
    return config::describe(node, style_);
  }
  // Validates the keys of a mapping (a plain name, not unsupported, known, not repeated) and
  // returns the usable ones; `where` says which mapping ("in poll").
  std::vector<Field> fields_of(const YAML::Node& map, std::string_view where,
                               std::span<const std::string_view> allowed,
                               UnsupportedKeys unsupported = {});
  // Reports a key without a value and returns false; `expected` completes "expected ...".
  bool has_value(const Field& field, std::string_view expected);
  // Reports "'key' must be <expected>, got <what the file holds>" at the value.
  void wrong_value(const Field& field, std::string_view expected);
  // A scalar value; reports a missing or non-scalar value (`expected`: "a string").
  std::optional<std::string> scalar(const Field& field, std::string_view expected);

  // Keeps the memory of the errors bounded whatever the file holds (a megabyte with an error on
  // every line): once errors_ holds more than twice kMaxReportedErrors, only the ones that come
  // first in file order are kept and the rest are counted. Called by error_at; a reader that
  // appends to errors_ itself calls it afterwards.
  void bound_errors();
  // Every error found so far, also those bound_errors dropped: compare two values of it to tell
  // whether a part of the file had errors (errors_.size() may shrink).
  [[nodiscard]] std::size_t errors_found() const { return errors_.size() + omitted_; }

  std::string_view file_;
  std::vector<ConfigError> errors_;
  // The files whose errors follow the file's own, in their order, as far as they are known
  // (bound_errors orders by them; a reader adds each file before it reports errors in it).
  std::vector<std::string> later_files_;

 private:
  // Sorts errors_ into file order (stable) and keeps the first kMaxReportedErrors; counts the
  // others in omitted_.
  void keep_first(std::span<const std::string> later_files);

  ScalarStyle style_;
  std::size_t omitted_ = 0;  // errors found but dropped by bound_errors or take_errors
};

// A whole reader's run over one YAML text: parse_single_document with checker.parse_document
// (which returns a value with a `source` member, set to `file` on success), then the checker's
// errors; any error makes the result an error. Never throws what parse_single_document catches.
template <typename Checker>
auto check_single_document(std::string_view yaml_text, std::string_view file,
                           const DocumentMessages& messages, Checker& checker)
    -> Result<std::invoke_result_t<decltype(&Checker::parse_document), Checker&, const YAML::Node&>,
              std::vector<ConfigError>> {
  auto value = parse_single_document(yaml_text, messages, checker, [&](const YAML::Node& root) {
    return checker.parse_document(root);
  });
  auto errors = checker.take_errors();
  if (!value || !errors.empty()) return Err{std::move(errors)};
  value->source = std::string(file);
  return std::move(*value);
}

}  // namespace ntpmon::config
