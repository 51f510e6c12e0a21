// The Monitor's authenticated time, driven event by event with fixed times: when NTS-KE runs
// (first poll, cookies gone, NTSN) and when it does not (cookies kept across polls), the
// exponential back-off of NTS-KE failures, the authentication alert (NTS-KE failures and
// auth_failed replies, held for alerts.hold) and the certificate alert (expiry within
// certificate_expiry_days), and what the Snapshot shows.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "monitor/monitor.hpp"

namespace ntpmon::monitor {
namespace {

constexpr std::int64_t kBaseUnixNs = 1'700'000'000'000'000'000;
constexpr std::int64_t kBaseUnixS = kBaseUnixNs / 1'000'000'000;
constexpr std::int64_t kDayS = 86400;

std::int64_t ns(double seconds) { return std::llround(seconds * 1e9); }

Now at(double seconds) {
  Now now;
  now.mono_ns = ns(seconds);
  now.unix_ns = kBaseUnixNs + now.mono_ns;
  now.ntp = proto::NtpTimestamp::from_unix_ns(now.unix_ns);
  return now;
}

// u = 0 for every poll: the interval is exactly 1.01 times the poll (PollState::on_send).
class ZeroRandom final : public RandomSource {
 public:
  double uniform01() override { return 0.0; }
};

config::ServerConfig nts_server() {
  config::ServerConfig s;
  s.name = "nts";
  s.host = "localhost";
  s.poll_s = 1.0;
  s.nts = true;
  s.ntske_port = 4461;
  s.ca_file = "/etc/ntp/ca.pem";
  return s;
}

config::ServerConfig key_server() {
  config::ServerConfig s;
  s.name = "keyed";
  s.host = "127.0.0.1";
  s.poll_s = 1.0;
  s.key_id = 7;
  return s;
}

config::ServerConfig plain_server() {
  config::ServerConfig s;
  s.name = "plain";
  s.host = "127.0.0.2";
  s.poll_s = 1.0;
  return s;
}

MonitorOptions options() {
  MonitorOptions o;
  o.iburst_count = 1;  // one request per poll: the times below are the poll times
  return o;
}

// A reply that passes every check: stratum 2, the server 0.5 ms ahead, 10 ms round trip.
Reply reply_at(double t1_s) {
  Reply r;
  r.header.leap = proto::LeapIndicator::kNoWarning;
  r.header.version = 4;
  r.header.mode = proto::Mode::kServer;
  r.header.stratum = 2;
  r.header.poll = 6;
  r.header.precision = -20;
  r.header.refid = {127, 0, 0, 1};
  r.t1 = at(t1_s).ntp;
  r.header.receive_ts = at(t1_s + 0.0055).ntp;
  r.header.transmit_ts = at(t1_s + 0.0055).ntp;
  r.header.reference_ts = at(t1_s - 10).ntp;
  r.t4 = at(t1_s + 0.010).ntp;
  return r;
}

class Auth : public ::testing::Test {
 protected:
  void start(std::vector<config::ServerConfig> servers, int certificate_expiry_days = 14) {
    config_.servers = std::move(servers);
    config_.alerts.certificate_expiry_days = certificate_expiry_days;
    monitor_ = std::make_unique<Monitor>(config_, options());
    Actions out;
    monitor_->start(at(0), out);
    for (const auto& s : config_.servers) {
      const ServerKey key = *monitor_->server_key(s.name);
      const std::string address = s.host == "localhost" ? "127.0.0.1" : s.host;
      monitor_->on_resolved(key, {ResolvedAddress{address, 123, true}}, at(0), out);
      ids_.push_back(monitor_->sources_of(key).front());
    }
  }

  Actions tick(double t_s) {
    Actions out;
    monitor_->on_tick(at(t_s), random_, out);
    return out;
  }

  // Runs the Monitor's timers (polls, selection runs) until one asks for a request or an
  // NTS-KE; returns everything they asked for. now_s_ is then the time of that tick.
  Actions until_request() {
    Actions all;
    for (int guard = 0; guard < 100; ++guard) {
      now_s_ = next_wakeup_s();
      Actions out = tick(now_s_);
      all.sends.insert(all.sends.end(), out.sends.begin(), out.sends.end());
      all.nts_ke.insert(all.nts_ke.end(), out.nts_ke.begin(), out.nts_ke.end());
      all.alerts.insert(all.alerts.end(), out.alerts.begin(), out.alerts.end());
      if (!out.sends.empty() || !out.nts_ke.empty()) break;
    }
    return all;
  }

