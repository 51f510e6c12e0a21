// Monitor driven by a scripted network: every test feeds fixed times and asserts exact actions.
//
// The harness plays the engine: it answers ResolveActions from a table, answers SendActions
// from per-address fake servers (reply after `delay_s`, KoD, or silence until the timeout), and
// calls on_tick exactly at next_wakeup_mono_ns().
#include "monitor/monitor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

namespace ntpmon::monitor {
namespace {

constexpr std::int64_t kBaseUnixNs = 1'700'000'000'000'000'000;

std::int64_t ns(double seconds) { return std::llround(seconds * 1e9); }

// How far the monitoring host's wall clock has been stepped away from true time (tests of
// clock steps set it; the fake servers keep true time). Never the machine's clock.
std::int64_t g_wall_step_ns = 0;

// True time at a monotonic instant: what the fake servers' clocks show (before their offset).
proto::NtpTimestamp true_ntp(std::int64_t mono_ns) {
  return proto::NtpTimestamp::from_unix_ns(kBaseUnixNs + mono_ns);
}

Now at_ns(std::int64_t mono_ns) {
  Now now;
  now.mono_ns = mono_ns;
  now.unix_ns = kBaseUnixNs + mono_ns + g_wall_step_ns;
  now.ntp = proto::NtpTimestamp::from_unix_ns(now.unix_ns);
  return now;
}

class ScriptedRandom final : public RandomSource {
 public:
  explicit ScriptedRandom(std::vector<double> values = {0.5}) : values_(std::move(values)) {}
  double uniform01() override {
    const double v = values_[std::min(next_, values_.size() - 1)];
    ++next_;
    ++draws;
    return v;
  }
  int draws = 0;

 private:
  std::vector<double> values_;
  std::size_t next_ = 0;
};

struct FakeServer {
  double offset_s = 0;
  double delay_s = 0.010;
  bool alive = true;
  std::optional<proto::Kiss> kod;
  std::string kod_code;
  bool reject_unsynchronized = false;
  std::uint8_t stratum = 2;
  proto::LeapIndicator leap = proto::LeapIndicator::kNoWarning;
};

FakeServer fake(double offset_s, double delay_s = 0.010, bool alive = true) {
  FakeServer f;
  f.offset_s = offset_s;
  f.delay_s = delay_s;
  f.alive = alive;
  return f;
}

struct Sent {
  std::int64_t mono_ns;
  SendAction action;
};

config::ServerConfig server(const std::string& name, const std::string& host) {
  config::ServerConfig s;
  s.name = name;
  s.host = host;
  return s;
}

config::Config config_of(std::vector<config::ServerConfig> servers) {
  config::Config c;
  c.servers = std::move(servers);
  return c;
}

bool is_loopback(const std::string& address) {
  return address == "::1" || address.rfind("127.", 0) == 0;
}

// The Monitor's defaults without the start pacing, so that every source of a test starts at
// 0 s (MonitorPoll.NewSourcesStartAtTheStartRate tests the pacing itself).
MonitorOptions unpaced() {
  MonitorOptions o;
  o.start_rate_per_s = 0;
  return o;
}

class Harness {
 public:
  explicit Harness(const config::Config& config, MonitorOptions options = unpaced())
      : monitor(config, std::move(options)) {
    for (const auto& s : config.servers) add_literal(s.host);
  }

  // Host names that are address literals resolve to themselves.
  void add_literal(const std::string& host) {
    if (host.find_first_not_of("0123456789.:") == std::string::npos) {
      dns[host] = {ResolvedAddress{host, 123, is_loopback(host)}};
    }
  }

  void start() {
    Actions actions;
    monitor.start(at_ns(now_ns), actions);
    absorb(actions);
  }

  void run_until(double t_s) {
    const std::int64_t end = ns(t_s);
    for (int guard = 0; guard < 1'000'000; ++guard) {
      const std::int64_t wake = monitor.next_wakeup_mono_ns().value_or(INT64_MAX);
      const std::int64_t event = events.empty() ? INT64_MAX : events.begin()->first;
      const std::int64_t t = std::min(wake, event);
      if (t > end) break;
      now_ns = std::max(now_ns, t);
      Actions actions;
      if (event <= t) {
        auto handler = std::move(events.begin()->second);
        events.erase(events.begin());
        handler(at_ns(now_ns), actions);
      } else {
        monitor.on_tick(at_ns(now_ns), random, actions);
      }
      absorb(actions);
    }
    now_ns = std::max(now_ns, end);
  }

  ReloadResult reload(const config::Config& config) {
    Actions actions;
    const ReloadResult result = monitor.reload(config, at_ns(now_ns), actions);
    reload_actions = actions;
    absorb(actions);
    return result;
  }

  std::shared_ptr<const Snapshot> snap() { return monitor.snapshot(at_ns(now_ns)); }

  ProbeRegistration probe(const std::string& target, const std::string& module = "default") {
    Actions actions;
    const ProbeRegistration r = monitor.probe(target, module, at_ns(now_ns), actions);
    absorb(actions);
    return r;
  }

  const ServerSnapshot* entry(const std::string& name, const std::string& address = "") {
    last_ = snap();
    for (const auto& s : last_->servers) {
      if (s->name == name && (address.empty() || s->address == address)) return s.get();
    }
    return nullptr;
  }

  std::vector<std::int64_t> send_times(const std::string& address) const {
    std::vector<std::int64_t> out;
    for (const Sent& s : sent) {
      if (s.action.address == address) out.push_back(s.mono_ns);
    }
    return out;
  }

  std::vector<std::int64_t> gaps(const std::string& address) const {
    const auto times = send_times(address);
    std::vector<std::int64_t> out;
    for (std::size_t i = 1; i < times.size(); ++i) out.push_back(times[i] - times[i - 1]);
    return out;
  }

  SourceId id_of(const std::string& name, std::size_t i = 0) const {
    return monitor.sources_of(*monitor.server_key(name)).at(i);
  }

  std::size_t count_logs(const std::string& event) const {
    return static_cast<std::size_t>(std::count_if(
        logs.begin(), logs.end(), [&](const LogEvent& l) { return l.event == event; }));
  }

  Monitor monitor;
  ScriptedRandom random;
  std::map<std::string, std::vector<ResolvedAddress>> dns;  // missing host: NXDOMAIN
  std::map<std::string, FakeServer> net;                    // missing address: silent
  std::vector<Sent> sent;
  std::vector<std::pair<std::int64_t, ResolveAction>> resolves;
  std::vector<AlertTransition> alerts;
  std::vector<LogEvent> logs;
  std::vector<SourceId> cancels;
  std::size_t samples = 0;
  std::vector<ServerKey> probe_updates;
  Actions reload_actions;
  std::int64_t now_ns = 0;

 private:
  using Handler = std::function<void(const Now&, Actions&)>;

  void absorb(Actions& actions) {
    for (const ResolveAction& r : actions.resolves) {
      resolves.emplace_back(now_ns, r);
      events.emplace(now_ns, [this, r](const Now& now, Actions& out) {
        const auto it = dns.find(r.host);
        if (it == dns.end()) {
          monitor.on_resolve_failed(r.server, "NXDOMAIN", now, out);
        } else {
          monitor.on_resolved(r.server, it->second, now, out);
        }
      });
    }
    for (const SendAction& s : actions.sends) {
      sent.push_back(Sent{now_ns, s});
      const auto it = net.find(s.address);
      const FakeServer behaviour = it == net.end() ? fake(0, 0, false) : it->second;
      const proto::NtpTimestamp t1 = at_ns(now_ns).ntp;
      const proto::NtpTimestamp true_send = true_ntp(now_ns);
      const SourceId id = s.source;
      if (!behaviour.alive) {
        events.emplace(now_ns + ns(s.timeout_s), [this, id](const Now& now, Actions& out) {
          monitor.on_timeout(id, now, out);
        });
        continue;
      }
      const std::int64_t reply_at = now_ns + ns(behaviour.delay_s);
      if (behaviour.kod) {
        events.emplace(reply_at, [this, id, behaviour](const Now& now, Actions& out) {
          monitor.on_kod(id, *behaviour.kod, behaviour.kod_code, now, out);
        });
        continue;
      }
      if (behaviour.reject_unsynchronized) {
        // A server that says leap 3, echoing the request's poll as chronyd does.
        proto::Header header;
        header.mode = proto::Mode::kServer;
        header.version = 4;
        header.leap = proto::LeapIndicator::kUnsynchronized;
        header.stratum = behaviour.stratum;
        header.poll = s.poll;
        header.refid = {192, 0, 2, 99};
        events.emplace(reply_at, [this, id, header](const Now&, Actions&) {
          monitor.on_rejected(id, proto::RejectReason::kUnsynchronized, &header);
        });
        events.emplace(now_ns + ns(s.timeout_s), [this, id](const Now& now, Actions& out) {
          monitor.on_timeout(id, now, out);
        });
        continue;
      }
      events.emplace(reply_at, [this, id, behaviour, t1, true_send](const Now& now, Actions& out) {
        Reply reply;
        reply.header.mode = proto::Mode::kServer;
        reply.header.version = 4;
        reply.header.stratum = behaviour.stratum;
        reply.header.leap = behaviour.leap;
        reply.header.precision = -20;
        reply.header.root_delay = proto::NtpShort::from_seconds(0.001);
        reply.header.root_dispersion = proto::NtpShort::from_seconds(0.001);
        reply.header.refid = {192, 0, 2, 99};
        reply.header.origin_ts = proto::NtpTimestamp::from_raw(0x1234);
        reply.header.receive_ts =
            proto::add_seconds(true_send, behaviour.delay_s / 2 + behaviour.offset_s);
        reply.header.transmit_ts = reply.header.receive_ts;
        reply.t1 = t1;
        reply.t4 = now.ntp;
        monitor.on_reply(id, reply, now, out);
      });
    }
    alerts.insert(alerts.end(), actions.alerts.begin(), actions.alerts.end());
    logs.insert(logs.end(), actions.logs.begin(), actions.logs.end());
    cancels.insert(cancels.end(), actions.cancels.begin(), actions.cancels.end());
    samples += actions.samples.size();
    probe_updates.insert(probe_updates.end(), actions.probe_updates.begin(),
                         actions.probe_updates.end());
  }

