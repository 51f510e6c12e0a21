// ntp_monitor._core: the pybind11 layer of the Python binding over the C++ client library
// (src/client/ntp_client.hpp). docs/python.md.
//
// Responsible for: turning keyword arguments into client QueryOptions, running the queries with
// the GIL released (one thread per host, at most kMaxThreads at once, for query()), and turning
// each TimeResult into a dict with the keys of `ntp-monitor query --json` plus "failure" and
// "rejected". Not responsible for: raising the NTPError subclasses (ntp_monitor/__init__.py does,
// from "failure"), or any network or protocol logic (the engine's).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "client/ntp_client.hpp"
#include "config/config.hpp"
#include "engine/key_file.hpp"
#include "proto/keys.hpp"

namespace py = pybind11;

namespace {

// Bad arguments (a key file that does not load, a key id it lacks, ...): raised as
// ntp_monitor._core.UsageError, a ValueError.
class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

constexpr std::size_t kMaxThreads = 64;

struct Settings {
  int samples = 4;
  double timeout_s = 2.0;
  double interval_s = 1.0;
  double dns_timeout_s = 5.0;
  int port = 123;
  int version = 4;
  bool nts = false;
  int ntske_port = 4460;
  std::string ca_file;
  std::string key_file;
  std::optional<std::int64_t> key_id;
  std::string key_format = "auto";
};

ntpmon::QueryOptions to_options(const Settings& s) {
  if (s.samples < 1 || s.samples > 64) throw UsageError("samples must be 1 to 64");
  if (!(s.timeout_s > 0 && s.timeout_s <= 60)) throw UsageError("timeout must be in (0, 60] s");
  if (!(s.interval_s >= 0 && s.interval_s <= 3600)) throw UsageError("interval must be 0-3600 s");
  if (!(s.dns_timeout_s > 0 && s.dns_timeout_s <= 60)) {
    throw UsageError("dns_timeout must be in (0, 60] s");
  }
  if (s.port < 1 || s.port > 65535) throw UsageError("port must be 1 to 65535");
  if (s.version != 3 && s.version != 4) throw UsageError("version must be 3 or 4");
  if (s.ntske_port < 1 || s.ntske_port > 65535) throw UsageError("ntske_port must be 1 to 65535");
  ntpmon::QueryOptions o;
  o.samples = s.samples;
  o.timeout = std::chrono::duration<double>(s.timeout_s);
  o.interval = std::chrono::duration<double>(s.interval_s);
  o.dns_timeout = std::chrono::duration<double>(s.dns_timeout_s);
  o.port = static_cast<std::uint16_t>(s.port);
  o.version = static_cast<std::uint8_t>(s.version);
  o.nts = s.nts;
  o.ntske_port = static_cast<std::uint16_t>(s.ntske_port);
  o.ca_file = s.ca_file;
  if (!s.key_file.empty() || s.key_id) {
    if (s.nts) throw UsageError("nts and key_file are exclusive");
    if (s.key_file.empty() || !s.key_id) throw UsageError("key_file and key_id go together");
    ntpmon::config::Config keys_only;
    keys_only.key_file = s.key_file;
    if (s.key_format == "chrony") {
      keys_only.key_format = ntpmon::config::KeyFormat::kChrony;
    } else if (s.key_format == "ntpsec") {
      keys_only.key_format = ntpmon::config::KeyFormat::kNtpsec;
    } else if (s.key_format != "auto") {
      throw UsageError("key_format must be auto, chrony or ntpsec");
    }
    const auto keys = ntpmon::engine::load_config_keys(keys_only);
    if (!keys) throw UsageError(keys.error());
    if (*s.key_id < 1 || *s.key_id > 4294967295LL) throw UsageError("key_id must be 1 to 2^32-1");
    const auto* key = ntpmon::proto::find_key(*keys, static_cast<std::uint32_t>(*s.key_id));
    if (key == nullptr) {
      throw UsageError("key " + std::to_string(*s.key_id) + " not in " + s.key_file);
    }
    o.key = *key;
  }
  return o;
}

py::object text_or_none(const std::string& text) {
  return text.empty() ? py::object(py::none()) : py::object(py::str(text));
}

// The keys of `query --json` (null where the figure is unknown), then failure and rejected.
py::dict to_dict(const ntpmon::TimeResult& r) {
  py::dict d;
  const auto figure = [&](double value) {
    return r.ok ? py::object(py::float_(value)) : py::object(py::none());
  };
  d["host"] = r.host;
  d["address"] = text_or_none(r.address);
  d["port"] = r.port;
  d["ok"] = r.ok;
  d["error"] = text_or_none(r.error);
  d["offset"] = figure(r.offset);
  d["delay"] = figure(r.delay);
  d["jitter"] = figure(r.jitter);
  d["stratum"] = r.ok || r.stratum != 0 ? py::object(py::int_(r.stratum)) : py::none();
  d["refid"] = text_or_none(r.refid);
  d["leap"] = r.ok ? py::object(py::int_(r.leap)) : py::none();
  d["version"] = r.version != 0 ? py::object(py::int_(r.version)) : py::none();
  d["root_delay"] = figure(r.root_delay);
  d["root_dispersion"] = figure(r.root_dispersion);
  d["root_distance"] = figure(r.root_distance);
  d["precision"] = figure(r.precision);
  d["poll"] = r.poll != 0 ? py::object(py::float_(r.poll)) : py::none();
  d["samples"] = r.samples;
  d["kod"] = text_or_none(r.kod);
  d["authenticated"] = r.authenticated;
  d["nts_ke_seconds"] = r.nts_ke_seconds ? py::object(py::float_(*r.nts_ke_seconds)) : py::none();
  d["cookies"] = r.cookies ? py::object(py::int_(*r.cookies)) : py::none();
  d["aead"] = text_or_none(r.aead);
  d["certificate_expiry"] = text_or_none(r.certificate_expiry);
  d["failure"] = std::string(ntpmon::to_string(r.failure));
  d["rejected"] = text_or_none(r.rejected);
  d["requests"] = r.requests;
  d["timeouts"] = r.timeouts;
  d["auth_error"] = text_or_none(r.auth_error);
  return d;
}

class Client {
 public:
  explicit Client(const std::optional<std::string>& config_path) {
    if (config_path) client_ = ntpmon::NtpClient::from_config(*config_path);
  }

