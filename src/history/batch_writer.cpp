#include "history/batch_writer.hpp"

#include <utility>

namespace ntpmon::history::detail {

Result<std::unique_ptr<BatchWriter>, std::string> BatchWriter::prepare(Connection connection) {
  std::unique_ptr<BatchWriter> w(new BatchWriter(std::move(connection)));
  sqlite3* db = w->db();
  if (w->insert_sample_.prepare(db,
                                "INSERT INTO samples (server_id, time_ns, address, offset_s, "
                                "delay_s, jitter_s, stratum, state) VALUES (?,?,?,?,?,?,?,?)") !=
          SQLITE_OK ||
      w->insert_alert_.prepare(db,
                               "INSERT INTO alerts (time_ns, server, address, kind, firing, "
                               "message) VALUES (?,?,?,?,?,?)") != SQLITE_OK ||
      w->insert_server_.prepare(db, "INSERT OR IGNORE INTO servers (name) VALUES (?)") !=
          SQLITE_OK ||
      w->select_server_.prepare(db, "SELECT id FROM servers WHERE name = ?") != SQLITE_OK) {
    return Err{"unexpected schema: " + describe(db, sqlite3_errcode(db))};
  }
  return w;
}

BatchWriter::Error BatchWriter::rollback(const char* what, int rc) {
  Error error{sqlite3_extended_errcode(db()), sqlite3_system_errno(db()),
              std::string(what) + ": " + describe(db(), rc)};
  if (error.code == SQLITE_OK) error.code = rc;
  exec(db(), "ROLLBACK");
  server_ids_.clear();
  return error;
}

Result<std::int64_t, BatchWriter::Error> BatchWriter::server_id(const std::string& name) {
  auto it = server_ids_.find(name);
  if (it != server_ids_.end()) return it->second;
  insert_server_.reset();
  insert_server_.bind(1, std::string_view(name));
  int rc = insert_server_.step();
  if (rc != SQLITE_DONE) return Err{rollback("cannot insert a server", rc)};
  select_server_.reset();
  select_server_.bind(1, std::string_view(name));
  rc = select_server_.step();
  if (rc != SQLITE_ROW) return Err{rollback("cannot look up a server", rc)};
  const std::int64_t id = select_server_.int64(0);
  select_server_.reset();
  server_ids_.emplace(name, id);
  return id;
}

std::optional<BatchWriter::Error> BatchWriter::begin() {
  const int rc = exec(db(), "BEGIN IMMEDIATE");
  if (rc == SQLITE_OK) return std::nullopt;
  return Error{rc, sqlite3_system_errno(db()), "cannot begin a transaction: " + describe(db(), rc)};
}

std::optional<BatchWriter::Error> BatchWriter::insert(const Entry& entry, Written& written) {
  if (entry.index() == 0) {
    const SampleRecord& s = std::get<0>(entry);
    const auto id = server_id(s.server);
    if (!id) return id.error();
    Stmt& st = insert_sample_;
    st.reset();
    st.bind(1, *id);
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
    const int rc = st.step();
    if (rc != SQLITE_DONE) return rollback("cannot insert a sample", rc);
    ++written.samples;
  } else {
    const AlertRecord& a = std::get<1>(entry);
    Stmt& st = insert_alert_;
    st.reset();
    st.bind(1, a.time_unix_ns);
    st.bind(2, std::string_view(a.server));
    st.bind(3, std::string_view(a.address));
    st.bind(4, std::string_view(a.kind));
    st.bind(5, a.firing ? 1 : 0);
    st.bind(6, std::string_view(a.message));
    const int rc = st.step();
    if (rc != SQLITE_DONE) return rollback("cannot insert an alert", rc);
    ++written.alerts;
  }
  return std::nullopt;
}

std::optional<BatchWriter::Error> BatchWriter::commit() {
  const int rc = exec(db(), "COMMIT");
  if (rc == SQLITE_OK) return std::nullopt;
  return rollback("cannot commit", rc);
}

}  // namespace ntpmon::history::detail