  std::multimap<std::int64_t, Handler> events;
  std::shared_ptr<const Snapshot> last_;
};

// ---- Polling ------------------------------------------------------------------------------

TEST(MonitorPoll, IburstSpacingThenTheNormalPoll) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.start();
  ASSERT_EQ(h.resolves.size(), 1U);
  EXPECT_EQ(h.resolves[0].second.host, "192.0.2.1");
  h.run_until(140);
  // 64 s * (1.01 + 0.04 * 0.5) = 65.92 s after the burst.
  const std::vector<std::int64_t> expected = {0, ns(2), ns(4), ns(6), ns(71.92), ns(137.84)};
  EXPECT_EQ(h.send_times("192.0.2.1"), expected);
  for (const Sent& s : h.sent) {
    EXPECT_EQ(s.action.port, 123);
    EXPECT_EQ(s.action.version, 4);
    EXPECT_EQ(s.action.timeout_s, 1.0);
  }
  EXPECT_EQ(h.random.draws, 3);  // the burst's first three requests draw nothing
  const ServerSnapshot* e = h.entry("a");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->requests, 6U);
  EXPECT_EQ(e->responses, 6U);
  EXPECT_EQ(e->reach, 0x3f);
  EXPECT_TRUE(e->up);
  EXPECT_EQ(e->poll_interval_s, 64);
  EXPECT_EQ(e->stratum, 2);
  EXPECT_EQ(e->refid, "192.0.2.99");
  EXPECT_NEAR(*e->offset_s, 0.0, 1e-9);
  EXPECT_NEAR(*e->delay_s, 0.010, 1e-9);
  EXPECT_EQ(e->last_sample_unix_ns, kBaseUnixNs + ns(137.85));
}

TEST(MonitorPoll, JitterComesFromTheRandomSource) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.random = ScriptedRandom({0.0, 0.25, 0.75, 0.5});
  h.net["192.0.2.1"] = FakeServer{};
  h.start();
  h.run_until(6 + 64.64 + 65.28 + 66.56 + 1);
  const std::vector<std::int64_t> expected = {ns(2), ns(2), ns(2), ns(64.64), ns(65.28), ns(66.56)};
  EXPECT_EQ(h.gaps("192.0.2.1"), expected);
  EXPECT_EQ(h.random.draws, 4);
}

TEST(MonitorPoll, ReachRegisterFillsThenDrainsToUnreachable) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.start();
  h.run_until(7);
  EXPECT_EQ(h.entry("a")->reach, 0x0f);
  EXPECT_EQ(h.entry("a")->state, ServerState::kSelected);  // 4 stages: close enough to vote
  h.net["192.0.2.1"].alive = false;
  h.run_until(72);  // miss at 72.92 not yet
  // The 5th request is outstanding: the snapshot's reach leaves it out until its outcome.
  EXPECT_EQ(h.entry("a")->reach, 0x0f);
  EXPECT_TRUE(h.entry("a")->up);  // the outcome of the 5th request is not known yet
  h.run_until(73);
  EXPECT_FALSE(h.entry("a")->up);
  h.run_until(210);
  EXPECT_EQ(h.entry("a")->reach, 0x78);
  EXPECT_EQ(h.entry("a")->state, ServerState::kUnreachable);
  EXPECT_EQ(h.count_logs("unreachable"), 1U);
}

TEST(MonitorPoll, UnreachableAfterThreeMissesThenExponentialBackOff) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.start();
  h.run_until(4.5);
  EXPECT_EQ(h.entry("a")->state, ServerState::kPending);  // two misses
  h.run_until(5.5);
  EXPECT_EQ(h.entry("a")->state, ServerState::kUnreachable);  // third miss at 5 s
  EXPECT_EQ(h.entry("a")->poll_interval_s, 128);
  h.run_until(4000);
  const std::vector<std::int64_t> expected = {ns(2),           ns(2),          ns(2),
                                              ns(128 * 1.03),  ns(256 * 1.03), ns(512 * 1.03),
                                              ns(1024 * 1.03), ns(1024 * 1.03)};
  auto gaps = h.gaps("192.0.2.1");
  gaps.resize(std::min(gaps.size(), expected.size()));
  EXPECT_EQ(gaps, expected);
  EXPECT_EQ(h.entry("a")->poll_interval_s, 1024);
  EXPECT_EQ(h.count_logs("unreachable"), 1U);
  // All addresses of the server unreachable: resolve again after 60 s, then hourly.
  ASSERT_EQ(h.resolves.size(), 3U);
  EXPECT_EQ(h.resolves[1].first, ns(65));
  EXPECT_EQ(h.resolves[2].first, ns(3665));
}

// Each entry says what its state was before the latest change and when that changed: the time
// of the event that decided it, however late the snapshot is taken.
TEST(MonitorSnapshot, StateChangesCarryThePreviousStateAndTheEventTime) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.start();
  h.run_until(4.5);
  EXPECT_EQ(h.entry("a")->state, ServerState::kPending);
  EXPECT_FALSE(h.entry("a")->previous_state.has_value());  // never changed
  EXPECT_EQ(h.entry("a")->state_changed_unix_ns, 0);
  h.run_until(60);  // the third miss at 5 s makes it unreachable; no snapshot in between
  const ServerSnapshot* a = h.entry("a");
  EXPECT_EQ(a->state, ServerState::kUnreachable);
  EXPECT_EQ(a->previous_state, ServerState::kPending);
  EXPECT_EQ(a->state_changed_unix_ns, kBaseUnixNs + ns(5));
  h.run_until(100);  // unchanged: the same change is kept
  EXPECT_EQ(h.entry("a")->state_changed_unix_ns, kBaseUnixNs + ns(5));

  // Back: a burst refills the filter and the selection takes it (at an event's time, after
  // the back-off's poll at 138.84 s).
  h.net["192.0.2.1"] = FakeServer{};
  h.run_until(1000);
  a = h.entry("a");
  EXPECT_EQ(a->state, ServerState::kSelected);
  // From what it was on the way back (unsynchronized while its first samples are too far for
  // a verdict), not from a state it never left.
  ASSERT_TRUE(a->previous_state.has_value());
  EXPECT_NE(*a->previous_state, ServerState::kSelected);
  EXPECT_NE(*a->previous_state, ServerState::kUnreachable) << "the way back has steps between";
  EXPECT_GT(a->state_changed_unix_ns, kBaseUnixNs + ns(138));
  EXPECT_LT(a->state_changed_unix_ns, kBaseUnixNs + ns(420));
}

TEST(MonitorPoll, UnreachableAlertFiresAfterTheHoldAndClearsWhenBack) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.start();
  h.run_until(6.5);
  EXPECT_TRUE(h.alerts.empty());  // unreachable at 5 s: first bad evaluation
  h.run_until(140);
  ASSERT_EQ(h.alerts.size(), 1U);  // 2nd at 7 s, 3rd at 138.84 s
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kUnreachable);
  EXPECT_TRUE(h.alerts[0].firing);
  EXPECT_EQ(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(138.84));
  EXPECT_EQ(h.alerts[0].server, "a");
  EXPECT_EQ(h.alerts[0].address, "192.0.2.1");
  h.net["192.0.2.1"] = FakeServer{};
  const std::size_t before = h.sent.size();
  h.run_until(1000);
  // Back at 401.53 s: the back-off ends and a new burst refills the filter.
  const auto times = h.send_times("192.0.2.1");
  ASSERT_GE(times.size(), before + 4);
  EXPECT_EQ(times[before], ns(401.52));
  EXPECT_EQ(times[before + 1] - times[before], ns(2.01));
  EXPECT_EQ(times[before + 2] - times[before + 1], ns(2));
  EXPECT_EQ(times[before + 3] - times[before + 2], ns(2));
  EXPECT_EQ(times[before + 4] - times[before + 3], ns(64 * 1.03));
  ASSERT_EQ(h.alerts.size(), 2U);
  EXPECT_FALSE(h.alerts[1].firing);
  EXPECT_EQ(h.alerts[1].at_unix_ns, kBaseUnixNs + ns(405.54));  // third good evaluation
  EXPECT_EQ(h.count_logs("reachable"), 1U);
}

