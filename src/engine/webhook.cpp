#include "engine/webhook.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace ntpmon::engine {

// Alertmanager's "zero time" for an alert that has not ended (Go's time.Time{}).
constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";

namespace {

// The code point of the valid UTF-8 sequence at the start of `s` and its length, or length 0
// when it is not valid as Go's utf8.DecodeRuneInString judges it: no overlong forms, no
// surrogates, nothing above U+10FFFF, no truncated sequence.
struct Rune {
  std::uint32_t cp = 0;
  std::size_t size = 0;
};

Rune decode_utf8(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  std::size_t size = 0;
  std::uint32_t cp = 0;
  unsigned char lo = 0x80;  // allowed range of the second byte
  unsigned char hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    size = 2;
    cp = b0 & 0x1fU;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    size = 3;
    cp = b0 & 0x0fU;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    size = 4;
    cp = b0 & 0x07U;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return {};
  }
  if (s.size() < size) return {};
  for (std::size_t i = 1; i < size; ++i) {
    const unsigned char b = byte(i);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf)) return {};
    cp = (cp << 6) | (b & 0x3fU);
  }
  return {cp, size};
}

// Non-ASCII code points that Go's strconv.IsPrint rejects: the C1 controls, the space
// separators other than U+0020, the line and paragraph separators, the format characters
// (Unicode 15), private use and the noncharacters. Unassigned code points are printable here
// (Go would escape them), which only matters for code points no name should contain.
bool is_go_printable(std::uint32_t cp) {
  struct Range {
    std::uint32_t first;
    std::uint32_t last;
  };
  static constexpr Range kNotPrintable[] = {
      {0x0080, 0x00a0},   {0x00ad, 0x00ad},    {0x0600, 0x0605},   {0x061c, 0x061c},
      {0x06dd, 0x06dd},   {0x070f, 0x070f},    {0x0890, 0x0891},   {0x08e2, 0x08e2},
      {0x1680, 0x1680},   {0x180e, 0x180e},    {0x2000, 0x200f},   {0x2028, 0x202f},
      {0x205f, 0x206f},   {0x3000, 0x3000},    {0xe000, 0xf8ff},   {0xfdd0, 0xfdef},
      {0xfeff, 0xfeff},   {0xfff9, 0xfffb},    {0x110bd, 0x110bd}, {0x110cd, 0x110cd},
      {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},  {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
      {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
  };
  if ((cp & 0xfffeU) == 0xfffeU) return false;  // U+xFFFE and U+xFFFF in every plane
  return std::none_of(std::begin(kNotPrintable), std::end(kNotPrintable),
                      [cp](const Range& r) { return cp >= r.first && cp <= r.last; });
}

void append_hex(std::string& out, const char* prefix, std::uint32_t value, int digits) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out += prefix;
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) out += kHex[(value >> shift) & 0xfU];
}

// `value` as Go's strconv.Quote writes it (what %q gives), which is how Alertmanager writes
// label values in a group key: '"' and '\' escaped, printable runes as they are, \a \b \f
// \n \r \t \v, other ASCII controls and DEL and every byte that is not valid UTF-8 as
// \xNN, other non-printable runes as \uNNNN or \UNNNNNNNN.
void append_go_quoted(std::string& out, std::string_view value) {
  out += '"';
  while (!value.empty()) {
    const auto b0 = static_cast<unsigned char>(value.front());
    if (b0 >= 0x80) {
      const Rune rune = decode_utf8(value);
      if (rune.size == 0) {
        append_hex(out, "\\x", b0, 2);
        value.remove_prefix(1);
      } else {
        if (is_go_printable(rune.cp)) {
          out += value.substr(0, rune.size);
        } else if (rune.cp < 0x10000) {
          append_hex(out, "\\u", rune.cp, 4);
        } else {
          append_hex(out, "\\U", rune.cp, 8);
        }
        value.remove_prefix(rune.size);
      }
      continue;
    }
    value.remove_prefix(1);
    switch (b0) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (b0 < 0x20 || b0 == 0x7f) {
          append_hex(out, "\\x", b0, 2);
        } else {
          out += static_cast<char>(b0);
        }
    }
  }
  out += '"';
}

// Alertmanager's group key for our one route: the route's matchers ("{}", none) and the
// grouping labels, as Go's LabelSet prints them.
std::string group_key(const WebhookAlert& alert) {
  std::string out = "{}:{alertname=";
  append_go_quoted(out, alert.alertname);
  out += ",server=";
  append_go_quoted(out, alert.server);
  out += '}';
  return out;
}

}  // namespace

