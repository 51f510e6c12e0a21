#include "history/outage.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace ntpmon::history {

std::string_view to_string(WriteFailure failure) {
  return kWriteFailureNames[static_cast<std::size_t>(failure)];
}

WriteFailure classify_failure(int sqlite_code, int system_errno) {
  const int primary = sqlite_code & 0xff;
  // A lock is a lock, whatever errno was left behind by an earlier call.
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return WriteFailure::kBusy;
  if (sqlite_code == SQLITE_READONLY_DBMOVED) return WriteFailure::kMissing;
  const bool os_level = primary == SQLITE_IOERR || primary == SQLITE_FULL ||
                        primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY ||
                        primary == SQLITE_PERM;
  if (os_level) {
    switch (system_errno) {
      case ENOSPC:
      case EDQUOT:
        return WriteFailure::kFull;
      case EROFS:
      case EACCES:
      case EPERM:
        return WriteFailure::kReadonly;
      case EIO:
        return WriteFailure::kIo;
      case ENOENT:
        return WriteFailure::kMissing;
      default:
        break;
    }
  }
  switch (primary) {
    case SQLITE_FULL:
      return WriteFailure::kFull;
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return WriteFailure::kReadonly;
    case SQLITE_IOERR:
      return WriteFailure::kIo;
    case SQLITE_CANTOPEN:
      return WriteFailure::kMissing;
    default:
      return WriteFailure::kOther;
  }
}

RetrySchedule::RetrySchedule(Duration initial, Duration max)
    : initial_(std::max(initial, Duration(1))), max_(std::max(max, initial_)), delay_(initial_) {}

void RetrySchedule::failed(TimePoint now) {
  ++failures_;
  last_delay_ = delay_;
  next_ = now + delay_;
  delay_ = delay_ >= max_ / 2 ? max_ : delay_ * 2;
}

void RetrySchedule::succeeded() {
  failures_ = 0;
  delay_ = initial_;
  last_delay_ = Duration(0);
  next_ = TimePoint{};
}

OutageBuffer::OutageBuffer(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

std::size_t OutageBuffer::add(std::vector<Entry>& entries) {
  std::size_t dropped = 0;
  auto first = entries.begin();
  // More new records than the whole buffer: only the newest capacity_ of them can stay.
  if (entries.size() > capacity_) {
    const std::size_t skip = entries.size() - capacity_;
    first += static_cast<std::ptrdiff_t>(skip);
    dropped += skip;
  }
  const auto incoming = static_cast<std::size_t>(entries.end() - first);
  const std::size_t room = capacity_ - std::min(capacity_, records_.size());
  if (incoming > room) {
    const std::size_t evict = std::min(records_.size(), incoming - room);
    records_.erase(records_.begin(), records_.begin() + static_cast<std::ptrdiff_t>(evict));
    dropped += evict;
  }
  records_.insert(records_.end(), std::make_move_iterator(first),
                  std::make_move_iterator(entries.end()));
  entries.clear();
  return dropped;
}

void OutageBuffer::clear() {
  records_.clear();
  records_.shrink_to_fit();
}

}  // namespace ntpmon::history