TEST(MonitorPoll, KodRateDoublesTheIntervalAndRaisesTheMinimum) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.start();
  h.run_until(10);
  h.net["192.0.2.1"].kod = proto::Kiss::kRate;
  h.net["192.0.2.1"].kod_code = "RATE";
  h.run_until(72);  // RATE answers the request of 71.92 s
  EXPECT_EQ(h.entry("a")->state, ServerState::kKod);
  EXPECT_EQ(h.entry("a")->poll_interval_s, 128);
  EXPECT_EQ(h.entry("a")->kod.at("RATE"), 1U);
  h.net["192.0.2.1"].kod.reset();
  h.run_until(400);
  const auto times = h.send_times("192.0.2.1");
  ASSERT_GE(times.size(), 7U);
  EXPECT_EQ(times[4], ns(71.92));
  EXPECT_EQ(times[5], ns(71.93 + 128));  // a whole new interval after the KoD
  EXPECT_EQ(times[6] - times[5], ns(128 * 1.03));
  EXPECT_EQ(h.entry("a")->state, ServerState::kSelected);
  EXPECT_EQ(h.entry("a")->poll_interval_s, 128);
}

TEST(MonitorPoll, KodDenyStopsPollingForGood) {
  Harness h(config_of({server("a", "192.0.2.1"), server("b", "192.0.2.2")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.net["192.0.2.1"].kod = proto::Kiss::kDeny;
  h.net["192.0.2.1"].kod_code = "DENY";
  h.net["192.0.2.2"] = FakeServer{};
  h.start();
  h.run_until(86400);
  EXPECT_EQ(h.send_times("192.0.2.1"), std::vector<std::int64_t>{0});
  EXPECT_GT(h.send_times("192.0.2.2").size(), 1000U);
  EXPECT_EQ(h.cancels, std::vector<SourceId>{h.id_of("a")});
  const ServerSnapshot* e = h.entry("a");
  EXPECT_EQ(e->state, ServerState::kKod);
  EXPECT_EQ(e->kod.at("DENY"), 1U);
  EXPECT_EQ(e->error, "stopped by kiss-o'-death DENY");
  ASSERT_EQ(e->alerts.size(), 1U);
  EXPECT_EQ(e->alerts[0].kind, AlertKind::kKod);
  ASSERT_FALSE(h.alerts.empty());
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kKod);
  EXPECT_EQ(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(0.01));  // at once: no hold for DENY
  EXPECT_EQ(h.count_logs("kod_stop"), 1U);
}

TEST(MonitorPoll, NewSourcesStartAtTheStartRate) {
  MonitorOptions options;
  options.start_rate_per_s = 2;  // one new source every 0.5 s
  std::vector<config::ServerConfig> servers;
  for (int i = 1; i <= 5; ++i) {
    servers.push_back(server("s" + std::to_string(i), "192.0.2." + std::to_string(i)));
  }
  Harness h(config_of(servers), options);
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.001);
  h.start();
  h.run_until(3);
  for (int i = 1; i <= 5; ++i) {
    const auto times = h.send_times("192.0.2." + std::to_string(i));
    ASSERT_FALSE(times.empty()) << i;
    EXPECT_EQ(times.front(), ns(0.5 * (i - 1))) << i;
  }
}

TEST(MonitorPoll, LoopbackMayPollEverySecondOthersNotWithoutExplicitConfig) {
  MonitorOptions options;
  options.default_poll_s = 1;  // not from the configuration file: not explicit
  Harness h(config_of({server("local", "127.0.0.1"), server("remote", "192.0.2.1")}), options);
  h.net["127.0.0.1"] = FakeServer{};
  h.net["192.0.2.1"] = FakeServer{};
  h.start();
  h.run_until(10);
  EXPECT_EQ(h.entry("local")->poll_interval_s, 1);
  EXPECT_EQ(h.entry("remote")->poll_interval_s, 64);
  const std::vector<std::int64_t> local = {0, ns(1), ns(2), ns(3), ns(4.03), ns(5.06)};
  auto times = h.send_times("127.0.0.1");
  times.resize(6);
  EXPECT_EQ(times, local);
  EXPECT_EQ(h.send_times("192.0.2.1").size(), 4U);  // the burst only

  // A global poll.min below 64 s is explicit; so is a per-server poll.
  config::Config explicit_min = config_of({server("remote", "192.0.2.1")});
  explicit_min.poll.min_poll_s = 16;
  Harness h2(explicit_min, options);
  h2.start();
  h2.run_until(1);
  EXPECT_EQ(h2.entry("remote")->poll_interval_s, 16);

  config::Config per_server = config_of({server("remote", "192.0.2.1")});
  per_server.servers[0].poll_s = 8;
  Harness h3(per_server);
  h3.start();
  h3.run_until(1);
  EXPECT_EQ(h3.entry("remote")->poll_interval_s, 8);

  // Defaults only: everybody at 64 s.
  Harness h4(config_of({server("local", "127.0.0.1")}));
  h4.start();
  h4.run_until(1);
  EXPECT_EQ(h4.entry("local")->poll_interval_s, 64);
}

TEST(MonitorPoll, RejectedRepliesAreCountedByReason) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.net["192.0.2.1"].reject_unsynchronized = true;
  h.start();
  h.run_until(7);
  const ServerSnapshot* e = h.entry("a");
  EXPECT_EQ(e->requests, 4U);
  EXPECT_EQ(e->responses, 0U);
  EXPECT_EQ(e->rejected[static_cast<std::size_t>(proto::RejectReason::kUnsynchronized)], 4U);
  EXPECT_EQ(e->state, ServerState::kUnsynchronized);
  // No reply was accepted, but they answered: what they said about the server is shown.
  EXPECT_EQ(e->leap, 3);
  EXPECT_EQ(e->stratum, 2);
  EXPECT_EQ(e->version, 4);
  EXPECT_EQ(e->refid, "192.0.2.99");
  // Our poll echoed: 64 s at first, 128 s in the last request, sent after the third miss had
  // backed the interval off (the request announces the interval it is polled at).
  EXPECT_EQ(e->server_poll_s, 128.0);
  EXPECT_EQ(h.sent.front().action.poll, 6);
  EXPECT_EQ(h.sent.back().action.poll, 7);
  EXPECT_FALSE(e->offset_s.has_value());
  ASSERT_EQ(h.alerts.size(), 1U);  // third evaluation: the timeout at 5 s
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kUnsynchronized);
  EXPECT_EQ(h.alerts[0].message, "server reports it is unsynchronized");
  EXPECT_EQ(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(5));
}

// Requests carry the source's poll interval as a poll exponent (rounded up to a power of two),
// including the burst requests: the field is how often we poll, not the burst spacing.
TEST(MonitorPoll, RequestsCarryThePollExponentOfTheSource) {
  config::ServerConfig slow = server("slow", "192.0.2.1");
  slow.poll_s = 1024;
  config::ServerConfig odd = server("odd", "192.0.2.2");
  odd.poll_s = 100;
  config::ServerConfig fast = server("fast", "127.0.0.1");
  fast.poll_s = 1;
  Harness h(config_of({slow, odd, fast, server("default", "192.0.2.3")}));
  // All answer: a miss would back the interval off (and raise the exponent with it).
  for (const char* a : {"192.0.2.1", "192.0.2.2", "127.0.0.1", "192.0.2.3"}) {
    h.net[a] = fake(0, 0.01, true);
  }
  h.start();
  h.run_until(7);
  std::map<std::string, std::vector<int>> polls;
  for (const Sent& s : h.sent) polls[s.action.address].push_back(s.action.poll);
  ASSERT_GE(polls["192.0.2.1"].size(), 2U);  // the burst
  for (const int p : polls["192.0.2.1"]) EXPECT_EQ(p, 10);
  for (const int p : polls["192.0.2.2"]) EXPECT_EQ(p, 7);
  for (const int p : polls["127.0.0.1"]) EXPECT_EQ(p, 0);
  ASSERT_FALSE(polls["192.0.2.3"].empty());
  for (const int p : polls["192.0.2.3"]) EXPECT_EQ(p, 6);  // default poll.min 64 s
}

