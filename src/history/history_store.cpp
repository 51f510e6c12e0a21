#include "history/history_store.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <system_error>
#include <utility>

#include "history/batch_writer.hpp"
#include "history/queries.hpp"
#include "history/retention.hpp"
#include "history/sample_ring.hpp"
#include "history/schema.hpp"
#include "history/sqlite.hpp"
#include "history/writer_queue.hpp"

namespace ntpmon::history {

SampleView view_of(const SampleRecord& r) {
  return SampleView{r.time_unix_ns, r.server,   r.address, r.offset_s,
                    r.delay_s,      r.jitter_s, r.stratum, r.state};
}

// The handle the event loop keeps per source; all of it is the ring (prefetch() relies on that).
struct HistoryStore::Ring : detail::SampleRing {};

HistoryStore::HistoryStore(HistoryOptions options)
    : options_(std::move(options)),
      queue_(std::make_unique<detail::WriterQueue>(options_.queue_capacity, options_.batch_rows)) {}

HistoryStore::~HistoryStore() { close(); }

std::int64_t HistoryStore::now_unix_ns() const {
  if (options_.now_unix_ns) return options_.now_unix_ns();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void HistoryStore::log(HistoryLogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, message);
}

void HistoryStore::fail(const std::string& error) {
  enabled_.store(false, std::memory_order_relaxed);
  {
    std::lock_guard lock(error_mutex_);
    error_ = error;
  }
  log(HistoryLogLevel::kError, "history turned off: " + error);
}

Result<Opened, std::string> HistoryStore::open(const std::string& path) {
  try {
    if (queue_->started()) return Err{std::string("history store is already open")};
    auto set_error = [this](std::string error) -> Result<Opened, std::string> {
      {
        std::lock_guard lock(error_mutex_);
        error_ = error;
      }
      log(HistoryLogLevel::kError, "history off: " + error);
      return Err{std::move(error)};
    };
    const std::string where = detail::where(path);
    // Readers never block the writer in WAL mode; the timeout covers checkpoints and another
    // process holding the file.
    const int busy_ms = static_cast<int>(std::clamp<std::int64_t>(options_.busy_timeout.count(), 0,
                                                                  std::numeric_limits<int>::max()));

    auto connection = detail::open_write_connection(path, busy_ms);
    if (!connection) return set_error(connection.error());
    auto writer = detail::BatchWriter::prepare(std::move(connection.value()));
    if (!writer) return set_error(where + writer.error());
    sqlite3* db = writer.value()->db();
    const auto rows = detail::query_int(db, "SELECT count(*) FROM samples");
    const auto bytes = detail::file_bytes(db);
    if (!rows || !bytes) {
      return set_error(where + "cannot read: " + detail::describe(db, sqlite3_errcode(db)));
    }

    auto reader = detail::open_read_connection(path, busy_ms);
    if (!reader) return set_error(reader.error());

    // A restart loses nothing in the live view either: the rings start with the stored tail.
    const std::string tails_error = detail::select_tails(
        reader->get(), options_.ring_capacity,
        [this](const std::string& name, const std::vector<SampleRecord>& newest_first) {
          Ring& ring = ring_for(name);
          std::lock_guard lock(ring_items_mutex_);
          if (!ring.empty()) return;  // the live view already has newer samples
          for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
            ring.push(view_of(*it), options_.ring_capacity);
          }
        });
    if (!tails_error.empty()) return set_error(where + "cannot read: " + tails_error);

    stored_samples_.store(*rows);
    db_size_bytes_.store(*bytes);
    path_ = path;
    writer_db_ = std::move(writer.value());
    {
      std::lock_guard lock(reader_mutex_);
      reader_db_ = std::make_unique<detail::Connection>(std::move(reader.value()));
    }
    {
      std::lock_guard lock(error_mutex_);
      error_.clear();
    }
    enabled_.store(true);
    try {
      queue_->start([this] { writer_loop(); });
    } catch (const std::system_error& e) {
      enabled_.store(false);
      writer_db_.reset();
      {
        std::lock_guard lock(reader_mutex_);
        reader_db_.reset();
      }
      return set_error(where + "cannot start the writer thread: " + e.what());
    }
    log(HistoryLogLevel::kInfo,
        "history database '" + path + "' opened with " + std::to_string(*rows) + " samples");
    return Opened{};
  } catch (const std::exception& e) {
    enabled_.store(false);
    std::string error = detail::where(path) + e.what();
    {
      std::lock_guard lock(error_mutex_);
      error_ = error;
    }
    return Err{error};
  }
}

