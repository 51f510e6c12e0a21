#include "config/yaml_document.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

namespace ntpmon::config {
namespace {

constexpr std::size_t kMaxQuotedChars = 40;
constexpr std::size_t kMaxPathChars = 4096;
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

std::string_view file_kind(unsigned int st_mode) {
  if (S_ISREG(st_mode)) return "a regular file";
  if (S_ISDIR(st_mode)) return "a directory";
  if (S_ISFIFO(st_mode)) return "a FIFO";
  if (S_ISSOCK(st_mode)) return "a socket";
  if (S_ISCHR(st_mode)) return "a character device";
  if (S_ISBLK(st_mode)) return "a block device";
  return "not a regular file";
}

namespace {

std::string not_regular_message(unsigned int st_mode) {
  const std::string_view kind = file_kind(st_mode);
  if (kind == "not a regular file") return "is not a regular file";
  return "is " + std::string(kind) + ", not a regular file";
}

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::optional<std::string> not_a_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return std::nullopt;
  return not_regular_message(st.st_mode);
}

Result<RegularFile, std::string> read_regular_file(const std::string& path, std::size_t max_bytes,
                                                   const std::string& too_large) {
  // Looked at before it is opened: opening a FIFO for reading waits for a writer, and even a
  // non-blocking open of a device can have side effects (a tape rewinds).
  if (auto why = not_a_regular_file(path)) return Err{std::move(*why)};
  // O_NONBLOCK: whatever was swapped in since the stat() opens at once; the fstat() below
  // refuses it before anything is read.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) return Err{std::string("cannot open: ") + std::strerror(errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Err{std::string("cannot stat: ") + std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return Err{not_regular_message(st.st_mode)};
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > max_bytes) return Err{too_large};
  // One allocation of the size the file has now, then whatever it grew by meanwhile (within
  // the bound); files in /proc report a size of 0 and are read the same way.
  RegularFile out;
  out.device = static_cast<std::uint64_t>(st.st_dev);
  out.inode = static_cast<std::uint64_t>(st.st_ino);
  std::string& text = out.text;
  text.resize(size);
  std::size_t got = 0;
  std::array<char, 65536> tail{};
  while (true) {
    char* into = got < text.size() ? text.data() + got : tail.data();
    const std::size_t room = got < text.size() ? text.size() - got : tail.size();
    const ssize_t n = ::read(fd.get(), into, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Err{std::string("cannot read: ") + std::strerror(errno)};
    }
    if (n == 0) break;
    const auto read_bytes = static_cast<std::size_t>(n);
    if (into == tail.data()) {
      if (text.size() + read_bytes > max_bytes) return Err{too_large};
      text.append(tail.data(), read_bytes);
    }
    got += read_bytes;
  }
  text.resize(got);
  return out;
}

Result<std::string, std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                                const std::string& too_large) {
  auto file = read_regular_file(path, max_bytes, too_large);
  if (!file) return Err{file.error()};
  return std::move(file->text);
}

namespace {

std::string printable_up_to(std::string_view text, std::size_t max_chars) {
  std::string out;
  const std::size_t n = std::min(text.size(), max_chars);
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

}  // namespace

std::string printable(std::string_view text) { return printable_up_to(text, kMaxQuotedChars); }

std::string printable_path(std::string_view path) { return printable_up_to(path, kMaxPathChars); }

}  // namespace ntpmon::config
