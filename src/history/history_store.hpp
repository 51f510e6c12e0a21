// The measurement history of the daemon: every accepted sample and every alert transition, kept
// in memory for the live view and in an SQLite database so that charts over 1 h / 24 h / 7 d
// survive a restart.
//
// Responsible for: taking records from the event loop without ever making it wait on disk
// (record_* copy into a per-server ring and push into a bounded queue; a full queue drops and
// counts), writing them from one writer thread in batched transactions, enforcing retention by
// age and by size on that thread, answering queries (downsampled series computed in SQL, alert
// transitions, known servers) from HTTP threads on a separate read connection (WAL mode lets
// them run while the writer writes), turning itself off with a clear error, counted and logged,
// when the database cannot be opened at start (the caller keeps monitoring without history), and
// riding out a write that fails later (disk full, read-only, I/O error, lock held, file deleted
// or replaced): it keeps the new records in a bounded buffer, counts the errors by reason, tries
// again with back-off (outage.hpp) and writes the buffer when the database takes writes again. Not
// responsible for: deciding what is a sample or an alert (src/monitor), formatting JSON
// (src/export), or where the file lives (config). Own plain record structs keep this module free of
// the monitor's types: the daemon converts enums with to_string.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "proto/result.hpp"

namespace ntpmon::history {

namespace detail {
class BatchWriter;  // the write connection with its inserts (batch_writer.hpp)
class Connection;   // the read connection (sqlite.hpp)
class WriterQueue;  // the queue to the writer thread, and the thread (writer_queue.hpp)
}  // namespace detail
class OutageBuffer;   // records kept while the database cannot be written (outage.hpp)
class RetrySchedule;  // when to try again (outage.hpp)

// One accepted measurement of one server address.
struct SampleRecord {
  std::int64_t time_unix_ns = 0;  // when the sample was taken (the daemon's wall clock)
  std::string server;             // configured name
  std::string address;            // resolved address the sample came from
  double offset_s = 0;
  double delay_s = 0;
  std::optional<double> jitter_s;  // absent until the filter has enough samples
  int stratum = 0;
  std::string state;  // monitor::to_string(ServerState): "selected", "candidate", ...
};

// A sample as the event loop has it: the same fields, the texts borrowed. Recording one copies
// the texts only into the database queue (when history is persistent), not for the ring.
struct SampleView {
  std::int64_t time_unix_ns = 0;
  std::string_view server;
  std::string_view address;
  double offset_s = 0;
  double delay_s = 0;
  std::optional<double> jitter_s;
  int stratum = 0;
  std::string_view state;
};
// A record's fields, borrowed (valid while the record lives).
SampleView view_of(const SampleRecord& record);

// One alert transition (an alert fired or resolved).
struct AlertRecord {
  std::int64_t time_unix_ns = 0;
  std::string server;
  std::string address;
  std::string kind;    // monitor::to_string(AlertKind): "offset", "unreachable", ...
  bool firing = true;  // false: resolved
  std::string message;
};

// One downsampled point: the samples of one server whose time falls in
// [bucket_start_unix_s, bucket_start_unix_s + step_s). Buckets are aligned to multiples of the
// step since the Unix epoch (not to `since`), so a chart that is refreshed every few seconds
// keeps the same buckets; buckets without samples are absent (a gap in the chart).
struct SampleBucket {
  std::int64_t bucket_start_unix_s = 0;
  double offset_avg_s = 0;
  double offset_min_s = 0;
  double offset_max_s = 0;
  double delay_avg_s = 0;
  std::optional<double> jitter_avg_s;  // absent when no sample in the bucket had one
  int stratum_last = 0;                // stratum of the latest sample in the bucket
  std::int64_t count = 0;
  std::int64_t first_unix_ns = 0;  // time of the first and last sample in the bucket
  std::int64_t last_unix_ns = 0;
};

struct ServerInfo {
  std::string name;
  std::int64_t first_unix_ns = 0;  // oldest sample still stored (0 when none is left)
  std::int64_t last_unix_ns = 0;   // newest sample
};

// Why the database could not be written. The order is the order of the metric's series
// (monitor::HistoryStatus::kWriteErrorReasons has the same names).
enum class WriteFailure : std::uint8_t {
  kFull,      // ENOSPC, EDQUOT, SQLITE_FULL: the file system or a quota is full
  kReadonly,  // EROFS, EACCES, EPERM, SQLITE_READONLY: the file or its file system is read-only
  kIo,        // EIO, SQLITE_IOERR: the device failed
  kBusy,      // SQLITE_BUSY, SQLITE_LOCKED: another process held the lock past the busy timeout
  kMissing,   // the file was deleted or replaced by another one (ENOENT, SQLITE_CANTOPEN)
  kOther,     // anything else (a file that is no longer a database, ...)
};
inline constexpr std::size_t kWriteFailureCount = 6;
inline constexpr std::array<std::string_view, kWriteFailureCount> kWriteFailureNames = {
    "full", "readonly", "io", "busy", "missing", "other"};
std::string_view to_string(WriteFailure failure);

enum class HistoryLogLevel : std::uint8_t { kInfo, kWarning, kError };

struct HistoryOptions {
  // Records waiting for the writer; the event loop never waits, a full queue drops. The writer
  // takes the whole queue at once, so up to twice this many rows can be in flight.
  std::size_t queue_capacity = 100'000;
  // The writer commits when this many rows are waiting or flush_interval has passed.
  std::size_t batch_rows = 1000;
  std::chrono::milliseconds flush_interval{1000};
  // Retention, enforced by the writer at open and then every retention_interval.
  std::chrono::seconds max_age{std::chrono::hours(24 * 7)};  // 0 = keep forever
  std::int64_t max_rows = 10'000'000;                        // samples; 0 = no limit
  std::int64_t max_bytes = 1'000'000'000;                    // database file; 0 = no limit
  std::chrono::milliseconds retention_interval{std::chrono::minutes(1)};
  // Latest samples kept in memory per server for the live view.
  std::size_t ring_capacity = 600;
  // Longest series a query may return, so one request cannot make the read thread work on
  // millions of buckets.
  std::int64_t max_query_buckets = 20'000;
  std::int64_t max_query_alerts = 10'000;
  // How long a statement waits for a lock another connection or process holds before it fails
  // (a failed write starts an outage: see below).
  std::chrono::milliseconds busy_timeout{5000};
  // An outage: a write that fails (disk full, read-only, I/O error, lock held, file deleted or
  // replaced) does not turn history off. The writer keeps the records that arrive in a buffer of
  // this many (about 200 bytes each: 100,000 is about 20 MB at most; the oldest are dropped and
  // counted when it is full) and tries again after retry_initial, then after twice the previous
  // wait, up to retry_max (1, 2, 4, ..., 32, 60, 60, ... s). Each try reopens the file when it
  // was deleted or replaced (or the error was not a full disk or a lock); the first try that
  // succeeds writes the whole buffer in one transaction and the outage ends.
  std::size_t outage_buffer_records = 100'000;
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{60'000};
  // The wall clock for retention by age; injectable so tests use fixed timestamps.
  std::function<std::int64_t()> now_unix_ns;
  // Called from the writer thread and from open()/close(); must be thread-safe.
  std::function<void(HistoryLogLevel, std::string_view message)> log;
};

struct HistoryCounters {
  bool enabled = false;   // a database is open (writable, or in an outage and retrying)
  bool writable = false;  // enabled and the latest write (or retry) succeeded
  std::string error;      // why history is off or not writable ("" when writable)
  std::string reason;     // the outage's WriteFailure name ("" when writable or off)
  std::uint64_t samples_written = 0;
  std::uint64_t alerts_written = 0;
  std::uint64_t dropped_queue_full = 0;   // record_* found the queue full
  std::uint64_t dropped_disabled = 0;     // history was off (never opened, or closed)
  std::uint64_t dropped_buffer_full = 0;  // pushed out of the full outage buffer
  std::uint64_t write_errors = 0;         // failed writes and retries, every reason
  std::array<std::uint64_t, kWriteFailureCount> write_errors_by_reason{};  // by WriteFailure
  std::uint64_t buffered = 0;           // records held in the outage buffer now
  std::uint64_t retention_deleted = 0;  // samples and alerts removed by retention
  std::uint64_t queue_depth = 0;        // records waiting now
  std::int64_t db_size_bytes = 0;       // the main database file (pages in use)
  std::int64_t stored_samples = 0;
};

struct RetentionResult {
  std::int64_t deleted_by_age = 0;
  std::int64_t deleted_by_rows = 0;
  std::int64_t deleted_by_bytes = 0;
};

// Empty success for open(); the error is one line for people.
struct Opened {};

class HistoryStore {
 public:
  explicit HistoryStore(HistoryOptions options = {});
  ~HistoryStore();  // close()
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  // Opens or creates the database at `path` (WAL mode), checks its schema version, loads the
  // latest samples of each server into the rings and starts the writer thread. Blocking disk
  // I/O: call it before the event loop runs (or from a worker). Never throws: a file that is not
  // a database, a newer schema or an unwritable directory give a one-line error, history stays
  // off and the rings keep working.
  Result<Opened, std::string> open(const std::string& path);
  // Writes everything queued, stops the writer and closes the database. Idempotent. Call it
  // after the event loop has stopped recording.
  void close();

