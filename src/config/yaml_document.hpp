// Shared ground of the project's strict YAML readers (the monitoring config and the web
// configuration): reading a bounded regular file without ever blocking on what is not one (a
// FIFO, a device, a directory), loading exactly one YAML document, and quoting untrusted text in
// error messages.
//
// Responsible for: the yaml-cpp 0.7 workaround (a stray ',' at block level makes its parser
// report an endless series of empty documents at one place, so YAML::LoadAll allocates until
// the process dies and YAML::Load accepts "," as an empty file; upstream issue 1040, fixed
// after 0.8.0). Not responsible for: any schema; callers check keys and types themselves.
#pragma once

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
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

// What a file of mode `st_mode` is, for messages: "a directory", "a FIFO", "a socket", "a
// character device", "a block device" ("a regular file" for one).
std::string_view file_kind(unsigned int st_mode);

// "is a FIFO, not a regular file" when `path` names something that exists and is not a regular
// file (symbolic links are followed); nothing for a regular file or a path that cannot be
// looked at (whoever opens it reports that). Never opens the path, so it never blocks on it.
std::optional<std::string> not_a_regular_file(const std::string& path);

struct RegularFile {
  std::string text;
  // The file's identity, so that one file named under two spellings can be recognised.
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
};

// Reads a whole regular file of at most max_bytes, and nothing else: what is not a regular file
// (a FIFO, whose open() or read() would wait for a writer; a device, which may never end; a
// directory) is refused from stat() before it is opened, and again from fstat() after an
// O_NONBLOCK open, in case it was swapped in between. The error is a message without the path
// ("is a FIFO, not a regular file", "cannot open: ...", "cannot read: ...", or `too_large`).
Result<RegularFile, std::string> read_regular_file(const std::string& path, std::size_t max_bytes,
                                                   const std::string& too_large);

// read_regular_file's text alone.
Result<std::string, std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                                const std::string& too_large);

// Untrusted text for an error message: control characters as \xNN, cut at 40 characters.
std::string printable(std::string_view text);
// The same for a path, cut only at 4096 bytes (PATH_MAX): an error about a file must name it
// whole.
std::string printable_path(std::string_view path);

}  // namespace ntpmon::config
