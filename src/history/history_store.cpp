#include "history/history_store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "history/batch_writer.hpp"
#include "history/outage.hpp"
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
      queue_(std::make_unique<detail::WriterQueue>(options_.queue_capacity, options_.batch_rows)),
      outage_buffer_(std::make_unique<OutageBuffer>(options_.outage_buffer_records)),
      retry_(std::make_unique<RetrySchedule>(options_.retry_initial, options_.retry_max)) {}

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

namespace {

int busy_timeout_ms(std::chrono::milliseconds timeout) {
  return static_cast<int>(
      std::clamp<std::int64_t>(timeout.count(), 0, std::numeric_limits<int>::max()));
}

// "2 s", "0.25 s", "61.5 s"
std::string seconds_text(std::chrono::steady_clock::duration d) {
  std::string text = std::to_string(std::chrono::duration<double>(d).count());
  if (text.find('.') != std::string::npos) {
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
  }
  return text + " s";
}

std::string reason_name(WriteFailure failure) { return std::string(to_string(failure)); }

}  // namespace

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
    const int busy_ms = busy_timeout_ms(options_.busy_timeout);

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
      reason_.clear();
    }
    remember_file();
    outage_buffer_->clear();
    buffered_.store(0);
    retry_->succeeded();
    enabled_.store(true);
    writable_.store(true);
    try {
      queue_->start([this] { writer_loop(); });
    } catch (const std::system_error& e) {
      enabled_.store(false);
      writable_.store(false);
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
    writable_.store(false);
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
  writable_.store(false);
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
  stored_samples_.store(stored);
  if (!writer_db_) return;
  if (const auto bytes = detail::file_bytes(writer_db_->db())) db_size_bytes_.store(*bytes);
}

// ---- The writer thread ------------------------------------------------------------------------
//
// A healthy writer writes each batch in one transaction and runs retention now and then. When a
// write fails, an outage starts: the batch and every later one go into the outage buffer, and
// retry() runs when the RetrySchedule says so. A retry reopens the file when it was deleted or
// replaced (checked by device and inode before every write, because SQLite would go on writing
// to a deleted file) or when the error may have left the connection unusable (anything but a
// full disk or a lock), then writes the whole buffer in one transaction; the first that succeeds
// ends the outage. Retention waits for the end of an outage.

void HistoryStore::remember_file() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    file_device_ = static_cast<std::uint64_t>(st.st_dev);
    file_inode_ = static_cast<std::uint64_t>(st.st_ino);
  } else {
    // Not a file SQLite keeps at that path (":memory:", a URI): nothing to watch.
    file_device_ = 0;
    file_inode_ = 0;
  }
}

std::string HistoryStore::file_changed() const {
  if (file_inode_ == 0) return {};
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return errno == ENOENT ? "the file was deleted" : std::string();
  }
  if (static_cast<std::uint64_t>(st.st_dev) != file_device_ ||
      static_cast<std::uint64_t>(st.st_ino) != file_inode_) {
    return "the file was replaced";
  }
  return {};
}

std::string HistoryStore::reopen(std::int64_t& stored, WriteFailure& failure, bool moved) {
  writer_db_.reset();
  {
    std::lock_guard lock(reader_mutex_);
    reader_db_.reset();
  }
  if (moved) {
    // SQLite neither checkpoints nor removes the WAL of a file that was deleted or replaced, so
    // its -wal and -shm are still at the path. Opened with them, a new file would take the old
    // file's pages from that WAL (a mix of both, or a malformed file): they go first.
    std::error_code ignored;
    std::filesystem::remove(path_ + "-wal", ignored);
    std::filesystem::remove(path_ + "-shm", ignored);
  }
  const int busy_ms = busy_timeout_ms(options_.busy_timeout);
  detail::OpenFailure why;
  auto connection = detail::open_write_connection(path_, busy_ms, &why);
  if (!connection) {
    failure = classify_failure(why.code, why.system_errno);
    return connection.error();
  }
  auto writer = detail::BatchWriter::prepare(std::move(connection.value()));
  if (!writer) {
    failure = WriteFailure::kOther;
    return detail::where(path_) + writer.error();
  }
  const auto rows = detail::query_int(writer.value()->db(), "SELECT count(*) FROM samples");
  auto reader = detail::open_read_connection(path_, busy_ms, &why);
  if (!reader) {
    failure = classify_failure(why.code, why.system_errno);
    return reader.error();
  }
  writer_db_ = std::move(writer.value());
  {
    std::lock_guard lock(reader_mutex_);
    reader_db_ = std::make_unique<detail::Connection>(std::move(reader.value()));
  }
  stored = rows.value_or(0);
  remember_file();
  log(HistoryLogLevel::kInfo,
      "history database '" + path_ + "' reopened with " + std::to_string(stored) + " samples");
  return {};
}

