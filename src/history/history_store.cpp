#include "history/history_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <system_error>
#include <utility>

namespace ntpmon::history {

namespace {

constexpr int kSchemaVersion = 1;
constexpr std::int64_t kNsPerS = 1'000'000'000;
// Longest step a query accepts (~100 years): keeps step * 1e9 far from int64 overflow.
constexpr std::int64_t kMaxStepS = 100LL * 366 * 86400;
// After a checkpoint the WAL file is truncated to at most this size.
constexpr std::int64_t kJournalSizeLimitBytes = 64LL * 1024 * 1024;
// Size retention deletes down to this fraction of max_bytes, so it does not run on every batch.
constexpr double kBytesLowWater = 0.9;
constexpr int kMaxSizePasses = 8;

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE servers (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE samples (
  id        INTEGER PRIMARY KEY,
  server_id INTEGER NOT NULL REFERENCES servers(id),
  time_ns   INTEGER NOT NULL,
  address   TEXT NOT NULL,
  offset_s  REAL NOT NULL,
  delay_s   REAL NOT NULL,
  jitter_s  REAL,
  stratum   INTEGER NOT NULL,
  state     TEXT NOT NULL
);
CREATE INDEX samples_server_time ON samples (server_id, time_ns);
CREATE TABLE alerts (
  id      INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  server  TEXT NOT NULL,
  address TEXT NOT NULL,
  kind    TEXT NOT NULL,
  firing  INTEGER NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX alerts_time ON alerts (time_ns);
CREATE INDEX alerts_server_time ON alerts (server, time_ns);
)sql";

// "file is not a database (SQLITE_NOTADB)"-style text: SQLite's message plus the code's name,
// which is what an operator searches for.
std::string describe(sqlite3* db, int rc) {
  std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const char* generic = sqlite3_errstr(rc);
  if (generic != nullptr && message != generic) {
    message += " (";
    message += generic;
    message += ")";
  }
  return message;
}

// A prepared statement, finalized on destruction. Bind indexes are 1-based as in SQLite.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Stmt& operator=(Stmt&& other) noexcept {
    std::swap(stmt_, other.stmt_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }

  int prepare(sqlite3* db, std::string_view sql) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    return sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void bind(int index, int value) { sqlite3_bind_int(stmt_, index, value); }
  void bind(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
  void bind(int index, std::string_view value) {
    // SQLITE_TRANSIENT: SQLite copies, so the bound text may die before step().
    sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }
  void bind_null(int index) { sqlite3_bind_null(stmt_, index); }
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  [[nodiscard]] bool is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  [[nodiscard]] std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] double real(int col) const { return sqlite3_column_double(stmt_, col); }
  [[nodiscard]] std::string text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return {};
    return {reinterpret_cast<const char*>(p),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

int exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

// Runs a statement that returns one integer (a PRAGMA or a count); nullopt on error.
std::optional<std::int64_t> query_int(sqlite3* db, std::string_view sql) {
  Stmt stmt;
  if (stmt.prepare(db, sql) != SQLITE_OK) return std::nullopt;
  if (stmt.step() != SQLITE_ROW) return std::nullopt;
  return stmt.int64(0);
}

}  // namespace

SampleView view_of(const SampleRecord& r) {
  return SampleView{r.time_unix_ns, r.server,   r.address, r.offset_s,
                    r.delay_s,      r.jitter_s, r.stratum, r.state};
}

// The live view of one server: its latest samples, compact. A SampleRecord is ~150 bytes with
// three strings; a ring item is 40, with the address and the state as indexes into a small
// table of the distinct texts this ring has seen (a server has one address, or a few for a
// pool, and a handful of states). One item is one cache line touched per sample, and a
// thousand servers with 600 samples each take 24 MB instead of 90.
struct HistoryStore::Ring {
  struct Item {
    std::int64_t time_unix_ns = 0;
    double offset_s = 0;
    double delay_s = 0;
    double jitter_s = 0;
    std::int16_t stratum = 0;
    std::uint16_t address = 0;  // index into texts
    std::uint16_t state = 0;    // index into texts
    bool has_jitter = false;
  };
  // Past this many distinct texts (a pool that rotates its addresses for weeks), the table is
  // rebuilt from the items still held: it never grows without bound.
  static constexpr std::size_t kMaxTexts = 1024;

  std::vector<Item> items;  // grows to capacity, then overwritten round-robin
  std::vector<std::string> texts;
  std::uint32_t next = 0;  // oldest item once full
  // Where the last sample's address and state are in texts, and copies of those texts: the
  // usual next sample repeats them, and is recognised here, in the ring's own cache lines,
  // without reading the table's. kNoText after a compaction (the indexes moved).
  static constexpr std::uint16_t kNoText = UINT16_MAX;
  std::uint16_t last_address = kNoText;
  std::uint16_t last_state = kNoText;
  std::string last_address_text;
  std::string last_state_text;

  [[nodiscard]] bool is_last(std::string_view text, std::uint16_t last,
                             const std::string& last_text) const {
    return last < texts.size() && last_text == text;
  }

  std::uint16_t text_index(std::string_view text, std::uint16_t& last, std::string& last_text) {
    if (is_last(text, last, last_text)) return last;
    last = intern(text);
    last_text.assign(text);
    return last;
  }

  std::uint16_t intern(std::string_view text) {
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (texts[i] == text) return static_cast<std::uint16_t>(i);
    }
    texts.emplace_back(text);
    return static_cast<std::uint16_t>(texts.size() - 1);
  }

  void compact_texts() {
    std::vector<std::string> kept;
    std::vector<std::uint16_t> remap(texts.size(), UINT16_MAX);
    const auto keep = [&](std::uint16_t& index) {
      if (remap[index] == UINT16_MAX) {
        remap[index] = static_cast<std::uint16_t>(kept.size());
        kept.push_back(std::move(texts[index]));
      }
      index = remap[index];
    };
    for (Item& item : items) {
      keep(item.address);
      keep(item.state);
    }
    texts = std::move(kept);
    last_address = kNoText;
    last_state = kNoText;
  }

  void push(const SampleView& sample, std::size_t capacity) {
    Item item;
    item.time_unix_ns = sample.time_unix_ns;
    item.offset_s = sample.offset_s;
    item.delay_s = sample.delay_s;
    item.has_jitter = sample.jitter_s.has_value();
    item.jitter_s = sample.jitter_s.value_or(0.0);
    item.stratum = static_cast<std::int16_t>(std::clamp(sample.stratum, -32768, 32767));
    // Room for both texts first: a compaction renumbers the table, so it must not fall between
    // the two lookups (the first index would name another text, or none).
    if (texts.size() + 2 > kMaxTexts &&
        (!is_last(sample.address, last_address, last_address_text) ||
         !is_last(sample.state, last_state, last_state_text))) {
      compact_texts();
    }
    item.address = text_index(sample.address, last_address, last_address_text);
    item.state = text_index(sample.state, last_state, last_state_text);
    if (items.size() < capacity) {
      // Grown by doubling but never past the capacity, and not reserved up front: most
      // servers of a large fleet hold a few samples.
      if (items.size() == items.capacity()) {
        items.reserve(std::min(capacity, std::max<std::size_t>(4, 2 * items.size())));
      }
      items.push_back(item);
    } else {
      items[next] = item;
      next = static_cast<std::uint32_t>((next + 1) % capacity);
    }
  }

  [[nodiscard]] std::vector<SampleRecord> ordered(const std::string& server) const {
    std::vector<SampleRecord> out;
    out.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      const Item& item = items[(next + i) % items.size()];
      SampleRecord r;
      r.time_unix_ns = item.time_unix_ns;
      r.server = server;
      r.address = texts[item.address];
      r.offset_s = item.offset_s;
      r.delay_s = item.delay_s;
      if (item.has_jitter) r.jitter_s = item.jitter_s;
      r.stratum = item.stratum;
      r.state = texts[item.state];
      out.push_back(std::move(r));
    }
    return out;
  }
};

namespace detail {

struct Db {
  sqlite3* handle = nullptr;
  // Writer only: prepared once, reused for every row.
  Stmt insert_sample;
  Stmt insert_alert;
  Stmt insert_server;
  Stmt select_server;
  std::unordered_map<std::string, std::int64_t> server_ids;

