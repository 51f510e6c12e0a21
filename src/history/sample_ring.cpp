#include "history/sample_ring.hpp"

#include <algorithm>
#include <utility>

namespace ntpmon::history::detail {

bool SampleRing::is_last(std::string_view text, std::uint16_t last,
                         const std::string& last_text) const {
  return last < texts_.size() && last_text == text;
}

std::uint16_t SampleRing::text_index(std::string_view text, std::uint16_t& last,
                                     std::string& last_text) {
  if (is_last(text, last, last_text)) return last;
  last = intern(text);
  last_text.assign(text);
  return last;
}

std::uint16_t SampleRing::intern(std::string_view text) {
  for (std::size_t i = 0; i < texts_.size(); ++i) {
    if (texts_[i] == text) return static_cast<std::uint16_t>(i);
  }
  texts_.emplace_back(text);
  return static_cast<std::uint16_t>(texts_.size() - 1);
}

void SampleRing::compact_texts() {
  std::vector<std::string> kept;
  std::vector<std::uint16_t> remap(texts_.size(), UINT16_MAX);
  const auto keep = [&](std::uint16_t& index) {
    if (remap[index] == UINT16_MAX) {
      remap[index] = static_cast<std::uint16_t>(kept.size());
      kept.push_back(std::move(texts_[index]));
    }
    index = remap[index];
  };
  for (Item& item : items_) {
    keep(item.address);
    keep(item.state);
  }
  texts_ = std::move(kept);
  last_address_ = kNoText;
  last_state_ = kNoText;
}

void SampleRing::push(const SampleView& sample, std::size_t capacity) {
  Item item;
  item.time_unix_ns = sample.time_unix_ns;
  item.offset_s = sample.offset_s;
  item.delay_s = sample.delay_s;
  item.has_jitter = sample.jitter_s.has_value();
  item.jitter_s = sample.jitter_s.value_or(0.0);
  item.stratum = static_cast<std::int16_t>(std::clamp(sample.stratum, -32768, 32767));
  // Room for both texts first: a compaction renumbers the table, so it must not fall between
  // the two lookups (the first index would name another text, or none).
  if (texts_.size() + 2 > kMaxTexts &&
      (!is_last(sample.address, last_address_, last_address_text_) ||
       !is_last(sample.state, last_state_, last_state_text_))) {
    compact_texts();
  }
  item.address = text_index(sample.address, last_address_, last_address_text_);
  item.state = text_index(sample.state, last_state_, last_state_text_);
  if (items_.size() < capacity) {
    // Grown by doubling but never past the capacity, and not reserved up front: most
    // servers of a large fleet hold a few samples.
    if (items_.size() == items_.capacity()) {
      items_.reserve(std::min(capacity, std::max<std::size_t>(4, 2 * items_.size())));
    }
    items_.push_back(item);
  } else {
    items_[next_] = item;
    next_ = static_cast<std::uint32_t>((next_ + 1) % capacity);
  }
}

std::vector<SampleRecord> SampleRing::ordered(const std::string& server) const {
  std::vector<SampleRecord> out;
  out.reserve(items_.size());
  for (std::size_t i = 0; i < items_.size(); ++i) {
    const Item& item = items_[(next_ + i) % items_.size()];
    SampleRecord r;
    r.time_unix_ns = item.time_unix_ns;
    r.server = server;
    r.address = texts_[item.address];
    r.offset_s = item.offset_s;
    r.delay_s = item.delay_s;
    if (item.has_jitter) r.jitter_s = item.jitter_s;
    r.stratum = item.stratum;
    r.state = texts_[item.state];
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ntpmon::history::detail