void HistoryStore::start_or_extend_outage(WriteFailure failure, const std::string& error) {
  const auto now = std::chrono::steady_clock::now();
  write_errors_.fetch_add(1);
  write_errors_by_reason_[static_cast<std::size_t>(failure)].fetch_add(1);
  const bool first = !retry_->failing();
  retry_->failed(now);
  outage_reason_ = failure;
  writable_.store(false);
  {
    std::lock_guard lock(error_mutex_);
    error_ = error;
    reason_ = std::string(to_string(failure));
  }
  const std::string next = seconds_text(retry_->last_delay());
  if (first) {
    outage_started_ = now;
    outage_dropped_ = 0;
    log(HistoryLogLevel::kError, "history cannot write (" + reason_name(failure) + "): " + error +
                                     "; keeping up to " +
                                     std::to_string(outage_buffer_->capacity()) +
                                     " new records in memory and trying again in " + next);
  } else {
    log(HistoryLogLevel::kWarning,
        "history still cannot write (" + reason_name(failure) + "): " + error + "; " +
            std::to_string(outage_buffer_->size()) + " records kept, next try in " + next);
  }
}

void HistoryStore::buffer(std::vector<Entry>& batch) {
  const std::size_t dropped = outage_buffer_->add(batch);
  buffered_.store(outage_buffer_->size());
  if (dropped == 0) return;
  dropped_buffer_full_.fetch_add(dropped);
  if (outage_dropped_ == 0) {
    log(HistoryLogLevel::kWarning, "history outage buffer full (" +
                                       std::to_string(outage_buffer_->capacity()) +
                                       " records): the oldest are dropped and counted");
  }
  outage_dropped_ += dropped;
}

void HistoryStore::write_batch(std::vector<Entry>& batch, std::int64_t& stored) {
  if (!retry_->failing()) {
    const std::string changed = file_changed();
    if (!changed.empty()) {
      // SQLite would write on to the old file: reopen at once, the batch waits in the buffer.
      start_or_extend_outage(WriteFailure::kMissing, detail::where(path_) + changed);
      buffer(batch);
      retry(stored, false);
      return;
    }
    auto written = writer_db_->write(batch);
    if (written) {
      samples_written_.fetch_add(written->samples);
      alerts_written_.fetch_add(written->alerts);
      stored += static_cast<std::int64_t>(written->samples);
      update_size(stored);
      batch.clear();
      return;
    }
    start_or_extend_outage(classify_failure(written.error().code, written.error().system_errno),
                           "cannot write to '" + path_ + "': " + written.error().message);
  }
  buffer(batch);
}