TEST(MonitorPoll, SendErrorCountsAsAMissAndIsShown) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.start();
  h.run_until(0);
  Actions out;
  h.monitor.on_send_error(h.id_of("a"), "Network is unreachable", at_ns(0), out);
  EXPECT_EQ(out.logs.size(), 1U);
  EXPECT_EQ(out.logs[0].event, "send_error");
  const ServerSnapshot* e = h.entry("a");
  EXPECT_EQ(e->error, "send failed: Network is unreachable");
  EXPECT_FALSE(e->up);
}

// ---- DNS ----------------------------------------------------------------------------------

TEST(MonitorDns, OneHostBecomesOneSourcePerAddressAndFollowsChanges) {
  Harness h(config_of({server("pool", "pool.test")}));
  h.dns["pool.test"] = {
      {"192.0.2.1", 123, false}, {"192.0.2.2", 123, false}, {"192.0.2.1", 123, false}};
  h.net["192.0.2.1"] = FakeServer{};
  h.net["192.0.2.2"] = FakeServer{};
  h.start();
  h.run_until(1);
  EXPECT_EQ(h.monitor.source_count(), 2U);
  auto snap = h.snap();
  ASSERT_EQ(snap->servers.size(), 2U);
  EXPECT_EQ(snap->servers[0]->name, "pool");
  EXPECT_EQ(snap->servers[0]->host, "pool.test");
  EXPECT_EQ(snap->servers[0]->address, "192.0.2.1");
  EXPECT_EQ(snap->servers[1]->name, "pool");
  EXPECT_EQ(snap->servers[1]->address, "192.0.2.2");
  EXPECT_EQ(h.send_times("192.0.2.1").front(), 0);
  EXPECT_EQ(h.send_times("192.0.2.2").front(), 0);
  // Polls and replies keep the layout (the same addresses at the same positions).
  const std::uint64_t layout = snap->layout_generation;
  h.run_until(600);
  EXPECT_EQ(h.snap()->layout_generation, layout);
  const SourceId first = h.id_of("pool", 0);
  const SourceId second = h.id_of("pool", 1);

  h.dns["pool.test"] = {{"192.0.2.2", 123, false}, {"192.0.2.3", 123, false}};
  h.net["192.0.2.3"] = FakeServer{};
  h.run_until(3601);
  ASSERT_EQ(h.resolves.size(), 2U);
  EXPECT_EQ(h.resolves[1].first, ns(3600));
  EXPECT_EQ(h.cancels, std::vector<SourceId>{first});
  EXPECT_EQ(h.monitor.sources_of(*h.monitor.server_key("pool")),
            (std::vector<SourceId>{second, second + 1}));
  EXPECT_EQ(h.send_times("192.0.2.3").front(), ns(3600));
  snap = h.snap();
  ASSERT_EQ(snap->servers.size(), 2U);
  EXPECT_EQ(snap->servers[0]->address, "192.0.2.2");
  EXPECT_EQ(snap->servers[0]->requests, 58U);  // kept its counters: 4 + 54 polls
  EXPECT_EQ(snap->servers[1]->address, "192.0.2.3");
  EXPECT_NE(snap->layout_generation, layout);  // as many entries, other addresses
  // A late event for the removed source is ignored.
  Actions out;
  h.monitor.on_timeout(first, at_ns(ns(3601)), out);
  EXPECT_TRUE(out.empty());
}

// A pool entry monitors the first max_addresses distinct addresses of the answer, in its order.
TEST(MonitorDns, PoolEntryMonitorsAtMostMaxAddressesDistinctAddresses) {
  config::Config c = config_of({server("pool", "pool.test")});
  c.servers[0].max_addresses = 2;
  Harness h(c);
  h.dns["pool.test"] = {{"192.0.2.1", 123, false},
                        {"192.0.2.1", 123, false},
                        {"192.0.2.2", 123, false},
                        {"192.0.2.3", 123, false}};
  h.start();
  h.run_until(1);
  EXPECT_EQ(h.monitor.source_count(), 2U);
  const auto snap = h.snap();
  ASSERT_EQ(snap->servers.size(), 2U);
  EXPECT_EQ(snap->servers[0]->address, "192.0.2.1");
  EXPECT_EQ(snap->servers[1]->address, "192.0.2.2");
}

TEST(MonitorDns, ResolveFailureRetriesWithBackOffAndShowsTheError) {
  Harness h(config_of({server("bad", "nx.test")}));
  h.start();
  h.run_until(31);
  std::vector<std::int64_t> times;
  for (const auto& r : h.resolves) times.push_back(r.first);
  EXPECT_EQ(times, (std::vector<std::int64_t>{0, ns(10), ns(30)}));
  const ServerSnapshot* e = h.entry("bad");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->address, "");
  EXPECT_EQ(e->state, ServerState::kUnreachable);
  EXPECT_EQ(e->error, "cannot resolve host nx.test: NXDOMAIN");
  ASSERT_EQ(h.alerts.size(), 1U);  // third failure
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kUnreachable);
  EXPECT_EQ(h.alerts[0].message, "cannot resolve host nx.test: NXDOMAIN");
  EXPECT_EQ(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(30));

  h.dns["nx.test"] = {{"192.0.2.7", 123, false}};
  h.net["192.0.2.7"] = FakeServer{};
  h.run_until(71);
  EXPECT_EQ(h.resolves.back().first, ns(70));
  ASSERT_EQ(h.alerts.size(), 2U);
  EXPECT_FALSE(h.alerts[1].firing);
  e = h.entry("bad");
  EXPECT_EQ(e->address, "192.0.2.7");
  EXPECT_FALSE(e->error.has_value());
}

// ---- Selection ----------------------------------------------------------------------------

std::vector<config::ServerConfig> four_servers() {
  return {server("a", "192.0.2.1"), server("b", "192.0.2.2"), server("c", "192.0.2.3"),
          server("d", "192.0.2.4")};
}

TEST(MonitorSelection, MarksTheFalsetickerAmongFour) {
  Harness h(config_of(four_servers()));
  h.net["192.0.2.1"] = fake(0.001);
  h.net["192.0.2.2"] = fake(0.002);
  h.net["192.0.2.3"] = fake(-0.001);
  h.net["192.0.2.4"] = fake(3.0);
  h.start();
  h.run_until(600);
  auto snap = h.snap();
  EXPECT_EQ(h.entry("d")->state, ServerState::kFalseticker);
  int selected = 0;
  for (const char* name : {"a", "b", "c"}) {
    const ServerState state = h.entry(name)->state;
    EXPECT_TRUE(state == ServerState::kSelected || state == ServerState::kCandidate) << name;
    selected += state == ServerState::kSelected ? 1 : 0;
  }
  EXPECT_EQ(selected, 1);
  EXPECT_EQ(snap->truechimers, 3);
  EXPECT_TRUE(snap->majority);
  ASSERT_TRUE(snap->system_offset_s.has_value());
  EXPECT_GE(*snap->system_offset_s, -0.001);
  EXPECT_LE(*snap->system_offset_s, 0.002);
  EXPECT_NEAR(*h.entry("d")->consensus_offset_s, 3.0 - *snap->system_offset_s, 1e-9);
  // The falseticker alert fired (after three evaluations) and so did its offset alert.
  std::vector<AlertKind> kinds;
  for (const auto& a : h.alerts) {
    EXPECT_EQ(a.server, "d");
    kinds.push_back(a.kind);
  }
  EXPECT_EQ(kinds, (std::vector<AlertKind>{AlertKind::kOffset, AlertKind::kFalseticker}));
}

// Four agreeing servers of different delays, polled for 1000 s: one of them is selected.
void start_four_agreeing(Harness& h) {
  h.net["192.0.2.1"] = fake(0.0010, 0.004);
  h.net["192.0.2.2"] = fake(0.0012, 0.008);
  h.net["192.0.2.3"] = fake(0.0008, 0.012);
  h.net["192.0.2.4"] = fake(0.0011, 0.016);
  h.start();
  h.run_until(1000);
}

TEST(MonitorSelection, FailsOverWithinFourPollsWhenTheSystemPeerGoesSilent) {
  Harness h(config_of(four_servers()));
  start_four_agreeing(h);
  auto snap = h.snap();
  ASSERT_TRUE(snap->selected.has_value());
  const std::string peer = *snap->selected;
  const std::string address = *snap->selected_address;
  const std::uint64_t changes = snap->selection_changes;
  EXPECT_EQ(h.entry(peer)->state, ServerState::kSelected);

  h.net[address].alive = false;
  const std::size_t sent_before = h.send_times(address).size();
  double t = 1000;
  while (h.snap()->selected == peer && t < 5000) {
    t += 1;
    h.run_until(t);
  }
  snap = h.snap();
  ASSERT_TRUE(snap->selected.has_value());
  EXPECT_NE(*snap->selected, peer);
  const std::size_t polls = h.send_times(address).size() - sent_before;
  EXPECT_LE(polls, 4U);
  EXPECT_EQ(polls, 3U);  // the third miss makes it unreachable; the next selection moves on
  EXPECT_EQ(snap->selection_changes, changes + 1);
  const SelectionEvent& event = snap->recent_selection_changes.back();
  EXPECT_EQ(event.from, peer);
  EXPECT_EQ(event.from_address, address);
  EXPECT_EQ(event.to, *snap->selected);
  EXPECT_EQ(event.reason, "unreachable");
  EXPECT_EQ(h.entry(peer)->state, ServerState::kUnreachable);
  const auto it = std::find_if(h.logs.rbegin(), h.logs.rend(),
                               [](const LogEvent& l) { return l.event == "selection_change"; });
  ASSERT_NE(it, h.logs.rend());
  EXPECT_EQ(it->fields[0], (std::pair<std::string, std::string>{"from", peer}));
  EXPECT_EQ(it->fields[4], (std::pair<std::string, std::string>{"reason", "unreachable"}));
}

