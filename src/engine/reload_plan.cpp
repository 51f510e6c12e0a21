#include "engine/reload_plan.hpp"

namespace ntpmon::engine {
namespace {

bool same_webhook(const std::optional<config::WebhookConfig>& a,
                  const std::optional<config::WebhookConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->url == b->url && a->timeout_s == b->timeout_s && a->queue_size == b->queue_size;
}

bool same_history(const config::HistorySettings& a, const config::HistorySettings& b) {
  return a.path == b.path && a.max_age_days == b.max_age_days && a.max_rows == b.max_rows &&
         a.max_bytes == b.max_bytes && a.live_samples == b.live_samples;
}

}  // namespace

ReloadPlan plan_reload(const config::Config& running,
                       const std::vector<proto::SymmetricKey>& running_keys,
                       const config::Config& fresh,
                       const std::vector<proto::SymmetricKey>& fresh_keys) {
  ReloadPlan plan;
  plan.keys_changed = fresh_keys != running_keys;
  plan.restart_webhook = !same_webhook(running.alerts.webhook, fresh.alerts.webhook);
  if (fresh.requests.max_in_flight != running.requests.max_in_flight) {
    plan.max_in_flight = static_cast<std::size_t>(fresh.requests.max_in_flight);
  }
  // The store is opened once, before the loop: a new file or new limits need a restart.
  plan.history_needs_restart = !same_history(running.history, fresh.history);
  return plan;
}

}  // namespace ntpmon::engine
