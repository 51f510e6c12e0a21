// Shared ground of the project's strict YAML readers (the monitoring config and the web
// configuration): reading a bounded file, loading exactly one YAML document, and quoting
// untrusted text in error messages.
//
// Responsible for: the yaml-cpp 0.7 workaround (a stray ',' at block level makes its parser
// report an endless series of empty documents at one place, so YAML::LoadAll allocates until
// the process dies and YAML::Load accepts "," as an empty file; upstream issue 1040, fixed
// after 0.8.0). Not responsible for: any schema; callers check keys and types themselves.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "proto/result.hpp"

namespace ntpmon::config {

struct YamlDocument {
  YAML::Node root;                            // the first document
  std::optional<YAML::Mark> second_document;  // where a second document starts, if any
};

// A parser stuck at one place: "YAML syntax error: unexpected ','" at `mark`.
struct YamlStuck {
  YAML::Mark mark;
  std::string message;
};

// Loads the first document of `text`, counting documents with a bound first. Ordinary syntax
// errors still throw YAML::Exception (with their mark), as YAML::Load does.
Result<YamlDocument, YamlStuck> load_yaml_document(const std::string& text);

// Reads a whole file of at most max_bytes. The error is a message without the path
// ("cannot open: ...", "cannot read: ...", or `too_large` when the file is bigger).
Result<std::string, std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                                const std::string& too_large);

// Untrusted text for an error message: control characters as \xNN, cut at 40 characters.
std::string printable(std::string_view text);

}  // namespace ntpmon::config