TEST(MonitorSnapshot, AFailoverIsTwoStateChangesAtTheSelectionsTime) {
  Harness h(config_of(four_servers()));
  start_four_agreeing(h);
  const std::string peer = *h.snap()->selected;
  const std::string address = *h.snap()->selected_address;
  h.net[address].alive = false;
  double t = 1000;
  while (h.snap()->selected == peer && t < 5000) h.run_until(t += 1);
  const auto snap = h.snap();
  const std::string next = *snap->selected;
  const SelectionEvent& event = snap->recent_selection_changes.back();
  const ServerSnapshot* old_peer = h.entry(peer);
  const ServerSnapshot* new_peer = h.entry(next);
  EXPECT_EQ(old_peer->previous_state, ServerState::kSelected);
  EXPECT_EQ(old_peer->state, ServerState::kUnreachable);
  EXPECT_EQ(new_peer->previous_state, ServerState::kCandidate);
  EXPECT_EQ(new_peer->state, ServerState::kSelected);
  EXPECT_EQ(new_peer->state_changed_unix_ns, event.at_unix_ns);
  EXPECT_LE(old_peer->state_changed_unix_ns, event.at_unix_ns);
  EXPECT_GT(old_peer->state_changed_unix_ns, kBaseUnixNs + ns(1000));
}

TEST(MonitorSelection, RunsAtMostOncePerIntervalNotPerReply) {
  std::vector<config::ServerConfig> servers;
  for (int i = 1; i <= 20; ++i) {
    servers.push_back(server("s" + std::to_string(i), "192.0.2." + std::to_string(i)));
  }
  Harness h(config_of(servers));
  for (int i = 1; i <= 20; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.001);
  h.start();
  // All 20 replies of one round land within 10 ms: a single selection run after them, at the
  // earliest one selection_interval after the previous run (at 0 s, after DNS).
  h.run_until(2.5);
  EXPECT_EQ(h.monitor.next_wakeup_mono_ns(), ns(4));  // only the next burst round is pending
}

// ---- Alerts -------------------------------------------------------------------------------

TEST(MonitorAlerts, OffsetFiresAfterThreeBadPollsAndClearsAfterThreeGood) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.net["192.0.2.1"] = fake(0.100, 0.010);
  h.start();
  h.run_until(100);
  ASSERT_EQ(h.alerts.size(), 1U);
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kOffset);
  EXPECT_TRUE(h.alerts[0].firing);
  EXPECT_EQ(h.alerts[0].message, "offset +100.0 ms above 50 ms");
  EXPECT_EQ(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(4.01));
  ASSERT_EQ(h.entry("a")->alerts.size(), 1U);
  EXPECT_EQ(h.entry("a")->alerts[0].since_unix_ns, kBaseUnixNs + ns(4.01));
  // Good samples with a lower delay: the filter picks them at once.
  h.net["192.0.2.1"] = fake(0.0, 0.005);
  h.run_until(300);
  ASSERT_EQ(h.alerts.size(), 2U);
  EXPECT_FALSE(h.alerts[1].firing);
  EXPECT_EQ(h.alerts[1].at_unix_ns, kBaseUnixNs + ns(269.685));  // 137.84, 203.76, 269.68
  EXPECT_TRUE(h.entry("a")->alerts.empty());
}

TEST(MonitorAlerts, HoldOneFiresOnTheFirstBadPoll) {
  config::Config c = config_of({server("a", "192.0.2.1")});
  c.alerts.hold = 1;
  Harness h(c, MonitorOptions{});
  h.net["192.0.2.1"] = fake(0.100, 0.010);
  h.start();
  h.run_until(1);
  ASSERT_EQ(h.alerts.size(), 1U);
  EXPECT_EQ(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(0.01));
}

TEST(MonitorAlerts, ASingleBadSampleDoesNotFire) {
  Harness h(config_of({server("a", "192.0.2.1")}));
  h.net["192.0.2.1"] = fake(0.0, 0.010);
  h.start();
  h.run_until(100);
  // One bad sample, picked by the filter (lowest delay so far), then better good ones.
  h.net["192.0.2.1"] = fake(0.300, 0.009);
  h.run_until(138);
  EXPECT_NEAR(*h.entry("a")->offset_s, 0.300, 1e-9);
  h.net["192.0.2.1"] = fake(0.0, 0.008);
  h.run_until(1000);
  EXPECT_TRUE(h.alerts.empty());
  EXPECT_NEAR(*h.entry("a")->offset_s, 0.0, 1e-9);
}

// ---- Snapshot -----------------------------------------------------------------------------