  // Event-loop calls: O(1), never wait on disk. The sample goes into the server's ring (always)
  // and into the queue (when history is enabled and the queue has room; otherwise counted).
  void record_sample(SampleRecord sample);
  void record_alert(AlertRecord alert);
  // The same through a handle of the sample's server ring, found once (ring_of) and kept by the
  // caller per source: a sample then costs no lookup by name. Handles stay valid for the
  // store's life (rings are never dropped); ring_of returns null when the rings are off
  // (ring_capacity 0), and a null handle records to the queue only.
  struct Ring;
  [[nodiscard]] Ring* ring_of(const std::string& server);
  // Whether ring_of() gives handles at all (false: ring_capacity 0, the live view is off).
  [[nodiscard]] bool keeps_rings() const { return options_.ring_capacity > 0; }
  void record_sample(Ring* ring, const SampleView& sample);
  // A hint: a sample for this ring comes soon (the engine holds a batch of replies); its
  // bookkeeping is fetched into the CPU cache. Changes nothing; null is ignored.
  static void prefetch(const Ring* ring);

  // Thread-safe reads for HTTP threads. enabled: a database is open (queries work, also during
  // an outage); writable: and the latest write succeeded.
  [[nodiscard]] bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  [[nodiscard]] bool writable() const { return writable_.load(std::memory_order_relaxed); }
  [[nodiscard]] HistoryCounters counters() const;
  // The latest ring_capacity samples of a server, oldest first (empty for an unknown server).
  [[nodiscard]] std::vector<SampleRecord> recent_samples(const std::string& server) const;
  // Downsampled samples of `server` with since <= time < until (Unix ns), step in seconds.
  // Errors: history off, since >= until, step < 1, too many buckets, or a database error.
  [[nodiscard]] Result<std::vector<SampleBucket>, std::string> query_samples(
      const std::string& server, std::int64_t since_unix_ns, std::int64_t until_unix_ns,
      std::int64_t step_s) const;
  // Alert transitions with since <= time < until, oldest first; `server` empty = all servers.
  [[nodiscard]] Result<std::vector<AlertRecord>, std::string> query_alerts(
      std::int64_t since_unix_ns, std::int64_t until_unix_ns, const std::string& server = {}) const;
  // Servers that have stored samples, by name.
  [[nodiscard]] Result<std::vector<ServerInfo>, std::string> servers() const;