  [[nodiscard]] double next_wakeup_s() const {
    return static_cast<double>(monitor_->next_wakeup_mono_ns().value()) / 1e9;
  }

  std::shared_ptr<const ServerSnapshot> snap(std::size_t i, double t_s) {
    return monitor_->snapshot(at(t_s))->servers.at(i);
  }

  // NTS-KE for source 0 succeeds at t_s with `cookies` cookies and a certificate expiring
  // `cert_days` after the base time.
  Actions ke_done(double t_s, std::size_t cookies = 8, double cert_days = 365) {
    Actions out;
    NtsKeInfo info;
    info.duration_s = 0.0125;
    info.cookies = cookies;
    info.certificate_not_after_unix_s = kBaseUnixS + std::llround(cert_days * kDayS);
    monitor_->on_nts_ke_done(ids_[0], info, at(t_s), out);
    return out;
  }

  Actions ke_failed(double t_s) {
    Actions out;
    monitor_->on_nts_ke_failed(ids_[0], "certificate", "unable to get local issuer certificate",
                               at(t_s), out);
    return out;
  }

  config::Config config_;
  std::unique_ptr<Monitor> monitor_;
  ZeroRandom random_;
  std::vector<SourceId> ids_;
  double now_s_ = 0;
};

TEST_F(Auth, NtsKeRunsBeforeTheFirstRequestAndNotAgainWhileCookiesLast) {
  start({nts_server()});
  Actions first = tick(0);
  ASSERT_EQ(first.nts_ke.size(), 1u);
  EXPECT_TRUE(first.sends.empty());
  const NtsKeAction& ke = first.nts_ke[0];
  EXPECT_EQ(ke.source, ids_[0]);
  EXPECT_EQ(ke.host, "localhost");  // the certificate must name the configured host
  EXPECT_EQ(ke.address, "127.0.0.1");
  EXPECT_EQ(ke.port, 4461);
  EXPECT_EQ(ke.ca_file, "/etc/ntp/ca.pem");
  EXPECT_EQ(ke.ntp_port, 123);
  EXPECT_DOUBLE_EQ(ke.timeout_s, 5.0);
  // No poll is scheduled while NTS-KE runs (its outcome schedules it): the next wakeup is the
  // hourly DNS refresh.
  EXPECT_DOUBLE_EQ(next_wakeup_s(), 3600.0);

  EXPECT_TRUE(ke_done(0.02).sends.empty());
  EXPECT_DOUBLE_EQ(next_wakeup_s(), 0.02);
  int nts_ke_actions = 0;
  int sends = 0;
  double t = 0.02;
  for (int poll = 0; poll < 10; ++poll) {
    Actions out = until_request();
    t = now_s_;
    nts_ke_actions += static_cast<int>(out.nts_ke.size());
    ASSERT_EQ(out.sends.size(), 1u) << "poll " << poll;
    EXPECT_EQ(out.sends[0].auth, AuthMode::kNts);
    EXPECT_DOUBLE_EQ(t, 0.02 + 1.01 * poll);
    ++sends;
    // Each reply brings the jar back to 8 (the engine reports it before the reply).
    monitor_->on_nts_cookies(ids_[0], 8);
    Actions reply;
    monitor_->on_reply(ids_[0], reply_at(t), at(t + 0.01), reply);
  }
  EXPECT_EQ(nts_ke_actions, 0);
  EXPECT_EQ(sends, 10);
  const auto s = snap(0, t);
  EXPECT_EQ(s->authenticated, "nts");
  EXPECT_EQ(s->authenticated_ok, true);
  EXPECT_EQ(s->nts_cookies, 8);
  EXPECT_EQ(s->nts_ke_duration_s, 0.0125);
  EXPECT_EQ(s->nts_ke_exchanges, 1u);
  EXPECT_EQ(s->nts_certificate_not_after_unix_s, kBaseUnixS + 365 * kDayS);
  EXPECT_TRUE(s->nts_ke_failures.empty());
  EXPECT_TRUE(s->alerts.empty());
}

TEST_F(Auth, NtsKeAgainWhenTheJarIsEmptyAfterAnNtsn) {
  start({nts_server()});
  tick(0);
  ke_done(0.02);
  ASSERT_EQ(tick(0.02).sends.size(), 1u);
  // NTSN: the probe emptied the jar; the KoD is a missed poll, not an authentication failure.
  monitor_->on_nts_cookies(ids_[0], 0);
  Actions kod;
  monitor_->on_kod(ids_[0], proto::Kiss::kNtsn, "NTSN", at(0.03), kod);
  EXPECT_DOUBLE_EQ(next_wakeup_s(), 0.02 + 1.01);
  Actions again = tick(1.03);
  EXPECT_TRUE(again.sends.empty());
  ASSERT_EQ(again.nts_ke.size(), 1u);
  EXPECT_EQ(snap(0, 1.03)->nts_cookies, 0);
  ke_done(1.05);
  Actions sent = tick(1.05);
  ASSERT_EQ(sent.sends.size(), 1u);
  EXPECT_EQ(snap(0, 1.05)->nts_ke_exchanges, 2u);
  EXPECT_EQ(snap(0, 1.05)->kod.at("NTSN"), 1u);
  EXPECT_TRUE(snap(0, 1.05)->alerts.empty());
}

TEST_F(Auth, NtsKeFailuresBackOffExponentiallyAndFireTheAlertAfterTheHold) {
  start({nts_server(), plain_server()});
  std::vector<double> attempts;
  double t = 0;
  std::vector<AlertTransition> alerts;
  for (int i = 0; i < 40 && attempts.size() < 4; ++i) {
    Actions out = i == 0 ? tick(0) : until_request();
    t = now_s_;
    if (!out.nts_ke.empty()) {
      attempts.push_back(t);
      Actions failed = ke_failed(t + 0.5);
      alerts.insert(alerts.end(), failed.alerts.begin(), failed.alerts.end());
      EXPECT_TRUE(failed.sends.empty());
    }
    // The plain server polls on regardless (at 0, 1.01, 2.02, ...): one failing server
    // degrades that server only. It never answers here, which is not this test's business.
  }
  // 1 s poll: retry after 1, 2, 4, 8 s (from each failure at attempt + 0.5 s).
  ASSERT_GE(attempts.size(), 4u);
  EXPECT_DOUBLE_EQ(attempts[0], 0.0);
  EXPECT_DOUBLE_EQ(attempts[1], 0.5 + 1.0);
  EXPECT_DOUBLE_EQ(attempts[2], 2.0 + 2.0);
  EXPECT_DOUBLE_EQ(attempts[3], 4.5 + 4.0);
  // The third failure in a row fires the alert (hold 3), once.
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, AlertKind::kAuthentication);
  EXPECT_TRUE(alerts[0].firing);
  EXPECT_EQ(alerts[0].server, "nts");
  EXPECT_EQ(alerts[0].message,
            "NTS-KE failed: certificate: unable to get local issuer certificate");
  EXPECT_EQ(alerts[0].at_unix_ns, kBaseUnixNs + ns(4.5));

