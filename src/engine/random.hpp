// Randomness for the engine: the 64-bit transmit cookies of client requests.
//
// Responsible for: drawing unpredictable values from the kernel CSPRNG (getrandom(2)). The
// cookie is what makes an off-path spoofed reply fail the bogus-origin test (RFC 9109, RFC 5905
// §8 test 2), so it must not be guessable: no std::mt19937, no clock-derived seeds. Not
// responsible for: NTS key material (the NTS layer draws its own).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace ntpmon::engine {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual std::uint64_t next_u64() = 0;
};

// getrandom(2) with no flags: blocks only before the kernel pool is initialised at boot.
// Throws std::system_error if the kernel refuses (a broken system, not untrusted input).
// Draws 512 bytes per system call and hands them out 8 at a time: the daemon takes a cookie
// per request, and a system call per cookie was a measurable share of a probe's cost. The
// bytes are still the kernel CSPRNG's, each used once. One thread at a time.
class SystemRng final : public Rng {
 public:
  std::uint64_t next_u64() override;

 private:
  static constexpr std::size_t kWords = 64;
  std::array<std::uint64_t, kWords> buffer_{};
  std::size_t next_ = kWords;  // index of the next unused word; kWords = empty
};

}  // namespace ntpmon::engine