  Db() = default;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db() {
    // Statements must be finalized before the connection closes.
    insert_sample = Stmt{};
    insert_alert = Stmt{};
    insert_server = Stmt{};
    select_server = Stmt{};
    sqlite3_close_v2(handle);
  }
};

}  // namespace detail

namespace {

// Opens a connection; on failure the error names the path and, for the common cause, a hint.
Result<std::unique_ptr<detail::Db>, std::string> open_connection(const std::string& path, int flags,
                                                                 int busy_timeout_ms) {
  auto db = std::make_unique<detail::Db>();
  int rc = sqlite3_open_v2(path.c_str(), &db->handle, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string error = "history database '" + path + "': cannot open: " + describe(db->handle, rc);
    if ((rc & 0xff) == SQLITE_CANTOPEN) {
      error += "; check that the directory exists and is writable";
    }
    return Err{error};
  }
  sqlite3_busy_timeout(db->handle, busy_timeout_ms);
  sqlite3_extended_result_codes(db->handle, 1);
  return db;
}

}  // namespace

HistoryStore::HistoryStore(HistoryOptions options) : options_(std::move(options)) {
  options_.queue_capacity = std::max<std::size_t>(options_.queue_capacity, 1);
  options_.batch_rows = std::max<std::size_t>(options_.batch_rows, 1);
}

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
    {
      std::lock_guard lock(queue_mutex_);
      if (writer_.joinable()) return Err{std::string("history store is already open")};
    }
    auto set_error = [this](std::string error) -> Result<Opened, std::string> {
      {
        std::lock_guard lock(error_mutex_);
        error_ = error;
      }
      log(HistoryLogLevel::kError, "history off: " + error);
      return Err{std::move(error)};
    };
    const std::string where = "history database '" + path + "': ";
    // Readers never block the writer in WAL mode; the timeout covers checkpoints and another
    // process holding the file.
    const int busy_ms = static_cast<int>(std::clamp<std::int64_t>(options_.busy_timeout.count(), 0,
                                                                  std::numeric_limits<int>::max()));