  ASSERT_EQ(alerts.size(), 1u);
  const auto s = snap(0, 9);
  // The server answered the TLS handshake and its certificate was refused: not unreachable.
  EXPECT_EQ(s->state, ServerState::kAuthFailed);
  EXPECT_STREQ(to_string(s->state), "auth_failed");
  EXPECT_EQ(s->authenticated_ok, false);
  EXPECT_EQ(s->nts_ke_failures.at("certificate"), attempts.size());
  EXPECT_EQ(s->error, "NTS-KE failed: certificate: unable to get local issuer certificate");
  EXPECT_EQ(s->requests, 0u);
  // The plain server kept polling on its own schedule (it never answers here, so it backs off
  // as unreachable) and has no authentication alert.
  EXPECT_GE(snap(1, 9)->requests, 4u);
  for (const auto& a : snap(1, 9)->alerts) EXPECT_NE(a.kind, AlertKind::kAuthentication);
}

TEST_F(Auth, BackOffIsCappedAndEndsWithASuccess) {
  start({nts_server()});
  ASSERT_EQ(tick(0).nts_ke.size(), 1u);
  ke_failed(0);
  std::vector<double> gaps_s;
  double previous_s = 0;
  for (int i = 0; i < 13; ++i) {
    ASSERT_EQ(until_request().nts_ke.size(), 1u);
    gaps_s.push_back(now_s_ - previous_s);
    previous_s = now_s_;
    ke_failed(now_s_);
  }
  // 1 s poll: 1, 2, 4, ..., 2048 s, then 4096 s capped at nts_ke_retry_max_s (3600 s).
  const std::vector<double> expected = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600};
  EXPECT_EQ(gaps_s, expected);
  EXPECT_EQ(snap(0, now_s_)->nts_ke_failures.at("certificate"), 14u);