void HistoryStore::retry(std::int64_t& stored, bool final_try) {
  const std::string changed = file_changed();
  const bool reopen_first =
      !writer_db_ || !changed.empty() ||
      (outage_reason_ != WriteFailure::kFull && outage_reason_ != WriteFailure::kBusy);
  WriteFailure failure = WriteFailure::kOther;
  std::string error;
  if (final_try && outage_reason_ == WriteFailure::kBusy) {
    // Another process holds the lock: trying would make the close wait out the busy timeout.
    failure = WriteFailure::kBusy;
    error = "another process held the database lock";
  } else if (reopen_first) {
    error = reopen(stored, failure, !changed.empty());
  }
  if (error.empty()) {
    auto written = writer_db_->write_range(outage_buffer_->records());
    if (written) {
      const std::size_t records = outage_buffer_->size();
      samples_written_.fetch_add(written->samples);
      alerts_written_.fetch_add(written->alerts);
      stored += static_cast<std::int64_t>(written->samples);
      outage_buffer_->clear();
      buffered_.store(0);
      retry_->succeeded();
      {
        std::lock_guard lock(error_mutex_);
        error_.clear();
        reason_.clear();
      }
      writable_.store(true);
      update_size(stored);
      log(HistoryLogLevel::kInfo,
          "history writes again after " +
              seconds_text(std::chrono::steady_clock::now() - outage_started_) + ": " +
              std::to_string(records) + " records kept during the outage written, " +
              std::to_string(outage_dropped_) + " dropped");
      return;
    }
    failure = classify_failure(written.error().code, written.error().system_errno);
    error = "cannot write to '" + path_ + "': " + written.error().message;
  }
  if (!final_try) {
    start_or_extend_outage(failure, error);
    return;
  }
  write_errors_.fetch_add(1);
  write_errors_by_reason_[static_cast<std::size_t>(failure)].fetch_add(1);
  const std::size_t lost = outage_buffer_->size();
  dropped_disabled_.fetch_add(lost);
  outage_buffer_->clear();
  buffered_.store(0);
  log(HistoryLogLevel::kError, "history closed during an outage (" + reason_name(failure) +
                                   "): " + error + "; " + std::to_string(lost) +
                                   " records kept in memory were not written");
}

void HistoryStore::writer_loop() {
  using Clock = std::chrono::steady_clock;
  std::vector<Entry> batch;
  std::int64_t stored = stored_samples_.load();

  auto run_retention = [&]() -> Result<RetentionResult, std::string> {
    if (retry_->failing() || !writer_db_) {
      std::lock_guard lock(error_mutex_);
      return Err{"history cannot write now (" + reason_ + "): " + error_};
    }
    auto result = retention(stored);
    if (!result) {
      sqlite3* db = writer_db_->db();
      start_or_extend_outage(
          classify_failure(sqlite3_extended_errcode(db), sqlite3_system_errno(db)),
          "retention on '" + path_ + "' failed: " + result.error());
    }
    update_size(stored);
    return result;
  };

  // Retention once at start, before any queued record is written, then every interval.
  run_retention();
  auto next_retention = Clock::now() + options_.retention_interval;

  for (;;) {
    auto deadline = std::min(Clock::now() + options_.flush_interval, next_retention);
    if (retry_->failing()) deadline = std::min(deadline, retry_->next_attempt());
    const auto work = queue_->wait(deadline, batch);

    if (!batch.empty()) {
      const std::size_t taken = batch.size();
      write_batch(batch, stored);
      queue_->processed(taken);
      batch.clear();
    }

    if (retry_->failing() && !work.stopping && retry_->due(Clock::now())) retry(stored, false);

    if (work.retention_request || Clock::now() >= next_retention) {
      auto result = run_retention();
      next_retention = Clock::now() + options_.retention_interval;
      if (work.retention_request) {
        queue_->answer_retention(*work.retention_request, std::move(result));
      }
    }

    if (work.stopping && queue_->finish_if_drained()) {
      // One last try, without waiting for the schedule; a lock held by another process would
      // make it wait out the busy timeout, so that one is not tried.
      if (retry_->failing()) retry(stored, true);
      break;
    }
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
  c.writable = writable_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(error_mutex_);
    c.error = error_;
    c.reason = reason_;
  }
  c.samples_written = samples_written_.load();
  c.alerts_written = alerts_written_.load();
  c.dropped_queue_full = dropped_queue_full_.load();
  c.dropped_disabled = dropped_disabled_.load();
  c.write_errors = write_errors_.load();
  for (std::size_t i = 0; i < kWriteFailureCount; ++i) {
    c.write_errors_by_reason[i] = write_errors_by_reason_[i].load();
  }
  c.dropped_buffer_full = dropped_buffer_full_.load();
  c.buffered = buffered_.load();
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