void HistoryStore::close() {
  if (!queue_->stop()) return;
  const bool was_enabled = enabled_.exchange(false);
  writer_db_.reset();
  {
    std::lock_guard lock(reader_mutex_);
    reader_db_.reset();
  }
  if (was_enabled) log(HistoryLogLevel::kInfo, "history database '" + path_ + "' closed");
}

HistoryStore::Ring& HistoryStore::ring_for(const std::string& server) {
  {
    std::shared_lock lock(rings_mutex_);
    auto it = rings_.find(server);
    if (it != rings_.end()) return *it->second;
  }
  std::unique_lock lock(rings_mutex_);
  auto& slot = rings_[server];
  if (!slot) {
    slot = std::make_unique<Ring>();
  }
  return *slot;
}

void HistoryStore::record_sample(SampleRecord sample) {
  // One path for every sample; the texts are copied once more, for the database queue.
  record_sample(ring_of(sample.server), view_of(sample));
}

HistoryStore::Ring* HistoryStore::ring_of(const std::string& server) {
  return options_.ring_capacity > 0 ? &ring_for(server) : nullptr;
}

void HistoryStore::prefetch(const Ring* ring) {
  if (ring == nullptr) return;
  __builtin_prefetch(ring);
  __builtin_prefetch(reinterpret_cast<const char*>(ring) + 64);
}

void HistoryStore::record_sample(Ring* ring, const SampleView& sample) {
  if (ring != nullptr) {
    std::lock_guard lock(ring_items_mutex_);
    ring->push(sample, options_.ring_capacity);
  }
  if (!enabled_.load(std::memory_order_relaxed)) {
    dropped_disabled_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  SampleRecord r;
  r.time_unix_ns = sample.time_unix_ns;
  r.server = sample.server;
  r.address = sample.address;
  r.offset_s = sample.offset_s;
  r.delay_s = sample.delay_s;
  r.jitter_s = sample.jitter_s;
  r.stratum = sample.stratum;
  r.state = sample.state;
  enqueue(Entry{std::in_place_index<0>, std::move(r)});
}

void HistoryStore::record_alert(AlertRecord alert) {
  enqueue(Entry{std::in_place_index<1>, std::move(alert)});
}

void HistoryStore::enqueue(Entry entry) {
  if (!enabled_.load(std::memory_order_relaxed)) {
    dropped_disabled_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!queue_->push(std::move(entry))) {
    dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
  }
}

Result<RetentionResult, std::string> HistoryStore::retention(std::int64_t& stored) {
  const detail::RetentionLimits limits{options_.max_age.count(), options_.max_rows,
                                       options_.max_bytes};
  detail::RetentionProgress progress{stored, 0};
  auto result = detail::enforce_retention(
      writer_db_->db(), limits, [this] { return now_unix_ns(); }, progress);
  stored = progress.stored_samples;
  retention_deleted_.fetch_add(static_cast<std::uint64_t>(progress.alerts_deleted));
  if (!result) return result;
  const std::int64_t total =
      result->deleted_by_age + result->deleted_by_rows + result->deleted_by_bytes;
  if (total > 0) {
    retention_deleted_.fetch_add(static_cast<std::uint64_t>(total));
    log(HistoryLogLevel::kInfo, "history retention deleted " + std::to_string(total) +
                                    " samples (" + std::to_string(result->deleted_by_age) +
                                    " by age, " + std::to_string(result->deleted_by_rows) +
                                    " by rows, " + std::to_string(result->deleted_by_bytes) +
                                    " by size)");
  }
  return result;
}

void HistoryStore::update_size(std::int64_t stored) {
  if (const auto bytes = detail::file_bytes(writer_db_->db())) db_size_bytes_.store(*bytes);
  stored_samples_.store(stored);
}

void HistoryStore::writer_loop() {
  using Clock = std::chrono::steady_clock;
  std::vector<Entry> batch;
  std::int64_t stored = stored_samples_.load();

  // Retention once at start, before any queued record is written, then every interval.
  if (enabled_.load(std::memory_order_relaxed)) {
    auto result = retention(stored);
    if (!result) {
      write_errors_.fetch_add(1);
      fail("retention on '" + path_ + "' failed: " + result.error());
    }
    update_size(stored);
  }
  auto next_retention = Clock::now() + options_.retention_interval;

  for (;;) {
    const auto work =
        queue_->wait(std::min(Clock::now() + options_.flush_interval, next_retention), batch);

    if (!batch.empty()) {
      if (enabled_.load(std::memory_order_relaxed)) {
        auto written = writer_db_->write(batch);
        if (written) {
          samples_written_.fetch_add(written->samples);
          alerts_written_.fetch_add(written->alerts);
          stored += static_cast<std::int64_t>(written->samples);
          update_size(stored);
        } else {
          write_errors_.fetch_add(1);
          dropped_disabled_.fetch_add(batch.size());
          fail("cannot write to '" + path_ + "': " + written.error());
        }
      } else {
        dropped_disabled_.fetch_add(batch.size());
      }
      queue_->processed(batch.size());
      batch.clear();
    }

    if (work.retention_request || Clock::now() >= next_retention) {
      Result<RetentionResult, std::string> result = Err{std::string("history is off")};
      if (enabled_.load(std::memory_order_relaxed)) {
        result = retention(stored);
        if (!result) {
          write_errors_.fetch_add(1);
          fail("retention on '" + path_ + "' failed: " + result.error());
        }
        update_size(stored);
      }
      next_retention = Clock::now() + options_.retention_interval;
      if (work.retention_request)
        queue_->answer_retention(*work.retention_request, std::move(result));
    }

    if (work.stopping && queue_->finish_if_drained()) break;
  }
}

void HistoryStore::flush() { queue_->flush(); }

Result<RetentionResult, std::string> HistoryStore::run_retention() {
  return queue_->request_retention();
}

void HistoryStore::pause_writer_for_test(bool paused) { queue_->set_paused(paused); }

HistoryCounters HistoryStore::counters() const {
  HistoryCounters c;
  c.enabled = enabled_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(error_mutex_);
    c.error = error_;
  }
  c.samples_written = samples_written_.load();
  c.alerts_written = alerts_written_.load();
  c.dropped_queue_full = dropped_queue_full_.load();
  c.dropped_disabled = dropped_disabled_.load();
  c.write_errors = write_errors_.load();
  c.retention_deleted = retention_deleted_.load();
  c.queue_depth = queue_->depth();
  c.db_size_bytes = db_size_bytes_.load();
  c.stored_samples = stored_samples_.load();
  return c;
}