  // Blocks until every record queued before the call is written, kept in the outage buffer, or
  // dropped because history is off. For tests and for an orderly shutdown; never call it on the
  // event loop, nor while the writer is paused.
  void flush();
  // Runs retention now on the writer thread and waits for it. For tests and operators.
  Result<RetentionResult, std::string> run_retention();
  // Test hook: a paused writer takes nothing from the queue, so the queue fills up.
  void pause_writer_for_test(bool paused);

 private:
  using Entry = std::variant<SampleRecord, AlertRecord>;

  void enqueue(Entry entry);
  Ring& ring_for(const std::string& server);
  void writer_loop();
  Result<RetentionResult, std::string> retention(std::int64_t& stored);
  void update_size(std::int64_t stored);
  // Outage handling, on the writer thread (history_store.cpp explains the steps).
  void write_batch(std::vector<Entry>& batch, std::int64_t& stored);
  void start_or_extend_outage(WriteFailure failure, const std::string& error);
  void retry(std::int64_t& stored, bool final_try);
  // An error string, or "" when the file at path_ is still the one that was opened.
  [[nodiscard]] std::string file_changed() const;
  // Closes both connections and opens them again at path_; `moved`: the file there is not
  // the one that was opened. An error string, or "".
  std::string reopen(std::int64_t& stored, WriteFailure& failure, bool moved);
  void remember_file();
  void buffer(std::vector<Entry>& batch);
  void log(HistoryLogLevel level, const std::string& message) const;
  [[nodiscard]] std::int64_t now_unix_ns() const;

