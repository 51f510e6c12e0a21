#include "engine/webhook.hpp"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

namespace ntpmon::engine {

// Alertmanager's "zero time" for an alert that has not ended (Go's time.Time{}).
constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";

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
  body["groupKey"] = "{}:{alertname=\"" + alert.alertname + "\",server=\"" + alert.server + "\"}";
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