TEST(MonitorSnapshot, UnchangedEntriesAreSharedChangedOnesRebuilt) {
  Harness h(config_of({server("a", "192.0.2.1"), server("b", "192.0.2.2")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.net["192.0.2.2"] = FakeServer{};
  h.start();
  h.run_until(10);
  const auto s1 = h.snap();
  const auto s2 = h.snap();
  ASSERT_EQ(s1->servers.size(), 2U);
  EXPECT_NE(s1.get(), s2.get());
  EXPECT_EQ(s1->servers[0].get(), s2->servers[0].get());
  EXPECT_EQ(s1->servers[1].get(), s2->servers[1].get());

  h.monitor.on_rejected(h.id_of("a"), proto::RejectReason::kBogusOrigin);
  const auto s3 = h.snap();
  EXPECT_NE(s3->servers[0].get(), s2->servers[0].get());
  EXPECT_EQ(s3->servers[1].get(), s2->servers[1].get());
  EXPECT_EQ(s3->servers[0]->rejected[static_cast<std::size_t>(proto::RejectReason::kBogusOrigin)],
            1U);
  EXPECT_EQ(s2->servers[0]->rejected[static_cast<std::size_t>(proto::RejectReason::kBogusOrigin)],
            0U);  // the old snapshot is immutable

  // A reply rebuilds only its source (the selection has not run yet).
  Reply reply;
  reply.header.stratum = 1;
  reply.header.refid = {'G', 'P', 'S', 0};
  reply.t1 = at_ns(ns(10)).ntp;
  reply.t4 = proto::add_seconds(reply.t1, 0.002);
  reply.header.receive_ts = proto::add_seconds(reply.t1, 0.001);
  reply.header.transmit_ts = reply.header.receive_ts;
  Actions out;
  h.monitor.on_reply(h.id_of("b"), reply, at_ns(ns(10.002)), out);
  const auto s4 = h.snap();
  EXPECT_EQ(s4->servers[0].get(), s3->servers[0].get());
  EXPECT_NE(s4->servers[1].get(), s3->servers[1].get());
  EXPECT_EQ(s4->servers[1]->refid, "GPS");
}

// ---- Reload -------------------------------------------------------------------------------

TEST(MonitorReload, KeepsCountersOfUnchangedServers) {
  Harness h(config_of({server("a", "192.0.2.1"), server("b", "192.0.2.2")}));
  h.net["192.0.2.1"] = FakeServer{};
  h.net["192.0.2.2"] = FakeServer{};
  h.start();
  h.run_until(140);
  const SourceId a = h.id_of("a");
  const SourceId b = h.id_of("b");
  EXPECT_EQ(h.entry("a")->requests, 6U);
  const std::uint64_t layout = h.snap()->layout_generation;

  config::Config next = config_of({server("a", "192.0.2.1"), server("c", "192.0.2.3")});
  next.servers[0].expected_stratum = 1;  // a non-identity change: still the same server
  h.add_literal("192.0.2.3");
  h.net["192.0.2.3"] = FakeServer{};
  const ReloadResult result = h.reload(next);
  EXPECT_NE(h.snap()->layout_generation, layout);
  EXPECT_EQ(result.kept, 1U);
  EXPECT_EQ(result.removed, 1U);
  EXPECT_EQ(result.added, 1U);
  EXPECT_EQ(h.reload_actions.cancels, std::vector<SourceId>{b});
  ASSERT_EQ(h.reload_actions.resolves.size(), 1U);
  EXPECT_EQ(h.reload_actions.resolves[0].host, "192.0.2.3");
  EXPECT_FALSE(h.monitor.server_key("b").has_value());
  h.run_until(141);
  EXPECT_EQ(h.id_of("a"), a);
  const auto snap = h.snap();
  ASSERT_EQ(snap->servers.size(), 2U);
  EXPECT_EQ(snap->servers[0]->name, "a");
  EXPECT_EQ(snap->servers[0]->requests, 6U);
  EXPECT_EQ(snap->servers[0]->responses, 6U);
  EXPECT_EQ(snap->servers[0]->reach, 0x3f);
  EXPECT_EQ(snap->servers[1]->name, "c");
  EXPECT_EQ(snap->config_reloads, 1U);
  // a keeps its schedule: next poll 65.92 s after 137.84 s.
  h.run_until(204);
  EXPECT_EQ(h.send_times("192.0.2.1").back(), ns(203.76));

  // Changing the host makes it another server: removed and added.
  config::Config moved = config_of({server("a", "192.0.2.9"), server("c", "192.0.2.3")});
  h.add_literal("192.0.2.9");
  const ReloadResult r2 = h.reload(moved);
  EXPECT_EQ(r2.kept, 1U);
  EXPECT_EQ(r2.removed, 1U);
  EXPECT_EQ(r2.added, 1U);
  EXPECT_EQ(h.reload_actions.cancels, std::vector<SourceId>{a});
  EXPECT_EQ(h.snap()->config_reloads, 2U);
}

// Every key outside the server list reloads: alerts.hold takes effect at the next evaluation.
TEST(MonitorReload, AlertHoldTakesEffectWithoutARestart) {
  config::Config c = config_of({server("a", "192.0.2.1")});
  c.alerts.hold = 1000;
  Harness h(c);
  h.net["192.0.2.1"] = fake(0.100);  // 100 ms: above the 50 ms default threshold
  h.start();
  h.run_until(30);
  EXPECT_TRUE(h.alerts.empty());
  c.alerts.hold = 1;
  h.reload(c);
  h.run_until(200);
  ASSERT_EQ(h.alerts.size(), 1U);
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kOffset);
  EXPECT_TRUE(h.alerts[0].firing);
  EXPECT_GT(h.alerts[0].at_unix_ns, kBaseUnixNs + ns(30));
}

// dns.refresh_s reloads: a shorter period brings the next refresh forward to reload + period.
TEST(MonitorReload, ShorterDnsRefreshBringsTheNextRefreshForward) {
  config::Config c = config_of({server("pool", "pool.test")});
  Harness h(c);
  h.dns["pool.test"] = {{"192.0.2.1", 123, false}};
  h.net["192.0.2.1"] = FakeServer{};
  h.start();
  h.run_until(10);
  ASSERT_EQ(h.resolves.size(), 1U);
  c.dns.refresh_s = 60;
  h.reload(c);
  h.run_until(150);
  ASSERT_EQ(h.resolves.size(), 3U);  // at 0, 10 + 60 and 70 + 60 s
  EXPECT_EQ(h.resolves[1].first, ns(70));
  EXPECT_EQ(h.resolves[2].first, ns(130));
}

// A server's own thresholds override the global ones. Sources keep their own copy of that
// policy; a reload must reach it, for a server's own thresholds, the global ones and the
// expected stratum alike.
TEST(MonitorAlerts, PerServerThresholdOverridesTheGlobalOneAndAReloadReachesSources) {
  config::Config c = config_of({server("a", "192.0.2.1"), server("b", "192.0.2.2")});
  c.servers[1].alert_thresholds = config::AlertThresholds{200.0, 200.0};
  Harness h(c);
  h.net["192.0.2.1"] = fake(0.100);
  h.net["192.0.2.2"] = fake(0.100);
  h.start();
  h.run_until(10);
  ASSERT_EQ(h.alerts.size(), 1U);  // a's offset, above the global 50 ms
  EXPECT_EQ(h.alerts[0].server, "a");
  EXPECT_TRUE(h.alerts[0].firing);

  // Now a has its own 200 ms, b falls back to a global 20 ms and expects stratum 1.
  config::Config next = config_of({server("a", "192.0.2.1"), server("b", "192.0.2.2")});
  next.servers[0].alert_thresholds = config::AlertThresholds{200.0, 200.0};
  next.servers[1].expected_stratum = 1;
  next.alert_thresholds = config::AlertThresholds{20.0, 200.0};
  const ReloadResult result = h.reload(next);
  EXPECT_EQ(result.kept, 2U);
  h.run_until(400);
  std::set<std::string> firing;
  for (const auto& alert : h.alerts) {
    const std::string key = alert.server + "/" + std::string(to_string(alert.kind));
    if (alert.firing) {
      firing.insert(key);
    } else {
      firing.erase(key);
    }
  }
  EXPECT_EQ(firing, (std::set<std::string>{"b/offset", "b/stratum"}));
  bool a_cleared = false;
  for (const auto& alert : h.alerts) {
    if (alert.server == "a" && alert.kind == AlertKind::kOffset && !alert.firing) a_cleared = true;
  }
  EXPECT_TRUE(a_cleared);
}

// ---- Probe targets (multi-target probing, docs/probe.md) ------------------------------------

config::Config probe_config(std::size_t max_targets = 1000, double ttl_s = 600) {
  config::Config c = config_of({server("a", "192.0.2.1")});
  c.probe.max_targets = max_targets;
  c.probe.target_ttl_s = ttl_s;
  config::ProbeModule fast;
  fast.name = "fast";
  fast.poll = config::PollSettings{1.0, 1.0};
  config::ProbeModule v3;
  v3.name = "v3";
  v3.version = 3;
  c.probe.modules = {config::default_probe_module(), fast, v3};  // sorted by name
  return c;
}

TEST(MonitorProbe, ANewTargetIsPolledAndAnswersFromItsFilter) {
  Harness h(probe_config());
  h.net["192.0.2.1"] = FakeServer{};
  h.net["198.51.100.7"] = fake(0.025);
  h.add_literal("198.51.100.7");
  h.start();
  h.run_until(1);
  const ProbeRegistration r = h.probe("198.51.100.7");
  EXPECT_FALSE(r.rejected);
  EXPECT_TRUE(r.added);
  ASSERT_TRUE(h.monitor.probe_result(r.target));
  EXPECT_FALSE(h.monitor.probe_result(r.target)->measured);
  EXPECT_FALSE(h.monitor.probe_result(r.target)->settled);
  h.run_until(1.005);  // resolved, sent; the reply takes 10 ms
  EXPECT_TRUE(h.probe_updates.empty());
  h.run_until(1.02);
  ASSERT_EQ(h.probe_updates, std::vector<ServerKey>{r.target});
  const auto result = h.monitor.probe_result(r.target);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->measured);
  EXPECT_TRUE(result->success);
  EXPECT_NEAR(*result->target->offset_s, 0.025, 1e-9);
  EXPECT_EQ(result->target->name, "198.51.100.7:123");
  EXPECT_EQ(result->target->probe_module, "default");
  EXPECT_EQ(result->target->request_version, 4);
  // A second scrape renews the same target.
  const ProbeRegistration again = h.probe("198.51.100.7:123");
  EXPECT_FALSE(again.added);
  EXPECT_EQ(again.target, r.target);
  // Probe targets are apart in the snapshot, write no history and are not `sources`.
  const auto snap = h.snap();
  ASSERT_EQ(snap->servers.size(), 1U);
  EXPECT_EQ(snap->servers[0]->name, "a");
  EXPECT_EQ(snap->servers[0]->probe_module, "");
  ASSERT_EQ(snap->probe_targets.size(), 1U);
  EXPECT_EQ(snap->probe_targets[0]->address, "198.51.100.7");
  EXPECT_EQ(snap->sources, 1U);
  EXPECT_EQ(snap->probe.targets, 1U);
  EXPECT_EQ(snap->probe.added, 1U);
  h.run_until(20);
  // a's burst (0, 2, 4, 6 s) only: the target's four replies wrote no history.
  EXPECT_EQ(h.samples, 4U);
  EXPECT_EQ(h.monitor.probe_result(r.target)->target->responses, 4U);
}

TEST(MonitorProbe, TheGoodCitizenFloorAppliesToEveryTargetAwayFromLoopback) {
  Harness h(probe_config());
  h.net["198.51.100.7"] = FakeServer{};
  h.net["127.0.0.2"] = FakeServer{};
  h.add_literal("198.51.100.7");
  h.add_literal("127.0.0.2");
  h.start();
  const ProbeRegistration far = h.probe("198.51.100.7", "fast");
  const ProbeRegistration near = h.probe("127.0.0.2", "fast");
  h.run_until(30);
  EXPECT_EQ(h.monitor.probe_result(far.target)->target->poll_interval_s, 64);
  EXPECT_EQ(h.monitor.probe_result(near.target)->target->poll_interval_s, 1);
  // Burst of 4 two seconds apart (one poll apart when that is shorter), then every poll.
  EXPECT_EQ(h.send_times("198.51.100.7").size(), 4U);
  EXPECT_GT(h.send_times("127.0.0.2").size(), 25U);
}

TEST(MonitorProbe, TargetsTakeNoPartInTheSelection) {
  config::Config c = probe_config();
  c.servers = {server("a", "192.0.2.1"), server("b", "192.0.2.2"), server("c", "192.0.2.3")};
  Harness h(c);
  for (const char* a : {"192.0.2.1", "192.0.2.2", "192.0.2.3"}) h.net[a] = fake(0.001);
  h.start();
  // Five targets agreeing on a time 10 s off: a majority if they voted.
  for (int i = 1; i <= 5; ++i) {
    const std::string address = "198.51.100." + std::to_string(i);
    h.net[address] = fake(10.0);
    h.add_literal(address);
    EXPECT_FALSE(h.probe(address).rejected);
  }
  h.run_until(10);
  const auto snap = h.snap();
  EXPECT_EQ(snap->truechimers, 3);
  EXPECT_TRUE(snap->majority);
  ASSERT_TRUE(snap->system_offset_s);
  EXPECT_NEAR(*snap->system_offset_s, 0.001, 1e-6);
  ASSERT_TRUE(snap->selected);
  EXPECT_NE(snap->selected->find("198.51"), 0U);
  for (const auto& t : snap->probe_targets) {
    EXPECT_FALSE(t->consensus_offset_s);
    EXPECT_NEAR(*t->offset_s, 10.0, 1e-6);
  }
}

TEST(MonitorProbe, BadRequestsAndTheCapAreRefusedAndCounted) {
  Harness h(probe_config(2));
  h.start();
  EXPECT_EQ(h.probe("not a host").rejected, ProbeRejection::kBadTarget);
  const ProbeRegistration bad_module = h.probe("192.0.2.9", "nope");
  EXPECT_EQ(bad_module.rejected, ProbeRejection::kBadModule);
  EXPECT_EQ(bad_module.message,
            "module 'nope' is not in the configuration's probe section (modules: default, fast, "
            "v3)");
  EXPECT_FALSE(h.probe("192.0.2.10").rejected);
  EXPECT_FALSE(h.probe("192.0.2.10", "v3").rejected);  // another module: another target
  const ProbeRegistration full = h.probe("192.0.2.11");
  EXPECT_EQ(full.rejected, ProbeRejection::kLimit);
  EXPECT_EQ(full.message,
            "2 probe targets are registered, the limit (probe.max_targets); a target is dropped "
            "target_ttl_s after its last scrape");
  EXPECT_FALSE(h.probe("192.0.2.10").rejected);  // renewing a live target is never refused
  const auto snap = h.snap();
  EXPECT_EQ(snap->probe.targets, 2U);
  EXPECT_EQ(snap->probe.max_targets, 2U);
  EXPECT_EQ(snap->probe.rejected, (std::array<std::uint64_t, kProbeRejectionCount>{1, 1, 1}));
  EXPECT_EQ(snap->probe_targets[1]->request_version, 3);
}

TEST(MonitorProbe, ATargetExpiresTtlAfterItsLastScrape) {
  Harness h(probe_config(1000, 10));
  h.net["198.51.100.7"] = FakeServer{};
  h.add_literal("198.51.100.7");
  h.start();
  const ProbeRegistration r = h.probe("198.51.100.7", "fast");
  h.run_until(8);
  EXPECT_FALSE(h.probe("198.51.100.7", "fast").added);  // renewed: expires at 18 s
  h.run_until(17.9);
  ASSERT_TRUE(h.monitor.probe_result(r.target));
  const SourceId id = h.monitor.sources_of(r.target).at(0);
  const std::size_t sends = h.send_times("198.51.100.7").size();
  h.probe_updates.clear();
  h.run_until(18.0);
  EXPECT_FALSE(h.monitor.probe_result(r.target));
  EXPECT_EQ(h.probe_updates, std::vector<ServerKey>{r.target});
  EXPECT_NE(std::find(h.cancels.begin(), h.cancels.end(), id), h.cancels.end());
  EXPECT_EQ(h.count_logs("probe_target_removed"), 1U);
  h.run_until(100);
  EXPECT_EQ(h.send_times("198.51.100.7").size(), sends);
  const auto snap = h.snap();
  EXPECT_TRUE(snap->probe_targets.empty());
  EXPECT_EQ(snap->probe.expired, 1U);
  EXPECT_EQ(snap->probe.targets, 0U);
  // Registered again by the next scrape, as a new target.
  EXPECT_TRUE(h.probe("198.51.100.7", "fast").added);
}

TEST(MonitorProbe, ANameThatDoesNotResolveSettlesAtOnceAndRaisesNoAlert) {
  Harness h(probe_config());
  h.start();
  const ProbeRegistration r = h.probe("unknown.example");
  h.run_until(1);
  EXPECT_EQ(h.probe_updates, std::vector<ServerKey>{r.target});
  const auto result = h.monitor.probe_result(r.target);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->settled);
  EXPECT_FALSE(result->success);
  EXPECT_EQ(*result->target->error, "cannot resolve host unknown.example: NXDOMAIN");
  // A silent target goes unreachable without an alert.
  h.net["198.51.100.8"] = fake(0, 0, false);
  h.add_literal("198.51.100.8");
  const ProbeRegistration silent = h.probe("198.51.100.8");
  h.run_until(300);
  EXPECT_EQ(h.monitor.probe_result(silent.target)->target->state, ServerState::kUnreachable);
  EXPECT_FALSE(h.monitor.probe_result(silent.target)->success);
  for (const AlertTransition& a : h.alerts) EXPECT_EQ(a.server, "a");
}

