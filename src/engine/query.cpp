#include "engine/query.hpp"

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <numeric>
#include <utility>

#include "algo/filter.hpp"
#include "engine/address.hpp"
#include "engine/async_dns.hpp"
#include "engine/nts_ke_client.hpp"
#include "engine/udp_probe.hpp"
#include "monitor/poll.hpp"
#include "proto/refid.hpp"

namespace ntpmon::engine {
namespace {

bool ends_polling(proto::Kiss kiss) {
  // RFC 5905 §7.4: DENY and RSTR mean stop talking to this server. RATE asks for a longer
  // poll interval; a one-shot query has no longer interval to offer, so it stops as well.
  return kiss == proto::Kiss::kDeny || kiss == proto::Kiss::kRstr || kiss == proto::Kiss::kRate;
}

QueryOptions clamped(QueryOptions options) {
  options.samples = std::max(1, options.samples);
  return options;
}

std::string rfc3339_utc(std::int64_t unix_s) {
  const auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string plural(int n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// Probes one address: `samples` requests, one in flight at a time, spaced by `interval`. When
// the next request goes and when the address is done is the poll state machine's decision (a
// single burst); this class carries it out with a socket and a timer.
class AddressQuery {
 public:
  AddressQuery(asio::io_context& io, AsyncDns& dns, const QueryTarget& target,
               const asio::ip::address& address, const QueryOptions& options, Clock& clock,
               MonoClock& mono, Rng& rng, std::function<void()> on_done)
      : options_(clamped(options)),
        target_(target),
        address_(address),
        version_(options.auth == QueryOptions::Auth::kNts ? std::uint8_t{4} : target.version),
        poll_exponent_(options.poll.value_or(query_poll_exponent(options.interval))),
        io_(io),
        dns_(dns),
        clock_(clock),
        mono_(mono),
        rng_(rng),
        timer_(io),
        ke_(io),
        on_done_(std::move(on_done)) {
    result_.host = target.host;
    result_.address = address.to_string();
    result_.port = target.port;
    result_.authenticated = std::string(to_string(options.auth));
    poll_.start_single_burst(options_.samples,
                             std::chrono::duration<double>(options_.interval).count());
  }

  void start() {
    if (options_.auth == QueryOptions::Auth::kNts) {
      nts_ = std::make_shared<NtsState>();
      start_nts_ke();
      return;
    }
    ProbeOptions probe_options;
    probe_options.kernel_timestamps = options_.kernel_timestamps;
    if (options_.auth == QueryOptions::Auth::kKey) probe_options.key = options_.key;
    probe_ = std::make_unique<UdpProbe>(io_, asio::ip::udp::endpoint(address_, target_.port),
                                        clock_, rng_, make_handlers(), probe_options);
    send();
  }

  // The fields of a reply's header that the result reports.
  void report_header(const proto::Header& h) {
    result_.stratum = h.stratum;
    result_.refid = proto::decode_refid(h.refid, h.stratum).text;
    result_.leap = static_cast<int>(h.leap);
    result_.version = h.version;
    result_.root_delay_s = h.root_delay.seconds();
    result_.root_dispersion_s = h.root_dispersion.seconds();
    result_.precision_s = proto::log2_to_seconds(h.precision);
    result_.poll_s = proto::log2_to_seconds(h.poll);
  }

  // Ends the query for good: closes the last request's socket.
  void close() {
    timer_.cancel();
    ke_.cancel();
    if (probe_) probe_->close();
  }

  AddressResult summarise(proto::NtpTimestamp end_time) {
    const auto& estimate = filter_.estimate();
    if (result_.samples > 0 && estimate) {
      result_.ok = true;
      result_.offset_s = estimate->offset_s;
      result_.delay_s = estimate->delay_s;
      result_.jitter_s = estimate->jitter_s;
      result_.dispersion_s = estimate->dispersion_s;
      // The header that goes with the filter's figures is the one of the chosen stage.
      const auto chosen = std::find_if(accepted_.begin(), accepted_.end(),
                                       [&](const Accepted& a) { return a.t4 == estimate->time; });
      const proto::Header& h = chosen != accepted_.end() ? chosen->header : accepted_.back().header;
      report_header(h);
      // A one-shot query leaves stages empty; they mean "not measured", so the distance uses
      // the dispersion of the measured stages (see PeerEstimate::measured_dispersion_s).
      algo::PeerEstimate measured = *estimate;
      measured.dispersion_s = estimate->measured_dispersion_s;
      result_.root_distance_s = algo::root_distance(measured, h.root_delay.seconds(),
                                                    h.root_dispersion.seconds(), end_time);
    } else {
      result_.error = failure_reason();
      // No valid sample, but a reply answered: what the server said about itself.
      if (refused_header_) report_header(*refused_header_);
    }
    if (nts_) result_.cookies = static_cast<int>(nts_->cookies.size());
    return result_;
  }

 private:
  struct Accepted {
    proto::NtpTimestamp t4;
    proto::Header header;
  };

  ProbeHandlers make_handlers() {
    ProbeHandlers handlers;
    handlers.on_outcome = [this](const ProbeOutcome& outcome) { on_outcome(outcome); };
    handlers.on_rejected = [this](proto::RejectReason reason, const proto::Header* header) {
      on_rejected(reason, header);
    };
    handlers.on_late_reply = [this] { ++result_.late_replies; };
    handlers.on_auth_failed = [this](std::string_view detail) {
      result_.auth_error = std::string(detail);
    };
    return handlers;
  }

  // NTS-KE with the address we resolved, verifying the certificate against the host name the
  // user gave (RFC 8915 §3).
  void start_nts_ke() {
    NtsKeConfig config;
    config.host = target_.host;
    config.endpoint = asio::ip::tcp::endpoint(address_, options_.ntske_port);
    config.ca_file = options_.ca_file;
    config.timeout = options_.ntske_timeout;
    ke_.start(std::move(config), [this](const NtsKeResult& result) { on_nts_ke(result); });
  }

  void on_nts_ke(const NtsKeResult& result) {
    if (!result) {
      ke_error_ = "NTS-KE failed: " + result.error().text();
      finish();
      return;
    }
    const NtsKeSession& session = *result;
    ++result_.nts_ke_exchanges;
    result_.nts_ke_s = session.duration_s;
    result_.aead = aead_name(session.aead);
    if (session.certificate_not_after_unix_s) {
      result_.certificate_expiry = rfc3339_utc(*session.certificate_not_after_unix_s);
    }
    nts_->c2s_key = session.c2s_key;
    nts_->s2c_key = session.s2c_key;
    nts_->cookies.assign(session.cookies.begin(), session.cookies.end());

    // §4.1.7 / §4.1.8: the negotiated server and port, else the NTS-KE server's address and
    // the target's NTP port.
    std::uint16_t ntp_port = session.port.value_or(target_.port);
    std::optional<std::string> ntp_host = session.server;
    if (options_.nts_ntp_host) ntp_host = options_.nts_ntp_host;
    if (options_.nts_ntp_port) ntp_port = *options_.nts_ntp_port;
    if (!ntp_host) {
      start_probing(address_, ntp_port);
      return;
    }
    // On the loop like every other lookup of the query: the other addresses keep probing.
    dns_.lookup(*ntp_host, [this, host = *ntp_host, ntp_port](
                               const std::error_code& ec, std::vector<asio::ip::address> found) {
      if (finished_) return;
      if (ec || found.empty()) {
        ke_error_ = "cannot resolve the negotiated NTP server " + host + ": " +
                    (ec ? ec.message() : std::string("no address"));
        finish();
        return;
      }
      // Prefer the family of the address NTS-KE ran over.
      const auto same_family = std::find_if(
          found.begin(), found.end(), [&](const auto& a) { return a.is_v4() == address_.is_v4(); });
      start_probing(same_family != found.end() ? *same_family : found.front(), ntp_port);
    });
  }

  void start_probing(const asio::ip::address& ntp_address, std::uint16_t ntp_port) {
    const asio::ip::udp::endpoint endpoint(ntp_address, ntp_port);
    result_.nts_ntp_server = format_endpoint(ntp_address, ntp_port);
    if (!probe_ || probe_->server() != endpoint) {
      ProbeOptions probe_options;
      probe_options.kernel_timestamps = options_.kernel_timestamps;
      probe_options.nts = nts_;
      probe_ =
          std::make_unique<UdpProbe>(io_, endpoint, clock_, rng_, make_handlers(), probe_options);
    }
    next();
  }

  void send() {
    if (nts_ && nts_->cookies.empty()) {
      // Out of cookies (every reply lost, or an NTSN): a fresh NTS-KE refills the jar.
      start_nts_ke();
      return;
    }
    const double next_s = poll_.on_send(0.0);
    next_due_ns_ = mono_.now_ns() + std::llround(next_s * 1e9);
    ++result_.requests;
    probe_->send(version_, poll_exponent_, options_.timeout);
  }

  void on_outcome(const ProbeOutcome& outcome) {
    const double rho_local_s = clock_.precision_s();
    switch (outcome.kind) {
      case ProbeOutcome::Kind::kReply: {
        const algo::Sample sample =
            algo::make_sample(outcome.header, outcome.t1, outcome.t4, rho_local_s);
        filter_.add(sample, outcome.t4, rho_local_s);
        accepted_.push_back({outcome.t4, outcome.header});
        ++result_.samples;
        if (outcome.authenticated) ++result_.authenticated_samples;
        poll_.on_reply();
        break;
      }
      case ProbeOutcome::Kind::kKissOfDeath:
        result_.kod = outcome.kiss_code;
        if (ends_polling(outcome.kiss)) {
          poll_.on_stop();
        } else {
          // An NTSN has emptied the cookie jar; send() redoes NTS-KE before the next request.
          poll_.on_miss();
        }
        break;
      case ProbeOutcome::Kind::kTimeout:
        ++result_.timeouts;
        poll_.on_miss();
        break;
      case ProbeOutcome::Kind::kError:
        send_error_ = outcome.error;
        poll_.on_miss();
        break;
    }
    next();
  }

  void on_rejected(proto::RejectReason reason, const proto::Header* header) {
    ++result_.rejections[static_cast<std::size_t>(reason)];
    if (header == nullptr) return;
    // Unauthenticated (the auth check runs after these tests): shown only without authentication.
    if (options_.auth == QueryOptions::Auth::kNone && proto::reveals_header(reason)) {
      refused_header_ = *header;
    }
    // These passed the origin test (check_reply runs it first), so the server really said so.
    if (reason == proto::RejectReason::kUnsynchronized) {
      if (header->leap == proto::LeapIndicator::kUnsynchronized) {
        unsynchronized_ = "unsynchronized (LI=3)";
      } else {
        const auto code = proto::kiss_code(header->refid);
        unsynchronized_ = "unsynchronized (stratum 0, " + code.value_or("?") + ")";
      }
    } else if (reason == proto::RejectReason::kBadStratum) {
      unsynchronized_ = "unsynchronized (stratum " + std::to_string(header->stratum) + ")";
    }
  }

  void next() {
    if (poll_.burst_done()) {
      finish();
      return;
    }
    // Never before the previous request has its outcome (this is called then), and never
    // sooner after it left than the poll state said.
    const std::int64_t wait_ns = next_due_ns_ - mono_.now_ns();
    if (wait_ns <= 0) {
      send();
      return;
    }
    timer_.expires_after(std::chrono::nanoseconds(wait_ns));
    timer_.async_wait([this](const asio::error_code& ec) {
      if (!ec && !finished_) send();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    on_done_();
  }

  std::string failure_reason() const {
    if (ke_error_) return *ke_error_;
    if (result_.kod) return "kiss-o'-death " + *result_.kod;
    if (unsynchronized_) return *unsynchronized_;
    if (send_error_) return *send_error_;
    std::string text;
    if (result_.timeouts > 0 || result_.total_rejections() == 0) {
      text = "no reply (" + plural(result_.timeouts, "request") + " timed out";
    } else {
      text = "no valid reply (";
    }
    std::string rejected;
    for (std::size_t i = 0; i < result_.rejections.size(); ++i) {
      if (result_.rejections[i] == 0) continue;
      rejected += rejected.empty() ? "" : ", ";
      rejected += std::string(proto::to_string(static_cast<proto::RejectReason>(i))) + " " +
                  std::to_string(result_.rejections[i]);
    }
    if (!rejected.empty()) {
      text += (text.back() == '(' ? "rejected: " : "; rejected: ") + rejected;
    }
    text += ")";
    if (result_.auth_error) text = "authentication failed: " + *result_.auth_error + "; " + text;
    return text;
  }

  QueryOptions options_;
  QueryTarget target_;
  asio::ip::address address_;
  std::uint8_t version_;
  std::int8_t poll_exponent_;
  asio::io_context& io_;
  AsyncDns& dns_;
  Clock& clock_;
  MonoClock& mono_;
  Rng& rng_;
  asio::steady_timer timer_;
  NtsKeClient ke_;
  std::shared_ptr<NtsState> nts_;
  std::unique_ptr<UdpProbe> probe_;
  std::optional<std::string> ke_error_;
  std::function<void()> on_done_;
  AddressResult result_;
  algo::ClockFilter filter_;
  std::vector<Accepted> accepted_;
  monitor::PollState poll_;
  std::int64_t next_due_ns_ = 0;  // MonoClock time the next request may leave
  std::optional<std::string> unsynchronized_;
  std::optional<proto::Header> refused_header_;  // last reply refused for its header's claims
  std::optional<std::string> send_error_;
  bool finished_ = false;
};

}  // namespace

std::int8_t query_poll_exponent(std::chrono::nanoseconds interval) {
  return std::max(proto::kDefaultPollExponent,
                  proto::poll_exponent(std::chrono::duration<double>(interval).count()));
}

std::string_view to_string(QueryOptions::Auth auth) {
  switch (auth) {
    case QueryOptions::Auth::kNts:
      return "nts";
    case QueryOptions::Auth::kKey:
      return "key";
    case QueryOptions::Auth::kNone:
      break;
  }
  return "none";
}

std::uint64_t AddressResult::total_rejections() const {
  return std::accumulate(rejections.begin(), rejections.end(), std::uint64_t{0});
}

std::vector<AddressResult> run_query(const std::vector<QueryTarget>& targets,
                                     const QueryOptions& options, Clock& clock, Rng& rng) {
  SteadyMonoClock mono;
  return run_query(targets, options, clock, mono, rng);
}

std::vector<AddressResult> run_query(const std::vector<QueryTarget>& targets,
                                     const QueryOptions& options, Clock& clock, MonoClock& mono,
                                     Rng& rng) {
  // Declared before the lookups and the queries: their sockets and timers must go first.
  asio::io_context io;
  DnsOptions dns_options;
  dns_options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options.dns_timeout);
  AsyncDns dns(io, dns_options);
  // One slot per target: either the resolver error or the indices of its address queries.
  struct Slot {
    std::optional<AddressResult> unresolved;
    std::vector<std::size_t> queries;
  };
  std::vector<Slot> slots(targets.size());
  std::vector<std::unique_ptr<AddressQuery>> queries;
  // Lookups not answered yet plus address queries not finished.
  std::size_t remaining = 0;
  auto on_done = [&] {
    if (--remaining > 0) return;
    // Every lookup is answered and every address finished: close the sockets kept open for
    // late datagrams and let c-ares go, which leaves the io_context without work.
    for (auto& query : queries) query->close();
    dns.cancel();
  };
  auto unresolved = [&](std::size_t i, std::string error) {
    AddressResult failed;
    failed.host = targets[i].host;
    failed.port = targets[i].port;
    failed.error = std::move(error);
    slots[i].unresolved = std::move(failed);
  };

  // Every name is looked up at once, and the probing of a target starts when its own answer
  // comes: a name whose DNS never answers delays only itself, by dns_timeout at most.
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const QueryTarget& target = targets[i];
    if (target.host.empty()) {
      unresolved(i, "cannot resolve host: empty name");
      continue;
    }
    ++remaining;
    dns.lookup(target.host,
               [&, i](const std::error_code& ec, std::vector<asio::ip::address> addresses) {
                 if (ec) {
                   unresolved(i, "cannot resolve host: " + targets[i].host + ": " + ec.message());
                 } else {
                   for (const auto& address : addresses) {
                     slots[i].queries.push_back(queries.size());
                     ++remaining;
                     queries.push_back(std::make_unique<AddressQuery>(
                         io, dns, targets[i], address, options, clock, mono, rng, on_done));
                     queries.back()->start();
                   }
                 }
                 on_done();
               });
  }
  if (remaining > 0) io.run();

  const proto::NtpTimestamp end_time = clock.now_ntp();
  std::vector<AddressResult> results;
  for (auto& slot : slots) {
    if (slot.unresolved) results.push_back(std::move(*slot.unresolved));
    for (const std::size_t index : slot.queries) {
      results.push_back(queries[index]->summarise(end_time));
    }
  }
  return results;
}

std::vector<AddressResult> run_query(const std::vector<QueryTarget>& targets,
                                     const QueryOptions& options) {
  SystemClock clock;
  SystemRng rng;
  return run_query(targets, options, clock, rng);
}

}  // namespace ntpmon::engine
