#include "engine/alert_sink.hpp"

#include <optional>
#include <utility>

namespace ntpmon::engine {

namespace {

std::optional<monitor::AlertKind> alert_kind_from_string(const std::string& text) {
  for (int i = 0; i < monitor::kAlertKindCount; ++i) {
    const auto kind = static_cast<monitor::AlertKind>(i);
    if (text == monitor::to_string(kind)) return kind;
  }
  return std::nullopt;
}

}  // namespace

AlertSink::AlertSink(Logger& logger, Record record) : logger_(logger), record_(std::move(record)) {}

void AlertSink::seed(const std::vector<history::AlertRecord>& stored) {
  for (const history::AlertRecord& a : stored) {
    const auto kind = alert_kind_from_string(a.kind);
    if (!kind) continue;
    recent_.push_back(
        monitor::AlertEvent{a.time_unix_ns, a.server, a.address, *kind, a.firing, a.message});
    if (recent_.size() > kRecentAlerts) recent_.pop_front();
  }
  recent_view_ =
      std::make_shared<const std::vector<monitor::AlertEvent>>(recent_.begin(), recent_.end());
}

void AlertSink::push_recent(monitor::AlertEvent event) {
  recent_.push_back(std::move(event));
  if (recent_.size() > kRecentAlerts) recent_.pop_front();
  // Rebuilt per transition (rare), shared by every view until the next one.
  recent_view_ =
      std::make_shared<const std::vector<monitor::AlertEvent>>(recent_.begin(), recent_.end());
}

void AlertSink::on_transition(const monitor::AlertTransition& alert, std::int64_t now_unix_ns) {
  const auto key = std::make_tuple(alert.server, alert.address, alert.kind);
  std::int64_t starts_ns = alert.at_unix_ns;
  if (alert.firing) {
    firing_since_[key] = alert.at_unix_ns;
  } else if (auto it = firing_since_.find(key); it != firing_since_.end()) {
    starts_ns = it->second;
    firing_since_.erase(it);
  }
  logger_.log(alert.firing ? LogLevel::kWarning : LogLevel::kInfo,
              alert.firing ? "alert_firing" : "alert_resolved",
              {{"alert", monitor::alert_name(alert.kind)},
               {"server", alert.server},
               {"address", alert.address},
               {"message", alert.message}});
  const std::int64_t at_ns = alert.at_unix_ns != 0 ? alert.at_unix_ns : now_unix_ns;
  if (record_) {
    record_(history::AlertRecord{at_ns, alert.server, alert.address, monitor::to_string(alert.kind),
                                 alert.firing, alert.message});
  }
  push_recent(monitor::AlertEvent{at_ns, alert.server, alert.address, alert.kind, alert.firing,
                                  alert.message});
  if (!notify_) return;
  WebhookAlert w;
  w.firing = alert.firing;
  w.alertname = monitor::alert_name(alert.kind);
  w.server = alert.server;
  w.address = alert.address;
  w.severity = monitor::alert_severity(alert.kind);
  w.summary = alert.message;
  w.starts_unix_ns = starts_ns;
  w.ends_unix_ns = alert.firing ? 0 : at_ns;
  notify_(std::move(w));
}

void AlertSink::history_off(const std::string& error, std::int64_t now_unix_ns) {
  if (!notify_) return;
  WebhookAlert w;
  w.firing = true;
  w.alertname = "NtpMonitorHistoryDisabled";
  w.severity = "warning";
  w.summary = error;
  w.starts_unix_ns = now_unix_ns;
  notify_(std::move(w));
}

void AlertSink::history_on(std::int64_t since_unix_ns, std::int64_t now_unix_ns) {
  if (!notify_) return;
  WebhookAlert w;
  w.firing = false;
  w.alertname = "NtpMonitorHistoryDisabled";
  w.severity = "warning";
  w.summary = "history writes again";
  w.starts_unix_ns = since_unix_ns;
  w.ends_unix_ns = now_unix_ns;
  notify_(std::move(w));
}

}  // namespace ntpmon::engine
