#include "engine/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <system_error>

namespace ntpmon::engine {

std::uint64_t SystemRng::next_u64() {
  unsigned char bytes[sizeof(std::uint64_t)];
  std::size_t filled = 0;
  while (filled < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    filled += static_cast<std::size_t>(n);
  }
  std::uint64_t value = 0;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

}  // namespace ntpmon::engine
