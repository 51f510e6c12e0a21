#include "config/yaml_document.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <vector>

namespace ntpmon::config {
namespace {

constexpr std::size_t kMaxQuotedChars = 40;
// Three documents are enough to tell "one", "more than one" and "stuck" apart.
constexpr int kMaxDocuments = 3;

// Records where each document starts and ignores everything else.
class DocumentStarts : public YAML::EventHandler {
 public:
  [[nodiscard]] const std::vector<YAML::Mark>& starts() const { return starts_; }

  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  std::vector<YAML::Mark> starts_;
};

}  // namespace

Result<YamlDocument, YamlStuck> load_yaml_document(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser scanner(stream);
  DocumentStarts documents;
  int count = 0;
  while (count < kMaxDocuments && scanner.HandleNextDocument(documents)) ++count;
  const auto& starts = documents.starts();
  for (std::size_t i = 1; i < starts.size(); ++i) {
    if (starts[i].pos == starts[i - 1].pos) {
      const auto pos = static_cast<std::size_t>(starts[i].pos);
      const std::string what = pos < text.size() ? "'" + printable(text.substr(pos, 1)) + "'"
                                                 : std::string("end of input");
      return Err{YamlStuck{starts[i], "YAML syntax error: unexpected " + what}};
    }
  }
  YamlDocument document;
  if (starts.size() > 1) document.second_document = starts[1];
  // YAML::Load builds the tree of the first document only.
  document.root = YAML::Load(text);
  return document;
}

Result<std::string, std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                                const std::string& too_large) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) return Err{std::string("cannot open: ") + std::strerror(errno)};
  std::string text;
  std::array<char, 16384> buf{};
  while (true) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), file.get());
    text.append(buf.data(), n);
    if (text.size() > max_bytes) return Err{too_large};
    if (n < buf.size()) break;
  }
  // glibc opens a directory for reading and fails on the first read (EISDIR).
  if (std::ferror(file.get()) != 0) return Err{std::string("cannot read: ") + std::strerror(errno)};
  return text;
}

std::string printable(std::string_view text) {
  std::string out;
  const std::size_t n = std::min(text.size(), kMaxQuotedChars);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > n) out += "...";
  return out;
}

}  // namespace ntpmon::config