    auto writer = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy_ms);
    if (!writer) return set_error(writer.error());
    sqlite3* db = writer.value()->handle;
    if (sqlite3_db_readonly(db, "main") == 1) {
      return set_error(where + "the file is read-only; check its permissions");
    }

    // The first read of the header is where a file that is not a database shows up.
    Stmt probe;
    int rc = probe.prepare(db, "SELECT count(*) FROM sqlite_master");
    if (rc == SQLITE_OK) rc = probe.step() == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(db);
    if (rc != SQLITE_OK) {
      return set_error(where + "not a usable SQLite database: " + describe(db, rc));
    }
    const std::int64_t tables = probe.int64(0);
    probe = Stmt{};

    if (tables == 0) {
      // auto_vacuum must be chosen before the first table exists; incremental lets retention
      // give freed pages back to the file system.
      if (exec(db, "PRAGMA auto_vacuum = INCREMENTAL") != SQLITE_OK) {
        return set_error(where + "cannot initialise: " + describe(db, sqlite3_errcode(db)));
      }
    }
    {
      Stmt wal;
      rc = wal.prepare(db, "PRAGMA journal_mode = WAL");
      if (rc == SQLITE_OK) rc = wal.step() == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(db);
      if (rc != SQLITE_OK) {
        return set_error(where + "cannot switch to WAL mode: " + describe(db, rc) +
                         "; check that the directory is writable");
      }
      // Readers must not block the writer (and the reverse), which only WAL guarantees.
      if (wal.text(0) != "wal") {
        return set_error(where + "WAL mode is not available on this file system (journal mode '" +
                         wal.text(0) + "')");
      }
    }
    if (tables == 0) {
      std::string sql = std::string("BEGIN IMMEDIATE;") + kSchemaSql +
                        "INSERT INTO schema_version (version) VALUES (" +
                        std::to_string(kSchemaVersion) + ");COMMIT;";
      if (exec(db, sql.c_str()) != SQLITE_OK) {
        std::string error =
            where + "cannot create the schema: " + describe(db, sqlite3_extended_errcode(db));
        exec(db, "ROLLBACK");
        return set_error(error);
      }
    } else {
      Stmt version;
      if (version.prepare(db, "SELECT version FROM schema_version") != SQLITE_OK ||
          version.step() != SQLITE_ROW) {
        return set_error(where +
                         "an SQLite database but not an ntp-monitor history (no schema version)");
      }
      const std::int64_t found = version.int64(0);
      if (found != kSchemaVersion) {
        return set_error(where + "schema version " + std::to_string(found) +
                         ", this program reads version " + std::to_string(kSchemaVersion));
      }
    }
    // NORMAL is durable against a crash of the process (WAL frames are in the OS); a power
    // loss can lose the last batches, which is the right trade for a monitoring history.
    const std::string pragmas = "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = " +
                                std::to_string(kJournalSizeLimitBytes) + ";";
    if (exec(db, pragmas.c_str()) != SQLITE_OK) {
      return set_error(where + "cannot configure: " + describe(db, sqlite3_errcode(db)));
    }

    detail::Db& w = *writer.value();
    if (w.insert_sample.prepare(db,
                                "INSERT INTO samples (server_id, time_ns, address, offset_s, "
                                "delay_s, jitter_s, stratum, state) VALUES (?,?,?,?,?,?,?,?)") !=
            SQLITE_OK ||
        w.insert_alert.prepare(db,
                               "INSERT INTO alerts (time_ns, server, address, kind, firing, "
                               "message) VALUES (?,?,?,?,?,?)") != SQLITE_OK ||
        w.insert_server.prepare(db, "INSERT OR IGNORE INTO servers (name) VALUES (?)") !=
            SQLITE_OK ||
        w.select_server.prepare(db, "SELECT id FROM servers WHERE name = ?") != SQLITE_OK) {
      return set_error(where + "unexpected schema: " + describe(db, sqlite3_errcode(db)));
    }
    const auto rows = query_int(db, "SELECT count(*) FROM samples");
    const auto pages = query_int(db, "PRAGMA page_count");
    const auto page_size = query_int(db, "PRAGMA page_size");
    if (!rows || !pages || !page_size) {
      return set_error(where + "cannot read: " + describe(db, sqlite3_errcode(db)));
    }

    auto reader = open_connection(path, SQLITE_OPEN_READWRITE, busy_ms);
    if (!reader) return set_error(reader.error());
    // The read connection only ever reads; query_only makes a bug there fail instead of write.
    exec(reader.value()->handle, "PRAGMA query_only = 1");

    // A restart loses nothing in the live view either: the rings start with the stored tail.
    {
      Stmt names;
      Stmt tail;
      sqlite3* rdb = reader.value()->handle;
      if (names.prepare(rdb, "SELECT id, name FROM servers") != SQLITE_OK ||
          tail.prepare(rdb,
                       "SELECT time_ns, address, offset_s, delay_s, jitter_s, stratum, state "
                       "FROM samples WHERE server_id = ? ORDER BY time_ns DESC, id DESC "
                       "LIMIT ?") != SQLITE_OK) {
        return set_error(where + "cannot read: " + describe(rdb, sqlite3_errcode(rdb)));
      }
      while (names.step() == SQLITE_ROW && options_.ring_capacity > 0) {
        const std::string name = names.text(1);
        tail.reset();
        tail.bind(1, names.int64(0));
        tail.bind(2, static_cast<std::int64_t>(options_.ring_capacity));
        std::vector<SampleRecord> newest_first;
        while (tail.step() == SQLITE_ROW) {
          SampleRecord s;
          s.time_unix_ns = tail.int64(0);
          s.server = name;
          s.address = tail.text(1);
          s.offset_s = tail.real(2);
          s.delay_s = tail.real(3);
          if (!tail.is_null(4)) s.jitter_s = tail.real(4);
          s.stratum = static_cast<int>(tail.int64(5));
          s.state = tail.text(6);
          newest_first.push_back(std::move(s));
        }
        Ring& ring = ring_for(name);
        std::lock_guard lock(ring_items_mutex_);
        if (!ring.items.empty()) continue;  // the live view already has newer samples
        for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
          ring.push(view_of(*it), options_.ring_capacity);
        }
      }
    }

    stored_samples_.store(*rows);
    db_size_bytes_.store(*pages * *page_size);
    path_ = path;
    writer_db_ = std::move(writer.value());
    {
      std::lock_guard lock(reader_mutex_);
      reader_db_ = std::move(reader.value());
    }
    {
      std::lock_guard lock(error_mutex_);
      error_.clear();
    }
    {
      std::lock_guard lock(queue_mutex_);
      stop_ = false;
      writer_running_ = true;
    }
    enabled_.store(true);
    try {
      writer_ = std::thread([this] { writer_loop(); });
    } catch (const std::system_error& e) {
      enabled_.store(false);
      {
        std::lock_guard lock(queue_mutex_);
        writer_running_ = false;
      }
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
    std::string error = "history database '" + path + "': " + e.what();
    {
      std::lock_guard lock(error_mutex_);
      error_ = error;
    }
    return Err{error};
  }
}