std::string render_alertmanager_payload(const WebhookAlert& alert) {
  const char* status = alert.firing ? "firing" : "resolved";
  nlohmann::ordered_json labels;
  labels["alertname"] = alert.alertname;
  labels["server"] = alert.server;
  labels["address"] = alert.address;
  labels["severity"] = alert.severity;
  nlohmann::ordered_json annotations;
  annotations["summary"] = alert.summary;
  nlohmann::ordered_json one;
  one["status"] = status;
  one["labels"] = labels;
  one["annotations"] = annotations;
  one["startsAt"] = format_rfc3339_ns(alert.starts_unix_ns);
  one["endsAt"] = alert.firing ? std::string(kZeroTime) : format_rfc3339_ns(alert.ends_unix_ns);
  one["generatorURL"] = "";
  one["fingerprint"] = "";
  nlohmann::ordered_json group_labels;
  group_labels["alertname"] = alert.alertname;
  nlohmann::ordered_json body;
  body["version"] = "4";
  body["groupKey"] = group_key(alert);
  body["truncatedAlerts"] = 0;
  body["status"] = status;
  body["receiver"] = "ntp-monitor";
  body["groupLabels"] = group_labels;
  body["commonLabels"] = labels;
  body["commonAnnotations"] = annotations;
  body["externalURL"] = "";
  body["alerts"] = nlohmann::ordered_json::array({one});
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct AlertWebhook::Client {
  explicit Client(const std::string& origin) : http(origin) {}
  httplib::Client http;
};

AlertWebhook::AlertWebhook(WebhookOptions options, Logger& logger)
    : options_(std::move(options)), logger_(logger) {
  // The loader accepted only http(s)://authority[/path], so the split is simple.
  const std::string& url = options_.config.url;
  const std::size_t scheme_end = url.find("://");
  const std::size_t path_start =
      scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  origin_ = url.substr(0, path_start);
  path_ = path_start == std::string::npos ? "/" : url.substr(path_start);
  thread_ = std::thread([this] { run(); });
}

AlertWebhook::~AlertWebhook() { stop(); }

void AlertWebhook::push(WebhookAlert alert) {
  bool dropped = false;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (queue_.size() >= static_cast<std::size_t>(std::max(options_.config.queue_size, 1))) {
      queue_.pop_front();
      ++counters_.dropped;
      dropped = true;
    }
    queue_.push_back(std::move(alert));
  }
  wake_.notify_one();
  if (dropped) {
    logger_.log(
        LogLevel::kWarning, "webhook_queue_full",
        {{"dropped", "oldest"}, {"queue_size", std::to_string(options_.config.queue_size)}});
  }
}

void AlertWebhook::stop() {
  std::shared_ptr<Client> in_flight;
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    in_flight = in_flight_;
  }
  wake_.notify_all();
  // Shuts the socket of a request that is waiting for a hanging receiver.
  if (in_flight) in_flight->http.stop();
  if (thread_.joinable()) thread_.join();
  std::size_t abandoned = 0;
  {
    const std::lock_guard lock(mutex_);
    abandoned = queue_.size();
    queue_.clear();
  }
  if (abandoned > 0) {
    logger_.log(LogLevel::kWarning, "webhook_abandoned", {{"alerts", std::to_string(abandoned)}});
  }
}

WebhookCounters AlertWebhook::counters() const {
  const std::lock_guard lock(mutex_);
  return counters_;
}

void AlertWebhook::run() {
  while (true) {
    WebhookAlert alert;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      alert = std::move(queue_.front());
      queue_.pop_front();
    }
    const bool ok = deliver(alert);
    const std::lock_guard lock(mutex_);
    ++(ok ? counters_.sent : counters_.failed);
  }
}

bool AlertWebhook::deliver(const WebhookAlert& alert) {
  const std::string body = render_alertmanager_payload(alert);
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double>(options_.config.timeout_s));
  const auto seconds = static_cast<time_t>(timeout.count() / 1'000'000);
  const auto micros = static_cast<time_t>(timeout.count() % 1'000'000);
  double backoff_s = options_.first_backoff_s;
  std::string why;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    auto client = std::make_shared<Client>(origin_);
    client->http.set_connection_timeout(seconds, micros);
    client->http.set_read_timeout(seconds, micros);
    client->http.set_write_timeout(seconds, micros);
    client->http.set_keep_alive(false);
    {
      const std::lock_guard lock(mutex_);
      if (stopping_) return false;
      in_flight_ = client;
    }
    const auto result = client->http.Post(path_, body, "application/json");
    {
      const std::lock_guard lock(mutex_);
      in_flight_.reset();
    }
    bool retry = true;
    if (result && result->status >= 200 && result->status < 300) {
      logger_.log(LogLevel::kDebug, "webhook_sent",
                  {{"alertname", alert.alertname},
                   {"server", alert.server},
                   {"status", alert.firing ? "firing" : "resolved"}});
      return true;
    }
    if (result) {
      why = "HTTP " + std::to_string(result->status);
      // A 4xx other than 408/429 will not get better by asking again.
      retry = result->status >= 500 || result->status == 408 || result->status == 429;
    } else {
      why = httplib::to_string(result.error());
    }
    if (!retry || attempt == options_.max_attempts) break;
    std::unique_lock lock(mutex_);
    ++counters_.retries;
    if (wake_.wait_for(lock, std::chrono::duration<double>(backoff_s),
                       [this] { return stopping_; })) {
      return false;
    }
    backoff_s = std::min(backoff_s * 2, options_.max_backoff_s);
  }
  logger_.log(LogLevel::kWarning, "webhook_failed",
              {{"alertname", alert.alertname},
               {"server", alert.server},
               {"status", alert.firing ? "firing" : "resolved"},
               {"error", why}});
  return false;
}

}  // namespace ntpmon::engine
