#include "engine/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <system_error>

namespace ntpmon::engine {

std::uint64_t SystemRng::next_u64() {
  if (next_ == kWords) {
    auto* bytes = reinterpret_cast<unsigned char*>(buffer_.data());
    const std::size_t size = sizeof(buffer_);
    std::size_t filled = 0;
    while (filled < size) {
      const ssize_t n = getrandom(bytes + filled, size - filled, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "getrandom");
      }
      filled += static_cast<std::size_t>(n);
    }
    next_ = 0;
  }
  const std::uint64_t value = buffer_[next_];
  buffer_[next_++] = 0;  // used once: do not leave it lying around
  return value;
}

}  // namespace ntpmon::engine
