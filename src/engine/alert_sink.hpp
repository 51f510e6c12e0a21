// Where the Monitor's alert transitions go: the log, the history, the recent list and the webhook.
//
// Responsible for: one log line per transition, one history record, the bounded list of recent
// transitions the views carry (seeded from the history at start), an Alertmanager notification
// per transition when a webhook is set (with the firing time of the alert it resolves), and the
// daemon's own alert when a configured history turns off. Not responsible for: deciding alerts
// (src/monitor), storing (src/history) or delivering notifications (AlertWebhook).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/logging.hpp"
#include "engine/webhook.hpp"
#include "history/history_store.hpp"
#include "monitor/monitor.hpp"
#include "monitor/view.hpp"

namespace ntpmon::engine {

class AlertSink {
 public:
  // How many transitions the views carry for /api/v1/alerts.
  static constexpr std::size_t kRecentAlerts = 100;

  using Record = std::function<void(history::AlertRecord)>;
  using Notify = std::function<void(WebhookAlert)>;

  // `record` stores a transition (the history store); the logger must outlive the sink.
  AlertSink(Logger& logger, Record record);

  // The webhook's push, or an empty function when none is configured.
  void set_notify(Notify notify) { notify_ = std::move(notify); }

  // Stored transitions from before this start (oldest first), for the recent list. Records of
  // unknown kinds are skipped.
  void seed(const std::vector<history::AlertRecord>& stored);

  // A transition the Monitor decided; `now_unix_ns` stands in for a missing time.
  void on_transition(const monitor::AlertTransition& alert, std::int64_t now_unix_ns);

  // A configured history that is off is an operator problem: said on the webhook too.
  void history_off(const std::string& error, std::int64_t now_unix_ns);
  // A history that could not write writes again (the outage started at `since_unix_ns`): the
  // notification above is resolved.
  void history_on(std::int64_t since_unix_ns, std::int64_t now_unix_ns);

  // Shared by every view until the next transition.
  [[nodiscard]] std::shared_ptr<const std::vector<monitor::AlertEvent>> recent() const {
    return recent_view_;
  }

 private:
  void push_recent(monitor::AlertEvent event);

  Logger& logger_;
  Record record_;
  Notify notify_;
  std::map<std::tuple<std::string, std::string, monitor::AlertKind>, std::int64_t> firing_since_;
  std::deque<monitor::AlertEvent> recent_;
  std::shared_ptr<const std::vector<monitor::AlertEvent>> recent_view_ =
      std::make_shared<const std::vector<monitor::AlertEvent>>();
};

}  // namespace ntpmon::engine