  ASSERT_EQ(until_request().nts_ke.size(), 1u);
  const double ke_s = now_s_;
  EXPECT_DOUBLE_EQ(ke_s - previous_s, 3600.0);
  ke_done(ke_s + 0.01);
  std::vector<AlertTransition> alerts;
  for (int i = 0; i < 3; ++i) {
    Actions out = until_request();
    ASSERT_EQ(out.sends.size(), 1u);
    if (i == 0) {
      EXPECT_DOUBLE_EQ(now_s_, ke_s + 0.01);
      EXPECT_FALSE(snap(0, now_s_)->error.has_value());
    }
    monitor_->on_nts_cookies(ids_[0], 8);
    Actions reply;
    monitor_->on_reply(ids_[0], reply_at(now_s_), at(now_s_ + 0.01), reply);
    alerts.insert(alerts.end(), reply.alerts.begin(), reply.alerts.end());
  }
  // The alert (fired at the third failure) clears after three authenticated replies.
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, AlertKind::kAuthentication);
  EXPECT_FALSE(alerts[0].firing);
  EXPECT_EQ(snap(0, now_s_)->state, ServerState::kPending);  // no selection verdict yet
}

TEST_F(Auth, AuthFailedRepliesCountAgainstTheAlertPlainTimeoutsDoNot) {
  start({key_server()});
  std::vector<AlertTransition> alerts;
  // Three polls ending in a plain timeout: the server may just be down (unreachable's job).
  for (int i = 0; i < 3; ++i) {
    Actions out = i == 0 ? tick(0) : until_request();
    ASSERT_EQ(out.sends.size(), 1u);
    EXPECT_EQ(out.sends[0].auth, AuthMode::kKey);
    EXPECT_EQ(out.sends[0].key_id, 7u);
    Actions timeout;
    monitor_->on_timeout(ids_[0], at(now_s_ + 0.5), timeout);
    for (const auto& a : timeout.alerts) {
      EXPECT_NE(a.kind, AlertKind::kAuthentication);
    }
  }
  EXPECT_EQ(snap(0, now_s_ + 0.5)->state, ServerState::kUnreachable);
  // Now every poll gets replies whose MAC does not verify.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(until_request().sends.size(), 1u);
    monitor_->on_rejected(ids_[0], proto::RejectReason::kAuthFailed);
    monitor_->on_rejected(ids_[0], proto::RejectReason::kAuthFailed);
    Actions timeout;
    monitor_->on_timeout(ids_[0], at(now_s_ + 0.5), timeout);
    for (const auto& a : timeout.alerts) {
      if (a.kind == AlertKind::kAuthentication) alerts.push_back(a);
    }
  }
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_TRUE(alerts[0].firing);
  EXPECT_EQ(alerts[0].message, "2 replies failed authentication, none passed");
  const auto s = snap(0, now_s_);
  // Replies come but none is authentic: the state says so rather than unreachable.
  EXPECT_EQ(s->state, ServerState::kAuthFailed);
  EXPECT_EQ(s->authenticated, "key");
  EXPECT_EQ(s->authenticated_ok, false);
  EXPECT_EQ(s->rejected[static_cast<std::size_t>(proto::RejectReason::kAuthFailed)], 6u);
  // Key servers have no NTS figures.
  EXPECT_FALSE(s->nts_cookies.has_value());
  EXPECT_FALSE(s->nts_ke_duration_s.has_value());
}

TEST_F(Auth, CertificateExpiringWithinTheWarningPeriodAlertsAtOnce) {
  start({nts_server()});
  tick(0);
  Actions out = ke_done(0.02, 8, 5.0);
  ASSERT_EQ(out.alerts.size(), 1u);
  EXPECT_EQ(out.alerts[0].kind, AlertKind::kCertificate);
  EXPECT_TRUE(out.alerts[0].firing);
  // 5 days minus the 0.02 s since the base time, in whole tenths of a day, rounded down.
  EXPECT_EQ(out.alerts[0].message,
            "NTS-KE certificate expires in 4.9 days (warning below 14 days)");
  EXPECT_EQ(snap(0, 0.02)->alerts.size(), 1u);
}

TEST_F(Auth, CertificateOutsideTheWarningPeriodOrAlertOff) {
  start({nts_server()});
  tick(0);
  EXPECT_TRUE(ke_done(0.02, 8, 20.0).alerts.empty());
}

TEST_F(Auth, CertificateAlertOff) {
  start({nts_server()}, 0);
  tick(0);
  EXPECT_TRUE(ke_done(0.02, 8, 1.0).alerts.empty());
}

