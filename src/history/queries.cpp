#include "history/queries.hpp"

#include <utility>

namespace ntpmon::history::detail {

namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
// Longest step a query accepts (~100 years): keeps step * 1e9 far from int64 overflow.
constexpr std::int64_t kMaxStepS = 100LL * 366 * 86400;

Err<std::string> failed(sqlite3* db, int rc) {
  return Err{"history query failed: " + describe(db, rc)};
}

}  // namespace

std::string sample_range_error(std::int64_t since_unix_ns, std::int64_t until_unix_ns,
                               std::int64_t step_s, std::int64_t max_buckets) {
  if (step_s < 1 || step_s > kMaxStepS) {
    return "step must be between 1 and " + std::to_string(kMaxStepS) + " seconds";
  }
  if (since_unix_ns < 0 || until_unix_ns <= since_unix_ns) {
    return "the range must satisfy 0 <= since < until";
  }
  const std::int64_t step_ns = step_s * kNsPerS;
  const std::int64_t buckets = (until_unix_ns - 1) / step_ns - since_unix_ns / step_ns + 1;
  if (buckets > max_buckets) {
    return "the range has " + std::to_string(buckets) + " steps, more than " +
           std::to_string(max_buckets) + "; use a larger step";
  }
  return {};
}

std::string alert_range_error(std::int64_t since_unix_ns, std::int64_t until_unix_ns) {
  if (until_unix_ns <= since_unix_ns) return "the range must satisfy since < until";
  return {};
}

Result<std::vector<SampleBucket>, std::string> select_sample_buckets(sqlite3* db,
                                                                     const std::string& server,
                                                                     std::int64_t since_unix_ns,
                                                                     std::int64_t until_unix_ns,
                                                                     std::int64_t step_s) {
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
  if (rc != SQLITE_OK) return failed(db, rc);
  st.bind(1, step_s * kNsPerS);
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
  if (rc != SQLITE_DONE) return failed(db, rc);
  return out;
}

Result<std::vector<AlertRecord>, std::string> select_alerts(sqlite3* db, std::int64_t since_unix_ns,
                                                            std::int64_t until_unix_ns,
                                                            const std::string& server,
                                                            std::int64_t limit) {
  Stmt st;
  int rc = st.prepare(db,
                      "SELECT time_ns, server, address, kind, firing, message FROM alerts "
                      "WHERE time_ns >= ?1 AND time_ns < ?2 AND (?3 = '' OR server = ?3) "
                      "ORDER BY time_ns, id LIMIT ?4");
  if (rc != SQLITE_OK) return failed(db, rc);
  st.bind(1, since_unix_ns);
  st.bind(2, until_unix_ns);
  st.bind(3, std::string_view(server));
  st.bind(4, limit);
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
  if (rc != SQLITE_DONE) return failed(db, rc);
  return out;
}

Result<std::vector<ServerInfo>, std::string> select_servers(sqlite3* db) {
  Stmt st;
  // min/max per server are two index lookups each; servers whose samples have all expired
  // are left out.
  int rc = st.prepare(db,
                      "SELECT name, first_ns, last_ns FROM (SELECT s.name AS name, "
                      "(SELECT min(time_ns) FROM samples WHERE server_id = s.id) AS first_ns, "
                      "(SELECT max(time_ns) FROM samples WHERE server_id = s.id) AS last_ns "
                      "FROM servers s) WHERE last_ns IS NOT NULL ORDER BY name");
  if (rc != SQLITE_OK) return failed(db, rc);
  std::vector<ServerInfo> out;
  while ((rc = st.step()) == SQLITE_ROW) {
    ServerInfo info;
    info.name = st.text(0);
    info.first_unix_ns = st.int64(1);
    info.last_unix_ns = st.int64(2);
    out.push_back(std::move(info));
  }
  if (rc != SQLITE_DONE) return failed(db, rc);
  return out;
}

std::string select_tails(
    sqlite3* db, std::size_t limit,
    const std::function<void(const std::string& server, const std::vector<SampleRecord>&)>& each) {
  Stmt names;
  Stmt tail;
  if (names.prepare(db, "SELECT id, name FROM servers") != SQLITE_OK ||
      tail.prepare(db,
                   "SELECT time_ns, address, offset_s, delay_s, jitter_s, stratum, state "
                   "FROM samples WHERE server_id = ? ORDER BY time_ns DESC, id DESC "
                   "LIMIT ?") != SQLITE_OK) {
    return describe(db, sqlite3_errcode(db));
  }
  while (names.step() == SQLITE_ROW && limit > 0) {
    const std::string name = names.text(1);
    tail.reset();
    tail.bind(1, names.int64(0));
    tail.bind(2, static_cast<std::int64_t>(limit));
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
    each(name, newest_first);
  }
  return {};
}

}  // namespace ntpmon::history::detail