void HistoryStore::close() {
  {
    std::lock_guard lock(queue_mutex_);
    if (!writer_.joinable()) return;
    stop_ = true;
  }
  queue_cv_.notify_all();
  writer_.join();
  const bool was_enabled = enabled_.exchange(false);
  writer_db_.reset();
  {
    std::lock_guard lock(reader_mutex_);
    reader_db_.reset();
  }
  {
    std::lock_guard lock(queue_mutex_);
    stop_ = false;
    paused_ = false;
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
  bool wake = false;
  {
    std::lock_guard lock(queue_mutex_);
    if (queue_.size() >= options_.queue_capacity) {
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(entry));
    ++enqueued_;
    wake = queue_.size() == options_.batch_rows;
  }
  // Only on crossing the batch size: the writer otherwise wakes on its own timer.
  if (wake) queue_cv_.notify_one();
}

namespace {

// Writes one batch in one transaction; returns "" or the error.
std::string write_batch(detail::Db& w,
                        const std::vector<std::variant<SampleRecord, AlertRecord>>& batch,
                        std::uint64_t& samples, std::uint64_t& alerts) {
  sqlite3* db = w.handle;
  int rc = exec(db, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK) return "cannot begin a transaction: " + describe(db, rc);
  auto failed = [&](const char* what, int code) {
    std::string error = std::string(what) + ": " + describe(db, code);
    exec(db, "ROLLBACK");
    // A failed transaction may have cached ids of servers it inserted; forget them all.
    w.server_ids.clear();
    return error;
  };
  for (const auto& entry : batch) {
    if (entry.index() == 0) {
      const SampleRecord& s = std::get<0>(entry);
      auto it = w.server_ids.find(s.server);
      if (it == w.server_ids.end()) {
        w.insert_server.reset();
        w.insert_server.bind(1, std::string_view(s.server));
        rc = w.insert_server.step();
        if (rc != SQLITE_DONE) return failed("cannot insert a server", rc);
        w.select_server.reset();
        w.select_server.bind(1, std::string_view(s.server));
        rc = w.select_server.step();
        if (rc != SQLITE_ROW) return failed("cannot look up a server", rc);
        it = w.server_ids.emplace(s.server, w.select_server.int64(0)).first;
        w.select_server.reset();
      }
      Stmt& st = w.insert_sample;
      st.reset();
      st.bind(1, it->second);
      st.bind(2, s.time_unix_ns);
      st.bind(3, std::string_view(s.address));
      st.bind(4, s.offset_s);
      st.bind(5, s.delay_s);
      if (s.jitter_s) {
        st.bind(6, *s.jitter_s);
      } else {
        st.bind_null(6);
      }
      st.bind(7, s.stratum);
      st.bind(8, std::string_view(s.state));
      rc = st.step();
      if (rc != SQLITE_DONE) return failed("cannot insert a sample", rc);
      ++samples;
    } else {
      const AlertRecord& a = std::get<1>(entry);
      Stmt& st = w.insert_alert;
      st.reset();
      st.bind(1, a.time_unix_ns);
      st.bind(2, std::string_view(a.server));
      st.bind(3, std::string_view(a.address));
      st.bind(4, std::string_view(a.kind));
      st.bind(5, a.firing ? 1 : 0);
      st.bind(6, std::string_view(a.message));
      rc = st.step();
      if (rc != SQLITE_DONE) return failed("cannot insert an alert", rc);
      ++alerts;
    }
  }
  rc = exec(db, "COMMIT");
  if (rc != SQLITE_OK) return failed("cannot commit", rc);
  return {};
}

// Deletes the `count` oldest samples (by insertion order, which is time order for one daemon).
Result<std::int64_t, std::string> delete_oldest(sqlite3* db, std::int64_t count) {
  if (count <= 0) return std::int64_t{0};
  Stmt st;
  int rc = st.prepare(db,
                      "DELETE FROM samples WHERE id < (SELECT id FROM samples ORDER BY id "
                      "LIMIT 1 OFFSET ?)");
  if (rc != SQLITE_OK) return Err{"cannot prepare retention: " + describe(db, rc)};
  st.bind(1, count);
  rc = st.step();
  if (rc != SQLITE_DONE) return Err{"retention failed: " + describe(db, rc)};
  std::int64_t deleted = sqlite3_changes64(db);
  if (deleted == 0) {
    // Fewer than count + 1 rows: the subquery is NULL; delete everything.
    rc = exec(db, "DELETE FROM samples");
    if (rc != SQLITE_OK) return Err{"retention failed: " + describe(db, rc)};
    deleted = sqlite3_changes64(db);
  }
  return deleted;
}

std::optional<std::int64_t> used_bytes(sqlite3* db) {
  const auto pages = query_int(db, "PRAGMA page_count");
  const auto free_pages = query_int(db, "PRAGMA freelist_count");
  const auto page_size = query_int(db, "PRAGMA page_size");
  if (!pages || !free_pages || !page_size) return std::nullopt;
  return (*pages - *free_pages) * *page_size;
}

}  // namespace

void HistoryStore::writer_loop() {
  using Clock = std::chrono::steady_clock;
  auto next_retention = Clock::now();
  std::vector<Entry> batch;
  std::int64_t stored = stored_samples_.load();

  auto retention = [&]() -> Result<RetentionResult, std::string> {
    sqlite3* db = writer_db_->handle;
    RetentionResult result;
    auto run = [&](const char* sql, std::int64_t arg) -> Result<std::int64_t, std::string> {
      Stmt st;
      int rc = st.prepare(db, sql);
      if (rc != SQLITE_OK) return Err{"cannot prepare retention: " + describe(db, rc)};
      st.bind(1, arg);
      rc = st.step();
      if (rc != SQLITE_DONE) return Err{"retention failed: " + describe(db, rc)};
      return sqlite3_changes64(db);
    };
    if (options_.max_age.count() > 0) {
      const std::int64_t cutoff = now_unix_ns() - options_.max_age.count() * kNsPerS;
      // Per server, so that the (server_id, time_ns) index serves the range.
      std::vector<std::int64_t> ids;
      {
        Stmt st;
        if (st.prepare(db, "SELECT id FROM servers") != SQLITE_OK) {
          return Err{"cannot list servers: " + describe(db, sqlite3_errcode(db))};
        }
        while (st.step() == SQLITE_ROW) ids.push_back(st.int64(0));
      }
      for (std::int64_t id : ids) {
        Stmt st;
        int rc = st.prepare(db, "DELETE FROM samples WHERE server_id = ? AND time_ns < ?");
        if (rc != SQLITE_OK) return Err{"cannot prepare retention: " + describe(db, rc)};
        st.bind(1, id);
        st.bind(2, cutoff);
        rc = st.step();
        if (rc != SQLITE_DONE) return Err{"retention failed: " + describe(db, rc)};
        result.deleted_by_age += sqlite3_changes64(db);
      }
      auto alerts = run("DELETE FROM alerts WHERE time_ns < ?", cutoff);
      if (!alerts) return Err{alerts.error()};
      retention_deleted_.fetch_add(static_cast<std::uint64_t>(*alerts));
      stored -= result.deleted_by_age;
    }
    if (options_.max_rows > 0 && stored > options_.max_rows) {
      auto deleted = delete_oldest(db, stored - options_.max_rows);
      if (!deleted) return Err{deleted.error()};
      result.deleted_by_rows = *deleted;
      stored -= *deleted;
    }
    if (options_.max_bytes > 0) {
      for (int pass = 0; pass < kMaxSizePasses; ++pass) {
        exec(db, "PRAGMA incremental_vacuum");
        const auto used = used_bytes(db);
        if (!used) return Err{"cannot measure the database: " + describe(db, sqlite3_errcode(db))};
        if (*used <= options_.max_bytes || stored == 0) break;
        // Rows are about the same size, so the share of bytes to free is the share of rows.
        const double keep =
            kBytesLowWater * static_cast<double>(options_.max_bytes) / static_cast<double>(*used);
        auto excess = static_cast<std::int64_t>(
            std::ceil(static_cast<double>(stored) * (1.0 - std::clamp(keep, 0.0, 1.0))));
        auto deleted = delete_oldest(db, std::max<std::int64_t>(excess, 1));
        if (!deleted) return Err{deleted.error()};
        result.deleted_by_bytes += *deleted;
        stored -= *deleted;
      }
    }
    const std::int64_t total =
        result.deleted_by_age + result.deleted_by_rows + result.deleted_by_bytes;
    if (total > 0) {
      exec(db, "PRAGMA incremental_vacuum");
      // Let the WAL restart from the beginning so it does not keep the deleted pages' size.
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      retention_deleted_.fetch_add(static_cast<std::uint64_t>(total));
      log(HistoryLogLevel::kInfo, "history retention deleted " + std::to_string(total) +
                                      " samples (" + std::to_string(result.deleted_by_age) +
                                      " by age, " + std::to_string(result.deleted_by_rows) +
                                      " by rows, " + std::to_string(result.deleted_by_bytes) +
                                      " by size)");
    }
    return result;
  };

  auto update_size = [&] {
    const auto pages = query_int(writer_db_->handle, "PRAGMA page_count");
    const auto page_size = query_int(writer_db_->handle, "PRAGMA page_size");
    if (pages && page_size) db_size_bytes_.store(*pages * *page_size);
    stored_samples_.store(stored);
  };

  // Retention once at start, before any queued record is written, then every interval.
  if (enabled_.load(std::memory_order_relaxed)) {
    auto result = retention();
    if (!result) {
      write_errors_.fetch_add(1);
      fail("retention on '" + path_ + "' failed: " + result.error());
    }
    update_size();
  }
  next_retention = Clock::now() + options_.retention_interval;

  for (;;) {
    bool stopping = false;
    std::uint64_t retention_request = 0;
    bool retention_requested = false;
    {
      std::unique_lock lock(queue_mutex_);
      const auto deadline = std::min(Clock::now() + options_.flush_interval, next_retention);
      queue_cv_.wait_until(lock, deadline, [&] {
        return stop_ || retention_requests_ != retention_done_ ||
               (!paused_ && (queue_.size() >= options_.batch_rows ||
                             (flush_target_ > processed_ && !queue_.empty())));
      });
      stopping = stop_;
      if (!paused_ || stop_) batch.swap(queue_);
      retention_request = retention_requests_;
      retention_requested = retention_requests_ != retention_done_;
    }

    if (!batch.empty()) {
      if (enabled_.load(std::memory_order_relaxed)) {
        std::uint64_t samples = 0;
        std::uint64_t alerts = 0;
        const std::string error = write_batch(*writer_db_, batch, samples, alerts);
        if (error.empty()) {
          samples_written_.fetch_add(samples);
          alerts_written_.fetch_add(alerts);
          stored += static_cast<std::int64_t>(samples);
          update_size();
        } else {
          write_errors_.fetch_add(1);
          dropped_disabled_.fetch_add(batch.size());
          fail("cannot write to '" + path_ + "': " + error);
        }
      } else {
        dropped_disabled_.fetch_add(batch.size());
      }
      {
        std::lock_guard lock(queue_mutex_);
        processed_ += batch.size();
      }
      done_cv_.notify_all();
      batch.clear();
    }

    if (retention_requested || Clock::now() >= next_retention) {
      Result<RetentionResult, std::string> result = Err{std::string("history is off")};
      if (enabled_.load(std::memory_order_relaxed)) {
        result = retention();
        if (!result) {
          write_errors_.fetch_add(1);
          fail("retention on '" + path_ + "' failed: " + result.error());
        }
        update_size();
      }
      next_retention = Clock::now() + options_.retention_interval;
      if (retention_requested) {
        {
          std::lock_guard lock(queue_mutex_);
          retention_result_ = std::move(result);
          retention_done_ = retention_request;
        }
        done_cv_.notify_all();
      }
    }

    if (stopping) {
      std::lock_guard lock(queue_mutex_);
      if (queue_.empty()) {
        writer_running_ = false;
        break;
      }
    }
  }
  done_cv_.notify_all();
}

void HistoryStore::flush() {
  std::unique_lock lock(queue_mutex_);
  if (!writer_running_) return;
  const std::uint64_t target = enqueued_;
  flush_target_ = std::max(flush_target_, target);
  queue_cv_.notify_one();
  done_cv_.wait(lock, [&] { return processed_ >= target || !writer_running_; });
}

Result<RetentionResult, std::string> HistoryStore::run_retention() {
  std::unique_lock lock(queue_mutex_);
  if (!writer_running_) return Err{std::string("history is off")};
  const std::uint64_t request = ++retention_requests_;
  queue_cv_.notify_one();
  done_cv_.wait(lock, [&] { return retention_done_ >= request || !writer_running_; });
  if (retention_done_ < request || !retention_result_) {
    return Err{std::string("history store closed")};
  }
  return *retention_result_;
}

void HistoryStore::pause_writer_for_test(bool paused) {
  {
    std::lock_guard lock(queue_mutex_);
    paused_ = paused;
  }
  queue_cv_.notify_all();
}

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
  {
    std::lock_guard lock(queue_mutex_);
    c.queue_depth = queue_.size();
  }
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

Result<std::vector<SampleBucket>, std::string> HistoryStore::query_samples(
    const std::string& server, std::int64_t since_unix_ns, std::int64_t until_unix_ns,
    std::int64_t step_s) const {
  if (step_s < 1 || step_s > kMaxStepS) {
    return Err{"step must be between 1 and " + std::to_string(kMaxStepS) + " seconds"};
  }
  if (since_unix_ns < 0 || until_unix_ns <= since_unix_ns) {
    return Err{std::string("the range must satisfy 0 <= since < until")};
  }
  const std::int64_t step_ns = step_s * kNsPerS;
  const std::int64_t buckets = (until_unix_ns - 1) / step_ns - since_unix_ns / step_ns + 1;
  if (buckets > options_.max_query_buckets) {
    return Err{"the range has " + std::to_string(buckets) + " steps, more than " +
               std::to_string(options_.max_query_buckets) + "; use a larger step"};
  }
  std::lock_guard lock(reader_mutex_);
  if (!reader_db_ || !enabled()) {
    std::lock_guard elock(error_mutex_);
    return Err{off_reason(reader_db_ != nullptr, error_)};
  }
  sqlite3* db = reader_db_->handle;
  // Buckets and aggregates in SQL: only the points leave the database. The window function
  // picks the latest sample of each bucket for the stratum (a bare column next to several
  // min()/max() aggregates would be unspecified).
  Stmt st;
  int rc = st.prepare(db, R"sql(
WITH s AS (
  SELECT time_ns / ?1 AS b, time_ns, offset_s, delay_s, jitter_s, stratum,
         row_number() OVER (PARTITION BY time_ns / ?1 ORDER BY time_ns DESC, id DESC) AS rn
  FROM samples
  WHERE server_id = (SELECT id FROM servers WHERE name = ?2)
    AND time_ns >= ?3 AND time_ns < ?4)
SELECT b, avg(offset_s), min(offset_s), max(offset_s), avg(delay_s), avg(jitter_s),
       max(CASE WHEN rn = 1 THEN stratum END), count(*), min(time_ns), max(time_ns)
FROM s GROUP BY b ORDER BY b)sql");
  if (rc != SQLITE_OK) return Err{"history query failed: " + describe(db, rc)};
  st.bind(1, step_ns);
  st.bind(2, std::string_view(server));
  st.bind(3, since_unix_ns);
  st.bind(4, until_unix_ns);
  std::vector<SampleBucket> out;
  while ((rc = st.step()) == SQLITE_ROW) {
    SampleBucket b;
    b.bucket_start_unix_s = st.int64(0) * step_s;
    b.offset_avg_s = st.real(1);
    b.offset_min_s = st.real(2);
    b.offset_max_s = st.real(3);
    b.delay_avg_s = st.real(4);
    if (!st.is_null(5)) b.jitter_avg_s = st.real(5);
    b.stratum_last = static_cast<int>(st.int64(6));
    b.count = st.int64(7);
    b.first_unix_ns = st.int64(8);
    b.last_unix_ns = st.int64(9);
    out.push_back(b);
  }
  if (rc != SQLITE_DONE) return Err{"history query failed: " + describe(db, rc)};
  return out;
}

Result<std::vector<AlertRecord>, std::string> HistoryStore::query_alerts(
    std::int64_t since_unix_ns, std::int64_t until_unix_ns, const std::string& server) const {
  if (until_unix_ns <= since_unix_ns)
    return Err{std::string("the range must satisfy since < until")};
  std::lock_guard lock(reader_mutex_);
  if (!reader_db_ || !enabled()) {
    std::lock_guard elock(error_mutex_);
    return Err{off_reason(reader_db_ != nullptr, error_)};
  }
  sqlite3* db = reader_db_->handle;
  Stmt st;
  int rc = st.prepare(db,
                      "SELECT time_ns, server, address, kind, firing, message FROM alerts "
                      "WHERE time_ns >= ?1 AND time_ns < ?2 AND (?3 = '' OR server = ?3) "
                      "ORDER BY time_ns, id LIMIT ?4");
  if (rc != SQLITE_OK) return Err{"history query failed: " + describe(db, rc)};
  st.bind(1, since_unix_ns);
  st.bind(2, until_unix_ns);
  st.bind(3, std::string_view(server));
  st.bind(4, options_.max_query_alerts);
  std::vector<AlertRecord> out;
  while ((rc = st.step()) == SQLITE_ROW) {
    AlertRecord a;
    a.time_unix_ns = st.int64(0);
    a.server = st.text(1);
    a.address = st.text(2);
    a.kind = st.text(3);
    a.firing = st.int64(4) != 0;
    a.message = st.text(5);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return Err{"history query failed: " + describe(db, rc)};
  return out;
}

Result<std::vector<ServerInfo>, std::string> HistoryStore::servers() const {
  std::lock_guard lock(reader_mutex_);
  if (!reader_db_ || !enabled()) {
    std::lock_guard elock(error_mutex_);
    return Err{off_reason(reader_db_ != nullptr, error_)};
  }
  sqlite3* db = reader_db_->handle;
  Stmt st;
  // min/max per server are two index lookups each; servers whose samples have all expired
  // are left out.
  int rc = st.prepare(db,
                      "SELECT name, first_ns, last_ns FROM (SELECT s.name AS name, "
                      "(SELECT min(time_ns) FROM samples WHERE server_id = s.id) AS first_ns, "
                      "(SELECT max(time_ns) FROM samples WHERE server_id = s.id) AS last_ns "
                      "FROM servers s) WHERE last_ns IS NOT NULL ORDER BY name");
  if (rc != SQLITE_OK) return Err{"history query failed: " + describe(db, rc)};
  std::vector<ServerInfo> out;
  while ((rc = st.step()) == SQLITE_ROW) {
    ServerInfo info;
    info.name = st.text(0);
    info.first_unix_ns = st.int64(1);
    info.last_unix_ns = st.int64(2);
    out.push_back(std::move(info));
  }
  if (rc != SQLITE_DONE) return Err{"history query failed: " + describe(db, rc)};
  return out;
}

}  // namespace ntpmon::history