TEST(MonitorProbe, AReloadKeepsTargetsButDropsThoseOfARemovedOrChangedModule) {
  Harness h(probe_config(1000, 600));
  for (const char* a : {"198.51.100.1", "198.51.100.2", "198.51.100.3"}) {
    h.net[a] = FakeServer{};
    h.add_literal(a);
  }
  h.start();
  const ProbeRegistration kept = h.probe("198.51.100.1", "default");
  const ProbeRegistration gone = h.probe("198.51.100.2", "fast");
  const ProbeRegistration changed = h.probe("198.51.100.3", "v3");
  h.run_until(10);
  config::Config next = probe_config(1000, 20);
  next.probe.modules = {config::default_probe_module(), next.probe.modules[2]};
  next.probe.modules[0].poll = config::PollSettings{128, 1024};
  next.probe.modules[1].version = 4;
  h.reload(next);
  EXPECT_TRUE(h.monitor.probe_result(kept.target));
  EXPECT_FALSE(h.monitor.probe_result(gone.target));
  EXPECT_FALSE(h.monitor.probe_result(changed.target));
  EXPECT_EQ(h.snap()->probe.removed, 2U);
  EXPECT_EQ(h.monitor.probe_result(kept.target)->target->responses, 4U);  // its filter stayed
  EXPECT_EQ(h.monitor.probe_result(kept.target)->target->poll_interval_s, 128);
  // The new time-to-live counts from the last scrape (at 0 s).
  h.run_until(19.9);
  EXPECT_TRUE(h.monitor.probe_result(kept.target));
  h.run_until(20.1);
  EXPECT_FALSE(h.monitor.probe_result(kept.target));
}

TEST(MonitorProbe, ZeroMaxTargetsTurnsProbingOff) {
  Harness h(probe_config(0));
  h.start();
  const ProbeRegistration r = h.probe("192.0.2.10");
  EXPECT_EQ(r.rejected, ProbeRejection::kLimit);
  EXPECT_EQ(r.message, "probing is off (probe.max_targets is 0)");
}

// ---- The monitoring host's own clock ------------------------------------------------------

std::vector<config::ServerConfig> servers_at(int n) {
  std::vector<config::ServerConfig> out;
  for (int i = 1; i <= n; ++i) {
    out.push_back(server("s" + std::to_string(i), "192.0.2." + std::to_string(i)));
  }
  return out;
}

std::size_t count_alerts(const Harness& h, AlertKind kind, bool firing) {
  return static_cast<std::size_t>(std::count_if(
      h.alerts.begin(), h.alerts.end(),
      [&](const AlertTransition& a) { return a.kind == kind && a.firing == firing; }));
}