  [[nodiscard]] std::vector<std::string> servers() const { return client_.get_servers(); }

  // One host: the best answer of its addresses.
  py::dict get_time(const std::string& host, const Settings& settings) const {
    ntpmon::NtpClient client = client_;
    client.set_options(to_options(settings));
    ntpmon::TimeResult result;
    {
      py::gil_scoped_release release;
      result = client.get_time(host);
    }
    return to_dict(result);
  }

  // Many hosts at once: up to kMaxThreads run their queries concurrently, GIL released.
  py::list query(const std::vector<std::string>& hosts, const Settings& settings) const {
    ntpmon::NtpClient client = client_;
    client.set_options(to_options(settings));
    std::vector<ntpmon::TimeResult> results(hosts.size());
    {
      py::gil_scoped_release release;
      std::atomic<std::size_t> next{0};
      std::vector<std::exception_ptr> errors(hosts.size());
      const auto worker = [&] {
        for (std::size_t i = next++; i < hosts.size(); i = next++) {
          try {
            results[i] = client.get_time(hosts[i]);
          } catch (...) {  // no network trouble throws; memory exhaustion might
            errors[i] = std::current_exception();
          }
        }
      };
      std::vector<std::thread> threads;
      const std::size_t count = std::min(hosts.size(), kMaxThreads);
      threads.reserve(count);
      for (std::size_t i = 0; i < count; ++i) threads.emplace_back(worker);
      for (auto& thread : threads) thread.join();
      for (const auto& error : errors) {
        if (error) std::rethrow_exception(error);
      }
    }
    py::list out;
    for (const auto& result : results) out.append(to_dict(result));
    return out;
  }

 private:
  ntpmon::NtpClient client_;
};

Settings settings_from(int samples, double timeout, double interval, double dns_timeout, int port,
                       int version, bool nts, int ntske_port,
                       const std::optional<std::string>& ca_file,
                       const std::optional<std::string>& key_file,
                       std::optional<std::int64_t> key_id, const std::string& key_format) {
  Settings s;
  s.samples = samples;
  s.timeout_s = timeout;
  s.interval_s = interval;
  s.dns_timeout_s = dns_timeout;
  s.port = port;
  s.version = version;
  s.nts = nts;
  s.ntske_port = ntske_port;
  s.ca_file = ca_file.value_or("");
  s.key_file = key_file.value_or("");
  s.key_id = key_id;
  s.key_format = key_format;
  return s;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "ntp-monitor's C++ client library (use the ntp_monitor package, not this module)";
  py::register_exception<UsageError>(m, "UsageError", PyExc_ValueError);
  py::register_exception<ntpmon::ConfigLoadError>(m, "ConfigLoadError", PyExc_ValueError);

  py::class_<Client>(m, "Client")
      .def(py::init<const std::optional<std::string>&>(), py::arg("config"))
      .def("servers", &Client::servers)
      .def(
          "get_time",
          [](const Client& self, const std::string& host, int samples, double timeout,
             double interval, double dns_timeout, int port, int version, bool nts, int ntske_port,
             const std::optional<std::string>& ca_file, const std::optional<std::string>& key_file,
             std::optional<std::int64_t> key_id, const std::string& key_format) {
            return self.get_time(
                host, settings_from(samples, timeout, interval, dns_timeout, port, version, nts,
                                    ntske_port, ca_file, key_file, key_id, key_format));
          },
          py::arg("host"), py::arg("samples"), py::arg("timeout"), py::arg("interval"),
          py::arg("dns_timeout"), py::arg("port"), py::arg("version"), py::arg("nts"),
          py::arg("ntske_port"), py::arg("ca_file"), py::arg("key_file"), py::arg("key_id"),
          py::arg("key_format"))
      .def(
          "query",
          [](const Client& self, const std::vector<std::string>& hosts, int samples, double timeout,
             double interval, double dns_timeout, int port, int version, bool nts, int ntske_port,
             const std::optional<std::string>& ca_file, const std::optional<std::string>& key_file,
             std::optional<std::int64_t> key_id, const std::string& key_format) {
            return self.query(
                hosts, settings_from(samples, timeout, interval, dns_timeout, port, version, nts,
                                     ntske_port, ca_file, key_file, key_id, key_format));
          },
          py::arg("hosts"), py::arg("samples"), py::arg("timeout"), py::arg("interval"),
          py::arg("dns_timeout"), py::arg("port"), py::arg("version"), py::arg("nts"),
          py::arg("ntske_port"), py::arg("ca_file"), py::arg("key_file"), py::arg("key_id"),
          py::arg("key_format"));
}