std::vector<SampleRecord> HistoryStore::recent_samples(const std::string& server) const {
  Ring* ring = nullptr;
  {
    std::shared_lock lock(rings_mutex_);
    auto it = rings_.find(server);
    if (it == rings_.end()) return {};
    ring = it->second.get();
  }
  std::lock_guard lock(ring_items_mutex_);
  return ring->ordered(server);
}

namespace {

std::string off_reason(bool open, const std::string& error) {
  if (!error.empty()) return "history is off: " + error;
  return open ? "history is off" : "history is off: no database is open";
}

}  // namespace

// The queries below hold reader_mutex_ for the whole query: the read connection is NOMUTEX.

Result<std::vector<SampleBucket>, std::string> HistoryStore::query_samples(
    const std::string& server, std::int64_t since_unix_ns, std::int64_t until_unix_ns,
    std::int64_t step_s) const {
  std::string invalid =
      detail::sample_range_error(since_unix_ns, until_unix_ns, step_s, options_.max_query_buckets);
  if (!invalid.empty()) return Err{std::move(invalid)};
  std::lock_guard lock(reader_mutex_);
  if (!reader_db_ || !enabled()) {
    std::lock_guard elock(error_mutex_);
    return Err{off_reason(reader_db_ != nullptr, error_)};
  }
  return detail::select_sample_buckets(reader_db_->get(), server, since_unix_ns, until_unix_ns,
                                       step_s);
}

Result<std::vector<AlertRecord>, std::string> HistoryStore::query_alerts(
    std::int64_t since_unix_ns, std::int64_t until_unix_ns, const std::string& server) const {
  std::string invalid = detail::alert_range_error(since_unix_ns, until_unix_ns);
  if (!invalid.empty()) return Err{std::move(invalid)};
  std::lock_guard lock(reader_mutex_);
  if (!reader_db_ || !enabled()) {
    std::lock_guard elock(error_mutex_);
    return Err{off_reason(reader_db_ != nullptr, error_)};
  }
  return detail::select_alerts(reader_db_->get(), since_unix_ns, until_unix_ns, server,
                               options_.max_query_alerts);
}

Result<std::vector<ServerInfo>, std::string> HistoryStore::servers() const {
  std::lock_guard lock(reader_mutex_);
  if (!reader_db_ || !enabled()) {
    std::lock_guard elock(error_mutex_);
    return Err{off_reason(reader_db_ != nullptr, error_)};
  }
  return detail::select_servers(reader_db_->get());
}

}  // namespace ntpmon::history
