// Alert notifications: alert transitions POSTed to an HTTP endpoint in Alertmanager's webhook
// format, from a thread of their own.
//
// Responsible for: rendering one transition as an Alertmanager webhook payload (version "4",
// status firing/resolved, one alert with labels alertname/server/address/severity, a summary
// annotation, RFC 3339 startsAt/endsAt), a bounded queue that drops the oldest entry (and
// counts it) when the receiver cannot keep up, retries with exponential back-off, and a
// per-attempt timeout. push() never blocks on the network, so a dead or hanging receiver
// never delays the event loop. Not responsible for: deciding when an alert fires (src/monitor)
// or de-duplicating and grouping notifications (the receiver, e.g. Alertmanager, does that).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "engine/logging.hpp"

namespace ntpmon::engine {

struct WebhookAlert {
  bool firing = true;
  std::string alertname;  // "NtpServerUnreachable", ...
  std::string server;     // configured name
  std::string address;    // "" when the server never resolved
  std::string severity;   // "critical", "warning", "info"
  std::string summary;    // one line for people
  std::int64_t starts_unix_ns = 0;
  std::int64_t ends_unix_ns = 0;  // 0 while firing
};

// The JSON body for one alert. Pure, for tests.
std::string render_alertmanager_payload(const WebhookAlert& alert);

struct WebhookCounters {
  std::uint64_t sent = 0;     // delivered (2xx)
  std::uint64_t failed = 0;   // given up after the last retry or a permanent 4xx
  std::uint64_t dropped = 0;  // pushed out of a full queue
  std::uint64_t retries = 0;
};

struct WebhookOptions {
  config::WebhookConfig config;
  int max_attempts = 4;
  double first_backoff_s = 0.5;  // doubled after each failed attempt
  double max_backoff_s = 30.0;
};

class AlertWebhook {
 public:
  // Starts the sender thread. The logger must outlive the webhook.
  AlertWebhook(WebhookOptions options, Logger& logger);
  ~AlertWebhook();  // stop()
  AlertWebhook(const AlertWebhook&) = delete;
  AlertWebhook& operator=(const AlertWebhook&) = delete;

  // Queues one alert; never blocks on the network.
  void push(WebhookAlert alert);
  // Aborts a request in flight, abandons the queue and joins the thread. Idempotent.
  void stop();

  [[nodiscard]] WebhookCounters counters() const;
  [[nodiscard]] const config::WebhookConfig& config() const { return options_.config; }

 private:
  struct Client;
  void run();
  bool deliver(const WebhookAlert& alert);

  WebhookOptions options_;
  Logger& logger_;
  std::string origin_;  // scheme://host[:port]
  std::string path_;    // "/..." (at least "/")
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<WebhookAlert> queue_;
  WebhookCounters counters_;
  bool stopping_ = false;
  std::shared_ptr<Client> in_flight_;  // the request being made, so stop() can abort it
  std::thread thread_;
};

}  // namespace ntpmon::engine
