#include "config/yaml_check.hpp"

#include <algorithm>
#include <limits>
#include <tuple>

#include "config/yaml_document.hpp"

namespace ntpmon::config {

const Field* find(const std::vector<Field>& fields, std::string_view key) {
  const auto it =
      std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
  return it == fields.end() ? nullptr : &*it;
}

bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

std::string describe(const YAML::Node& node, ScalarStyle style) {
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
  if (style == ScalarStyle::kAsWritten || is_plain(node)) {
    return "'" + printable(node.Scalar()) + "'";
  }
  return "the quoted string \"" + printable(node.Scalar()) + "\"";
}

void YamlChecker::error_at(const YAML::Mark& mark, std::string message) {
  const bool known = mark.line >= 0 && mark.column >= 0;
  errors_.push_back(ConfigError{std::string(file_), known ? mark.line + 1 : 0,
                                known ? mark.column + 1 : 0, std::move(message)});
  bound_errors();
}

void YamlChecker::bound_errors() {
  if (errors_.size() > 2 * kMaxReportedErrors) keep_first(later_files_);
}

void YamlChecker::keep_first(std::span<const std::string> later_files) {
  const auto rank = [&](const ConfigError& e) -> std::size_t {
    if (later_files.empty() || e.file == file_) return 0;
    const auto it = std::find(later_files.begin(), later_files.end(), e.file);
    return it == later_files.end() ? 0 : static_cast<std::size_t>(it - later_files.begin()) + 1;
  };
  // Stable: errors at one place keep the order they were found in, also across calls (the kept
  // ones were all found before any error appended since).
  std::stable_sort(errors_.begin(), errors_.end(), [&](const ConfigError& a, const ConfigError& b) {
    const auto key = [&](const ConfigError& e) {
      return std::tuple{rank(e), e.line == 0 ? std::numeric_limits<int>::max() : e.line, e.column};
    };
    return key(a) < key(b);
  });
  if (errors_.size() > kMaxReportedErrors) {
    omitted_ += errors_.size() - kMaxReportedErrors;
    errors_.resize(kMaxReportedErrors);
  }
}

std::vector<ConfigError> YamlChecker::take_errors(std::span<const std::string> later_files) {
  keep_first(later_files);
  if (omitted_ > 0) {
    ConfigError more{std::string(file_), 0, 0, more_errors_message(omitted_)};
    more.more = omitted_;
    errors_.push_back(std::move(more));
    omitted_ = 0;
  }
  return std::move(errors_);
}

std::vector<Field> YamlChecker::fields_of(const YAML::Node& map, std::string_view where,
                                          std::span<const std::string_view> allowed,
                                          UnsupportedKeys unsupported) {
  std::vector<Field> fields;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key_node = it->first;
    if (!key_node.IsScalar()) {
      error_at(key_node.Mark(),
               "a key " + std::string(where) + " must be a plain name, got " + describe(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    if (std::find(unsupported.keys.begin(), unsupported.keys.end(), key) !=
        unsupported.keys.end()) {
      error_at(key_node.Mark(),
               "'" + key + "' " + std::string(where) + " " + std::string(unsupported.reason));
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

bool YamlChecker::has_value(const Field& field, std::string_view expected) {
  if (!field.value.IsNull()) return true;
  // A null value's mark points past the key (often at the next line), so report at the key.
  error_at(field.key_node.Mark(),
           "'" + field.key + "' has no value (expected " + std::string(expected) + ")");
  return false;
}

void YamlChecker::wrong_value(const Field& field, std::string_view expected) {
  error_at(field.value.Mark(), "'" + field.key + "' must be " + std::string(expected) + ", got " +
                                   describe(field.value));
}

std::optional<std::string> YamlChecker::scalar(const Field& field, std::string_view expected) {
  if (!has_value(field, expected)) return std::nullopt;
  if (field.value.IsScalar()) return field.value.Scalar();
  wrong_value(field, expected);
  return std::nullopt;
}

}  // namespace ntpmon::config