TEST_F(Auth, NtsKeWithoutCookiesIsAFailure) {
  start({nts_server()});
  tick(0);
  Actions out = ke_done(0.02, 0);
  EXPECT_TRUE(out.sends.empty());
  EXPECT_EQ(snap(0, 0.02)->nts_ke_failures.at("protocol:no_cookies"), 1u);
  // Backed off like any failure: the next NTS-KE one poll interval later.
  ASSERT_EQ(until_request().nts_ke.size(), 1u);
  EXPECT_DOUBLE_EQ(now_s_, 1.02);
}

TEST_F(Auth, StrayNtsKeEventsAreIgnored) {
  start({plain_server(), nts_server()});
  Actions out;
  NtsKeInfo info;
  info.cookies = 8;
  // A plain source, an unknown source, and an NTS source that did not ask.
  monitor_->on_nts_ke_done(ids_[0], info, at(0), out);
  monitor_->on_nts_ke_done(9999, info, at(0), out);
  monitor_->on_nts_ke_done(ids_[1], info, at(0), out);
  monitor_->on_nts_ke_failed(ids_[1], "io", "", at(0), out);
  monitor_->on_nts_cookies(ids_[0], 3);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(snap(0, 0)->nts_cookies.has_value());
  EXPECT_EQ(snap(1, 0)->nts_ke_exchanges, 0u);
  EXPECT_TRUE(snap(1, 0)->nts_ke_failures.empty());
  EXPECT_EQ(snap(0, 0)->authenticated, "none");
  EXPECT_FALSE(snap(0, 0)->authenticated_ok.has_value());
}

TEST_F(Auth, ReloadThatTurnsNtsOffSendsPlainRequests) {
  start({nts_server()});
  tick(0);
  ke_done(0.02);
  ASSERT_EQ(tick(0.02).sends.at(0).auth, AuthMode::kNts);
  config::Config plain = config_;
  plain.servers[0].nts = false;
  Actions reload;
  monitor_->reload(plain, at(0.5), reload);
  Actions out = until_request();
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_EQ(out.sends[0].auth, AuthMode::kNone);
  EXPECT_EQ(snap(0, 2)->authenticated, "none");
  // And back on: NTS-KE first, at once.
  Actions back;
  monitor_->reload(config_, at(2), back);
  EXPECT_EQ(tick(2).nts_ke.size(), 1u);
}

// Which NTS-KE failures are authentication failures: the TLS or certificate refusals are; a
// server whose NTS-KE port cannot be reached is unreachable. A success ends either.
TEST_F(Auth, NtsKeStateSaysWhetherAuthenticationFailedOrTheServerWasNotReached) {
  start({nts_server()});
  ASSERT_EQ(tick(0).nts_ke.size(), 1u);
  Actions out;
  monitor_->on_nts_ke_failed(ids_[0], "connect", "Connection refused", at(0.1), out);
  EXPECT_EQ(snap(0, 0.1)->state, ServerState::kUnreachable);
  ASSERT_EQ(until_request().nts_ke.size(), 1u);
  monitor_->on_nts_ke_failed(ids_[0], "tls_handshake", "alert handshake failure", at(now_s_), out);
  EXPECT_EQ(snap(0, now_s_)->state, ServerState::kAuthFailed);
  ASSERT_EQ(until_request().nts_ke.size(), 1u);
  monitor_->on_nts_ke_failed(ids_[0], "timeout", "no complete NTS-KE response in time", at(now_s_),
                             out);
  EXPECT_EQ(snap(0, now_s_)->state, ServerState::kUnreachable);
  ASSERT_EQ(until_request().nts_ke.size(), 1u);
  ke_failed(now_s_);  // certificate
  EXPECT_EQ(snap(0, now_s_)->state, ServerState::kAuthFailed);
  ASSERT_EQ(until_request().nts_ke.size(), 1u);
  ke_done(now_s_);
  EXPECT_NE(snap(0, now_s_)->state, ServerState::kAuthFailed);
}

// A reply refused for its header's claims is not authenticated (the check runs after them): an
// authenticated source never shows its fields.
TEST_F(Auth, RefusedUnauthenticatedHeaderIsNotShownForAKeySource) {
  start({key_server()});
  ASSERT_EQ(tick(0).sends.size(), 1u);
  Reply r = reply_at(0);
  r.header.leap = proto::LeapIndicator::kUnsynchronized;
  r.header.stratum = 9;
  monitor_->on_rejected(ids_[0], proto::RejectReason::kUnsynchronized, &r.header);
  const auto s = snap(0, 0.01);
  EXPECT_FALSE(s->stratum.has_value());
  EXPECT_FALSE(s->leap.has_value());
  EXPECT_EQ(s->state, ServerState::kUnsynchronized);
}

}  // namespace
}  // namespace ntpmon::monitor
