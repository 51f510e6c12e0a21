// Shared ground of the project's strict YAML readers (the monitoring config and the web
// configuration): reading a bounded file, loading exactly one YAML document, and quoting
// untrusted text in error messages.
//
// Responsible for: the yaml-cpp 0.7 workaround (a stray ',' at block level makes its parser
// report an endless series of empty documents at one place, so YAML::LoadAll allocates until
// the process dies and YAML::Load accepts "," as an empty file; upstream issue 1040, fixed
// after 0.8.0). Not responsible for: any schema; callers check keys and types themselves.
#pragma once

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

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

// What a strict reader says about a file that is not one YAML document of its kind.
struct DocumentMessages {
  std::size_t max_bytes = 0;
  std::string too_large;        // when the text is above max_bytes
  std::string second_document;  // at the '---' of a second document (an error, not fatal)
};

// The common frame of a strict reader: the size limit, the stuck-parser guard, the
// one-document rule, and every yaml-cpp exception (also those `parse` lets through) reported to
// `checker` (error(message), error_at(mark, message)) instead of thrown. Returns what
// parse(root) returned, or nothing when the text could not be parsed at all; either way the
// checker holds the errors.
template <typename Checker, typename Parse>
auto parse_single_document(std::string_view yaml_text, const DocumentMessages& messages,
                           Checker& checker, Parse&& parse)
    -> std::optional<std::invoke_result_t<Parse&, const YAML::Node&>> {
  if (yaml_text.size() > messages.max_bytes) {
    checker.error(messages.too_large);
    return std::nullopt;
  }
  try {
    const std::string text(yaml_text);
    auto document = load_yaml_document(text);
    if (!document) {
      checker.error_at(document.error().mark, document.error().message);
      return std::nullopt;
    }
    if (document->second_document) {
      checker.error_at(*document->second_document, messages.second_document);
    }
    return parse(static_cast<const YAML::Node&>(document->root));
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this case is "bad file".
    checker.error_at(e.mark, "YAML nested too deeply");
  } catch (const YAML::Exception& e) {
    checker.error_at(e.mark, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    checker.error(std::string("cannot parse: ") + e.what());
  }
  return std::nullopt;
}

// Reads a whole file of at most max_bytes. The error is a message without the path
// ("cannot open: ...", "cannot read: ...", or `too_large` when the file is bigger).
Result<std::string, std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                                const std::string& too_large);

// Untrusted text for an error message: control characters as \xNN, cut at 40 characters.
std::string printable(std::string_view text);

}  // namespace ntpmon::config