// Five servers agree on a time 80 ms ahead of this host (threshold 50 ms): the host's clock is
// off, not theirs. One alert for the host, none for the servers, whose offsets stay as measured.
TEST(MonitorLocalClock, FiveServersAgreeingFireOneHostAlertAndNoServerAlert) {
  Harness h(config_of(servers_at(5)));
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.080);
  h.start();
  h.run_until(300);
  ASSERT_EQ(h.alerts.size(), 1U);
  EXPECT_EQ(h.alerts[0].kind, AlertKind::kLocalClock);
  EXPECT_TRUE(h.alerts[0].firing);
  EXPECT_EQ(h.alerts[0].server, "");
  EXPECT_EQ(h.alerts[0].message, "local clock -80 ms from the truechimers' consensus, above 50 ms");
  const auto snap = h.snap();
  ASSERT_TRUE(snap->local_clock_offset_s.has_value());
  EXPECT_NEAR(*snap->local_clock_offset_s, -0.080, 1e-6);
  ASSERT_EQ(snap->local_clock_alerts.size(), 1U);
  EXPECT_EQ(snap->local_clock_alerts[0].kind, AlertKind::kLocalClock);
  for (const auto& s : snap->servers) {
    EXPECT_TRUE(s->alerts.empty()) << s->name;
    EXPECT_NEAR(*s->offset_s, 0.080, 1e-6) << s->name;
  }
  EXPECT_STREQ(alert_name(AlertKind::kLocalClock), "NtpHostClockOffsetHigh");
  EXPECT_FALSE(is_server_alert(AlertKind::kLocalClock));
}

// alerts.offset_reference: local keeps the old behaviour: each server is judged against the
// local clock and fires; the host's alert fires as well.
TEST(MonitorLocalClock, OffsetReferenceLocalFiresEveryServersOffsetAlert) {
  config::Config c = config_of(servers_at(5));
  c.alerts.offset_reference = config::OffsetReference::kLocal;
  Harness h(c);
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.080);
  h.start();
  h.run_until(300);
  EXPECT_EQ(count_alerts(h, AlertKind::kOffset, true), 5U);
  EXPECT_EQ(count_alerts(h, AlertKind::kLocalClock, true), 1U);
  for (const AlertTransition& a : h.alerts) {
    if (a.kind == AlertKind::kOffset) {
      EXPECT_EQ(a.message, "offset +80.0 ms above 50 ms");
    }
  }
}

// While the host's clock is off, a server far from the consensus still fires, judged on its
// offset from the consensus (170 ms), not from the local clock (250 ms).
TEST(MonitorLocalClock, AServerFarFromTheConsensusStillFiresAgainstIt) {
  Harness h(config_of(servers_at(6)));
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.080);
  h.net["192.0.2.6"] = fake(0.250);
  h.start();
  h.run_until(300);
  EXPECT_EQ(count_alerts(h, AlertKind::kLocalClock, true), 1U);
  ASSERT_EQ(count_alerts(h, AlertKind::kOffset, true), 1U);
  for (const AlertTransition& a : h.alerts) {
    if (a.kind != AlertKind::kOffset) continue;
    EXPECT_EQ(a.server, "s6");
    EXPECT_EQ(a.message, "offset +170.0 ms from the consensus above 50 ms");
  }
}

// The host's clock comes back (the servers now agree with it): its alert clears after the hold,
// and no server's offset alert fired meanwhile.
TEST(MonitorLocalClock, TheHostAlertClearsWhenTheClockIsBack) {
  Harness h(config_of(servers_at(5)));
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.080);
  h.start();
  h.run_until(300);
  ASSERT_EQ(count_alerts(h, AlertKind::kLocalClock, true), 1U);
  // Lower delays: the filters pick the new samples at once.
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.0, 0.005);
  h.run_until(1000);
  EXPECT_EQ(count_alerts(h, AlertKind::kLocalClock, false), 1U);
  EXPECT_EQ(count_alerts(h, AlertKind::kOffset, true), 0U);
  const auto snap = h.snap();
  EXPECT_TRUE(snap->local_clock_alerts.empty());
  EXPECT_NEAR(*snap->local_clock_offset_s, 0.0, 1e-6);
}

// Two servers cannot tell their error from the host's: no host alert, each server fires.
TEST(MonitorLocalClock, TwoServersCannotBlameTheHost) {
  Harness h(config_of(servers_at(2)));
  h.net["192.0.2.1"] = fake(0.080);
  h.net["192.0.2.2"] = fake(0.080);
  h.start();
  h.run_until(300);
  EXPECT_EQ(count_alerts(h, AlertKind::kOffset, true), 2U);
  EXPECT_EQ(count_alerts(h, AlertKind::kLocalClock, true), 0U);
  EXPECT_FALSE(h.snap()->local_clock_offset_s.has_value());
}

// Restores the harness's wall clock after a test that steps it.
struct WallStep {
  ~WallStep() { g_wall_step_ns = 0; }
  void set(double seconds) { g_wall_step_ns = ns(seconds); }
};

// A step of the wall clock while a request is in flight: that exchange's T1 was taken on the old
// clock, so its reply gives no sample (it still counts for reach and responses); the filters
// restart, and the next exchanges measure against the stepped clock.
TEST(MonitorClockStep, TheExchangeInFlightAcrossAStepGivesNoSample) {
  WallStep wall;
  Harness g(config_of({server("a", "192.0.2.1")}));
  g.net["192.0.2.1"] = fake(0.0, 0.010);
  g.start();
  // The burst's second request leaves at 2 s; its reply is due at 2.010 s.
  g.run_until(2.005);
  ASSERT_EQ(g.send_times("192.0.2.1").back(), ns(2));
  ASSERT_TRUE(g.entry("a")->offset_s.has_value());
  const std::size_t samples = g.samples;
  const std::uint64_t responses = g.entry("a")->responses;
  // The wall clock is stepped 0.5 s forward while it is in flight.
  wall.set(0.5);
  Actions actions;
  g.monitor.on_clock_stepped(at_ns(g.now_ns), actions);
  ASSERT_EQ(actions.logs.size(), 1U);
  EXPECT_EQ(actions.logs[0].event, "local_clock_stepped");
  EXPECT_EQ(actions.logs[0].fields.at(1),
            (std::pair<std::string, std::string>{"exchanges_discarded", "1"}));
  EXPECT_EQ(actions.logs[0].fields.at(2),
            (std::pair<std::string, std::string>{"filters_cleared", "1"}));
  EXPECT_EQ(g.snap()->local_clock_steps, 1U);
  EXPECT_FALSE(g.entry("a")->offset_s.has_value());  // the filter starts afresh
  // The reply arrives: counted, but no sample.
  g.run_until(2.020);
  EXPECT_EQ(g.samples, samples);
  EXPECT_EQ(g.entry("a")->responses, responses + 1);
  EXPECT_TRUE(g.entry("a")->up);
  EXPECT_FALSE(g.entry("a")->offset_s.has_value());
  EXPECT_EQ(g.count_logs("exchange_discarded"), 1U);
  // The next exchanges are measured on the stepped clock: the server now looks 0.5 s behind.
  g.run_until(300);
  EXPECT_GT(g.samples, samples);
  ASSERT_TRUE(g.entry("a")->offset_s.has_value());
  EXPECT_NEAR(*g.entry("a")->offset_s, -0.5, 1e-6);
  EXPECT_NEAR(*g.entry("a")->delay_s, 0.010, 1e-6);
}

// Without the step event the same exchange straddling a 0.5 s step would have entered the
// filter with a delay 0.5 s too long and an offset 0.25 s wrong: what the discard prevents.
TEST(MonitorClockStep, WithoutTheEventTheStraddlingExchangeIsASample) {
  WallStep wall;
  Harness g(config_of({server("a", "192.0.2.1")}));
  g.net["192.0.2.1"] = fake(0.0, 0.010);
  g.start();
  g.run_until(0.005);  // the first request is in flight
  const std::size_t before = g.samples;
  wall.set(0.5);
  g.run_until(0.020);
  EXPECT_EQ(g.samples, before + 1);
  EXPECT_NEAR(*g.entry("a")->delay_s, 0.510, 1e-6);
  EXPECT_NEAR(*g.entry("a")->offset_s, -0.250, 1e-6);
}

// A step after the host's clock was judged off: the verdict waits for new samples (the filters
// restart) and the alert keeps its state meanwhile; servers are not judged against the stale
// consensus' absence.
TEST(MonitorClockStep, StepsAreCountedAndTheHostVerdictStartsAfresh) {
  WallStep wall;
  Harness h(config_of(servers_at(5)));
  for (int i = 1; i <= 5; ++i) h.net["192.0.2." + std::to_string(i)] = fake(0.080);
  h.start();
  h.run_until(300);
  ASSERT_EQ(count_alerts(h, AlertKind::kLocalClock, true), 1U);
  // chronyd steps the host onto the servers' time: 80 ms forward.
  wall.set(0.080);
  Actions actions;
  h.monitor.on_clock_stepped(at_ns(h.now_ns), actions);
  Actions again;
  h.monitor.on_clock_stepped(at_ns(h.now_ns), again);
  EXPECT_EQ(h.snap()->local_clock_steps, 2U);
  h.run_until(1000);
  EXPECT_EQ(count_alerts(h, AlertKind::kLocalClock, false), 1U);
  EXPECT_EQ(count_alerts(h, AlertKind::kOffset, true), 0U);
  EXPECT_NEAR(*h.snap()->local_clock_offset_s, 0.0, 1e-6);
}

}  // namespace
}  // namespace ntpmon::monitor
