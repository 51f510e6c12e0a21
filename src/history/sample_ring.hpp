// The live view of one server: its latest samples, compact, for the event loop to append to.
//
// Responsible for: keeping the last `capacity` samples in arrival order in 40-byte items (the
// address and the state as indexes into a small table of the distinct texts seen), keeping that
// table bounded, and giving the samples back as records. Not responsible for: locking (the
// store holds one lock for all rings), finding a server's ring, or the database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "history/history_store.hpp"

namespace ntpmon::history::detail {

// A SampleRecord is ~150 bytes with three strings; an item is 40 (a server has one address, or
// a few for a pool, and a handful of states). One item is one cache line touched per sample, and
// a thousand servers with 600 samples each take 24 MB instead of 90. HistoryStore::prefetch
// fetches the first two cache lines of a ring: the members push() reads are kept there.
class SampleRing {
 public:
  // Past this many distinct texts (a pool that rotates its addresses for weeks), the table is
  // rebuilt from the items still held: it never grows without bound.
  static constexpr std::size_t kMaxTexts = 1024;

  // Appends a sample; once `capacity` samples are held, overwrites the oldest. The capacity is
  // the store's, the same on every call.
  void push(const SampleView& sample, std::size_t capacity);
  // The samples held, oldest first, as records of `server`.
  [[nodiscard]] std::vector<SampleRecord> ordered(const std::string& server) const;
  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] std::size_t size() const { return items_.size(); }
  // Distinct texts in the table (at most kMaxTexts).
  [[nodiscard]] std::size_t text_count() const { return texts_.size(); }

 private:
  struct Item {
    std::int64_t time_unix_ns = 0;
    double offset_s = 0;
    double delay_s = 0;
    double jitter_s = 0;
    std::int16_t stratum = 0;
    std::uint16_t address = 0;  // index into texts_
    std::uint16_t state = 0;    // index into texts_
    bool has_jitter = false;
  };
  static constexpr std::uint16_t kNoText = UINT16_MAX;

  [[nodiscard]] bool is_last(std::string_view text, std::uint16_t last,
                             const std::string& last_text) const;
  std::uint16_t text_index(std::string_view text, std::uint16_t& last, std::string& last_text);
  std::uint16_t intern(std::string_view text);
  void compact_texts();

  std::vector<Item> items_;  // grows to capacity, then overwritten round-robin
  std::vector<std::string> texts_;
  std::uint32_t next_ = 0;  // oldest item once full
  // Where the last sample's address and state are in texts_, and copies of those texts: the
  // usual next sample repeats them, and is recognised here, in the ring's own cache lines,
  // without reading the table's. kNoText after a compaction (the indexes moved).
  std::uint16_t last_address_ = kNoText;
  std::uint16_t last_state_ = kNoText;
  std::string last_address_text_;
  std::string last_state_text_;
};

}  // namespace ntpmon::history::detail