  HistoryOptions options_;
  std::string path_;

  std::atomic<bool> enabled_{false};
  std::atomic<bool> writable_{false};
  mutable std::mutex error_mutex_;
  std::string error_;
  std::string reason_;  // guarded by error_mutex_

  // Rings: only the event loop inserts servers (exclusive lock, once per server); readers and
  // the event loop find a ring under the shared lock and then take ring_items_mutex_. Rings are
  // never removed while the store lives, so a found pointer stays valid.
  mutable std::shared_mutex rings_mutex_;
  // Guards the items of every ring (one lock for all: the event loop is the only writer and
  // readers copy a ring now and then, so it is never contended, and one lock stays in cache
  // where a lock per ring was a cache miss per sample).
  mutable std::mutex ring_items_mutex_;
  std::unordered_map<std::string, std::unique_ptr<Ring>> rings_;

  std::unique_ptr<detail::WriterQueue> queue_;

  std::atomic<std::uint64_t> samples_written_{0};
  std::atomic<std::uint64_t> alerts_written_{0};
  std::atomic<std::uint64_t> dropped_queue_full_{0};
  std::atomic<std::uint64_t> dropped_disabled_{0};
  std::atomic<std::uint64_t> write_errors_{0};
  std::array<std::atomic<std::uint64_t>, kWriteFailureCount> write_errors_by_reason_{};
  std::atomic<std::uint64_t> dropped_buffer_full_{0};
  std::atomic<std::uint64_t> buffered_{0};
  std::atomic<std::uint64_t> retention_deleted_{0};
  std::atomic<std::int64_t> db_size_bytes_{0};
  std::atomic<std::int64_t> stored_samples_{0};

  // Used only by the writer thread after open().
  std::unique_ptr<OutageBuffer> outage_buffer_;
  std::unique_ptr<RetrySchedule> retry_;
  std::chrono::steady_clock::time_point outage_started_{};
  WriteFailure outage_reason_ = WriteFailure::kOther;
  std::uint64_t outage_dropped_ = 0;  // records dropped in the current outage (for the log)
  std::uint64_t file_device_ = 0;     // identity of the file opened at path_
  std::uint64_t file_inode_ = 0;

  std::unique_ptr<detail::BatchWriter> writer_db_;  // used only by the writer thread after open()
  mutable std::mutex reader_mutex_;                 // one query at a time on the read connection
  std::unique_ptr<detail::Connection> reader_db_;
};

}  // namespace ntpmon::history
