#include "config/server_list.hpp"

#include <array>
#include <utility>

#include "config/host.hpp"
#include "config/yaml_document.hpp"

namespace ntpmon::config {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool has_control(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

std::string too_large_message(std::size_t max_bytes) {
  return "the file is larger than " + std::to_string(max_bytes >> 20) +
         " MiB, the limit of a server list";
}

}  // namespace

bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned int min = 0;
    unsigned int value = 0;
    if ((c & 0xe0) == 0xc0) {
      length = 2;
      min = 0x80;
      value = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      length = 3;
      min = 0x800;
      value = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      length = 4;
      min = 0x10000;
      value = c & 0x07u;
    } else {
      return false;
    }
    if (n - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      value = (value << 6) | (next & 0x3fu);
    }
    if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return false;
    i += length;
  }
  return true;
}

ServerListEnd scan_server_list(std::string_view text, const std::string& file, int list_index,
                               const ServerListDefaults& defaults, std::size_t max_servers,
                               std::size_t max_errors, const ServerListScan& out) {
  std::size_t errors = 0;
  int line = 0;
  // Returns false when this error is one too many; the caller then stops.
  const auto report = [&](int column, std::string message) {
    if (errors == max_errors) {
      out.errors->push_back(ConfigError{file, line, 0,
                                        "more than " + std::to_string(max_errors) +
                                            " errors in this file; the rest of it is not checked"});
      return false;
    }
    ++errors;
    out.errors->push_back(ConfigError{file, line, column, std::move(message)});
    return true;
  };

  std::size_t pos = 0;
  while (pos < text.size()) {
    ++line;
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view row = text.substr(pos, end - pos);
    pos = end + 1;
    // Files edited on Windows end their lines with CR LF.
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);

    // Up to three fields: a third one is only looked at to report it.
    std::array<std::string_view, 3> fields{};
    std::array<int, 3> columns{};
    std::size_t count = 0;
    std::size_t i = 0;
    while (count < fields.size()) {
      while (i < row.size() && is_blank(row[i])) ++i;
      // A '#' that starts a field starts a comment; inside a field it is an ordinary character
      // (and a host with one is then reported as invalid rather than silently cut).
      if (i == row.size() || row[i] == '#') break;
      const std::size_t start = i;
      while (i < row.size() && !is_blank(row[i])) ++i;
      fields[count] = row.substr(start, i - start);
      columns[count] = static_cast<int>(start) + 1;
      ++count;
    }
    if (count == 0) continue;

    bool valid = true;
    auto host = check_host(fields[0]);
    if (!host) {
      valid = false;
      if (!report(columns[0], host.error())) return ServerListEnd::kTooManyErrors;
    }
    if (count > 1) {
      const std::string_view name = fields[1];
      std::string why;
      if (has_control(name)) {
        why = "name '" + printable(name) + "' contains control characters";
      } else if (!is_utf8(name)) {
        why = "name is not valid UTF-8";
      }
      if (!why.empty()) {
        valid = false;
        if (!report(columns[1], std::move(why))) return ServerListEnd::kTooManyErrors;
      }
    }
    if (count > 2) {
      valid = false;
      if (!report(columns[2], "unexpected third field '" + printable(fields[2]) +
                                  "': a line is '<host> [<name>]' (port, version, poll and "
                                  "stratum are set for the whole file in its 'server_lists' "
                                  "entry)")) {
        return ServerListEnd::kTooManyErrors;
      }
    }
    if (!valid) continue;

    if (out.servers->size() >= max_servers) {
      out.errors->push_back(ConfigError{
          file, line, columns[0],
          "more than " + std::to_string(max_servers) +
              " servers in total ('servers' entries and server lists together); the rest of "
              "this file is not read (split the fleet across several monitors)"});
      return ServerListEnd::kTooManyServers;
    }
    ServerConfig& server = out.servers->emplace_back();
    server.host.assign(*host);
    if (count > 1) {
      server.name.assign(fields[1]);
    } else {
      server.name = server.host;
    }
    server.port = defaults.port;
    server.version = defaults.version;
    server.expected_stratum = defaults.expected_stratum;
    server.poll_s = defaults.poll_s;
    server.line = line;
    server.list_file = list_index;
    out.name_columns->push_back(count > 1 ? columns[1] : columns[0]);
  }
  return ServerListEnd::kComplete;
}

Result<ServerListFile, std::string> read_server_list(const std::string& path,
                                                     std::size_t max_bytes) {
  auto file = read_regular_file(path, max_bytes, too_large_message(max_bytes));
  if (!file) return Err{file.error()};
  return ServerListFile{std::move(file->text), file->device, file->inode};
}

}  // namespace ntpmon::config
